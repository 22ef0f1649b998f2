"""Committees: several trained models vote by averaging their class probabilities.

p(c | x) = (1/M) sum_m p_m(c | x). Each member applies its own stored input normalization, so
members trained with different statistics (or on differently split data) combine correctly.
Members can also average over augmented copies of each input first (test-time augmentation,
`handnet.train.tta`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from handnet.errors import ModelFileError
from handnet.train.classifier import Classifier
from handnet.train.tta import tta_proba

Array = npt.NDArray[np.floating]


def check_compatible(members: Sequence[Classifier], names: Sequence[str]) -> None:
    """Members must agree on the classes and the input size; the first one sets both."""
    if not members:
        raise ModelFileError("a committee needs at least one model")
    first = members[0]
    for clf, name in zip(members[1:], names[1:]):
        if clf.classes != first.classes:
            raise ModelFileError(
                f"{name}: classes {clf.classes} differ from {names[0]}'s {first.classes}"
            )
        if clf.net.n_in != first.net.n_in:
            raise ModelFileError(
                f"{name}: takes {clf.net.n_in} inputs, {names[0]} takes {first.net.n_in}"
            )


def committee_votes(
    members: Sequence[Classifier],
    images: npt.NDArray[np.generic],
    views: int = 0,
    rng: np.random.Generator | None = None,
    *,
    progress: bool = False,
) -> tuple[Array, npt.NDArray[np.intp]]:
    """The mean of the members' probabilities, (N, classes) in float64, and each member's own
    answer, (members, N). With ``views`` > 0 each member first averages over that many augmented
    copies (`handnet.train.tta`). Each member draws from its own copy of ``rng``, so members trained
    alike see the same copies, and a member's share is what it gives alone, wherever it stands
    in the committee. ``progress``: a bar over the members on stderr, if it is a terminal."""
    if not members:
        raise ModelFileError("a committee needs at least one model")
    total = np.zeros((len(images), len(members[0].classes)))
    answers = np.empty((len(members), len(images)), np.intp)
    bar = tqdm(
        members, desc="members", unit="model", leave=False, disable=None if progress else True
    )
    for i, clf in enumerate(bar):
        p = tta_proba(clf, images, views, copy.deepcopy(rng))
        total += p
        answers[i] = p.argmax(axis=1)
    return total / len(members), answers


def committee_proba(
    members: Sequence[Classifier],
    images: npt.NDArray[np.generic],
    views: int = 0,
    rng: np.random.Generator | None = None,
) -> Array:
    """The committee's probabilities alone (`committee_votes`)."""
    return committee_votes(members, images, views, rng)[0]


def as_logits(p: Array) -> Array:
    """log p: logits whose softmax is ``p`` (zeros become the log of the smallest float)."""
    return np.log(np.maximum(p, np.finfo(np.float64).tiny))
