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
    """Members must agree on the classes and the input size; the first one sets both.

    Parameters
    ----------
    members : Sequence of Classifier
        The committee's models.
    names : Sequence of str
        Their files' names, one per member, for the error messages.

    Raises
    ------
    ModelFileError
        If there is no member, or one differs from the first, naming it.
    """
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
    """The mean of the members' probabilities, and each member's own answer.

    With ``views`` > 0 each member first averages over that many augmented copies
    (`handnet.train.tta`). Each member draws from its own copy of ``rng``, so members trained
    alike see the same copies, and a member's share is what it gives alone, wherever it stands
    in the committee.

    Parameters
    ----------
    members : Sequence of Classifier
        M models with the same classes (`check_compatible`).
    images : ndarray, shape (N, H, W)
        Raw inputs, or rows (N, D); each member prepares them its own way.
    views : int, default=0
        Augmented copies of each input per member; 0 is none.
    rng : numpy.random.Generator, optional
        Draws the copies; needed when ``views`` > 0.
    progress : bool, default=False
        A bar over the members on stderr, if it is a terminal.

    Returns
    -------
    proba : ndarray of float64, shape (N, C)
        p(c | x) = (1/M) sum_m p_m(c | x).
    answers : ndarray of intp, shape (M, N)
        Each member's most probable class for each input.

    Raises
    ------
    ModelFileError
        If there is no member.
    ConfigError
        If ``views`` is not a whole number >= 0, or ``views`` > 0 without a Generator, or a
        member was trained without augmentation.
    """
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
    """The committee's probabilities alone (`committee_votes`).

    Parameters
    ----------
    members : Sequence of Classifier
        M models with the same classes.
    images : ndarray, shape (N, H, W)
        Raw inputs, or rows (N, D).
    views : int, default=0
        Augmented copies of each input per member; 0 is none.
    rng : numpy.random.Generator, optional
        Draws the copies; needed when ``views`` > 0.

    Returns
    -------
    ndarray of float64, shape (N, C)
        p(c | x) = (1/M) sum_m p_m(c | x).
    """
    return committee_votes(members, images, views, rng)[0]


def as_logits(p: Array) -> Array:
    """log p: logits whose softmax is ``p`` (zeros become the log of the smallest float).

    Parameters
    ----------
    p : ndarray, shape (N, C)
        Probabilities; each row sums to 1.

    Returns
    -------
    ndarray of float64, shape (N, C)
        log p, finite everywhere.
    """
    return np.log(np.maximum(p, np.finfo(np.float64).tiny))
