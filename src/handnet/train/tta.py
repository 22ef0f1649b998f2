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
# --tta accuracies in the README and docs/explanation/results.md were measured with 2048.
CHUNK = 2048


def training_augmentation(clf: Classifier) -> AugmentSpec:
    """The augmentation ``clf`` was trained with, read from the config stored in its file.

    Parameters
    ----------
    clf : Classifier
        A model read from a file.

    Returns
    -------
    AugmentSpec
        Its training augmentation, active.

    Raises
    ------
    ConfigError
        If the model was trained without augmentation.
    ModelFileError
        If its file stores no valid config.
    """
    spec = TrainConfig.stored_in(clf).augment_spec()
    if not spec.active:
        raise ConfigError(
            "--tta: the model was trained without augmentation; there is none to draw"
        )
    return spec


def check_augmented(models: Sequence[Classifier], names: Sequence[str]) -> None:
    """Fail before any work, naming the file, if a model has no augmentation to draw copies from.

    Parameters
    ----------
    models : Sequence of Classifier
        The models.
    names : Sequence of str
        Their files' names, one per model, for the error messages.

    Raises
    ------
    ConfigError
        If a model was trained without augmentation.
    ModelFileError
        If a model's file stores no valid config.
    """
    for clf, name in zip(models, names):
        try:
            training_augmentation(clf)
        except (ConfigError, ModelFileError) as e:
            raise type(e)(f"{name}: {e}") from None


def view_average_proba(
    clf: Classifier, x: Array, views: int = 0, rng: np.random.Generator | None = None
) -> Array:
    """Class probabilities of network inputs averaged with ``views`` augmented copies of them.

    Parameters
    ----------
    clf : Classifier
        The model; its stored config says which augmentation to draw.
    x : ndarray of float32, shape (N, D)
        Network inputs, as `Classifier.prepare` gives them.
    views : int, default=0
        K, the augmented copies of each input; 0 is the plain probabilities.
    rng : numpy.random.Generator, optional
        Draws the copies; needed when ``views`` > 0.

    Returns
    -------
    ndarray of float64, shape (N, C)
        (p(c | x) + sum_k p(c | T_k x)) / (K + 1).

    Raises
    ------
    ConfigError
        If ``views`` is not a whole number >= 0, or ``views`` > 0 without a Generator, or the
        model was trained without augmentation.
    """
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
    """`view_average_proba` of raw images (prepared as `Classifier.predict_proba` does).

    Parameters
    ----------
    clf : Classifier
        The model.
    images : ndarray, shape (N, H, W)
        Raw inputs, or rows (N, D).
    views : int, default=0
        K, the augmented copies of each input; 0 is the plain probabilities.
    rng : numpy.random.Generator, optional
        Draws the copies; needed when ``views`` > 0.

    Returns
    -------
    ndarray of float64, shape (N, C)
        The class probabilities, averaged over the input and its K copies.
    """
    return view_average_proba(clf, clf.prepare(images), views, rng)
