"""Test-time augmentation: a model's probabilities averaged over each input and K randomly
transformed copies of it.

p(c | x) = (p(c | x) + sum_{k=1..K} p(c | T_k x)) / (K + 1)

The transforms T_k are drawn from the augmentation the model was trained with (its stored config:
rotation, scaling, elastic distortion, ...), so every copy looks like the digits it learned from.
They act on the network's input, after the model's own deskewing and standardization, exactly as
in training. Each view costs one more forward pass and one augmentation of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from handnet.data.augment import Augmenter, AugmentSpec
from handnet.errors import ConfigError, ModelFileError
from handnet.nn.losses import softmax
from handnet.train.classifier import Classifier
from handnet.train.config import TrainConfig

Array = npt.NDArray[np.floating]

# Images augmented at a time: bounds the memory of the sampling coordinates. 512 ran about 20%
# faster here (bench/tta.py), but the chunk decides the order of the random draws, and the
# accuracies in the README were measured with 2048.
CHUNK = 2048


def training_augmentation(clf: Classifier) -> AugmentSpec:
    """The augmentation ``clf`` was trained with, read from the config stored in its file."""
    spec = TrainConfig.stored_in(clf).augment_spec()
    if not spec.active:
        raise ConfigError(
            "--tta: the model was trained without augmentation; there is none to draw"
        )
    return spec


def check_augmented(models: Sequence[Classifier], names: Sequence[str]) -> None:
    """Fail before any work, naming the file, if a model has no augmentation to draw copies from."""
    for clf, name in zip(models, names):
        try:
            training_augmentation(clf)
        except (ConfigError, ModelFileError) as e:
            raise type(e)(f"{name}: {e}") from None


def view_average_proba(
    clf: Classifier, x: Array, views: int = 0, rng: np.random.Generator | None = None
) -> Array:
    """Class probabilities (N, classes), float64, of network inputs ``x`` (`Classifier.prepare`'s
    output) averaged with ``views`` augmented copies drawn with ``rng``; views = 0 is plain."""
    if isinstance(views, bool) or not isinstance(views, int | np.integer) or views < 0:
        raise ConfigError(f"views={views!r}: must be a whole number >= 0")
    total = softmax(clf.net.predict_logits(x)).astype(np.float64)
    if views == 0:
        return total
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"rng={rng!r}: test-time augmentation needs a numpy.random.Generator "
            "(np.random.default_rng(seed))"
        )
    augment = Augmenter(training_augmentation(clf), clf.image_shape, rng, fill=clf.norm.black)
    for _ in range(views):
        for i in range(0, len(x), CHUNK):
            total[i : i + CHUNK] += softmax(clf.net.predict_logits(augment(x[i : i + CHUNK])))
    return total / (views + 1)


def tta_proba(
    clf: Classifier,
    images: npt.NDArray[np.generic],
    views: int = 0,
    rng: np.random.Generator | None = None,
) -> Array:
    """`view_average_proba` of raw images (prepared as `Classifier.predict_proba` does)."""
    return view_average_proba(clf, clf.prepare(images), views, rng)
