"""Predict digits in image files with a trained model: preprocessing (handnet.images.preprocess), the
model's stored normalization (Classifier.predict_proba), and the network's answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.errors import HandnetError
from handnet.images.preprocess import load_image, preprocess_digit, to_uint8
from handnet.nn.layers import Dense
from handnet.train.classifier import Classifier
from handnet.train.tta import view_average_proba

ImageSource = str | Path | bytes | npt.NDArray[Any]


@dataclass
class Prediction:
    """The model's answer for one image, the 28x28 input it was given (uint8, white ink on black),
    and that input as the network saw it: deskewed or width-normalized if the model was trained so
    (`Classifier.geometry`), else the same image.

    Parameters
    ----------
    source : str
        The image's name: its path, or "image N" for bytes and arrays.
    label : str
        The likeliest class.
    probabilities : ndarray of float32, shape (n_classes,)
        One per class, in ``classes`` order.
    classes : list of str
        The model's class labels.
    input : ndarray of uint8, shape (side, side)
        The preprocessed image (28x28 for MNIST), white ink on black.
    seen : ndarray of uint8, shape (side, side)
        ``input`` after the model's shape normalization: what the network was given.
    """

    source: str
    label: str
    probabilities: npt.NDArray[np.float32]  # one per class, in ``classes`` order
    classes: list[str]
    input: npt.NDArray[np.uint8]
    seen: npt.NDArray[np.uint8]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` likeliest classes.

        Parameters
        ----------
        k : int, default=3
            How many.

        Returns
        -------
        list of (str, float)
            (label, probability), likeliest first; ties keep the classes' order.
        """
        return likeliest(self.probabilities, self.classes, k)

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        """The prediction as `handnet predict --json` prints it.

        Parameters
        ----------
        k : int, default=3
            How many classes ``top`` lists.

        Returns
        -------
        dict of str to object
            ``file``, ``label``, ``probability``, ``top`` (label and probability of the ``k``
            likeliest) and ``probabilities`` (class to probability).
        """
        return {
            "file": self.source,
            "label": self.label,
            "probability": float(self.probabilities.max()),
            "top": [{"label": c, "probability": p} for c, p in self.top(k)],
            "probabilities": {c: float(p) for c, p in zip(self.classes, self.probabilities)},
        }


def likeliest(
    probabilities: npt.NDArray[np.floating], classes: Sequence[str], k: int
) -> list[tuple[str, float]]:
    """The ``k`` likeliest classes of one answer, likeliest first; ties keep the classes' order.

    Parameters
    ----------
    probabilities : ndarray of float, shape (n_classes,)
        One per class, in ``classes`` order.
    classes : sequence of str
        The class labels.
    k : int
        How many.

    Returns
    -------
    list of (str, float)
        (label, probability) pairs.
    """
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]


def input_field(clf: Classifier) -> int:
    """The side of the square input the model was trained on (28 for MNIST).

    Parameters
    ----------
    clf : Classifier
        The model.

    Returns
    -------
    int
        The side, in pixels.

    Raises
    ------
    HandnetError
        When the model's inputs are not square images (a tabular dataset's model).
    """
    shape = tuple(clf.image_shape)
    side = math.isqrt(clf.net.n_in)
    if (len(shape) == 2 and shape[0] == shape[1]) or (len(shape) == 1 and side * side == shape[0]):
        return side
    raise HandnetError(f"the model's inputs are {shape}, not square images; cannot predict images")


def prepare_image(
    clf: Classifier, source: ImageSource, name: str | None = None
) -> npt.NDArray[np.uint8]:
    """Decode (if needed) and preprocess one image into the model's input (MNIST's steps,
    `handnet.images.preprocess`).

    Parameters
    ----------
    clf : Classifier
        The model, for the side of its input.
    source : str, Path, bytes or ndarray of shape (H, W)
        A file, its encoded bytes, or a grayscale array: uint8 in [0, 255] or float in [0, 1],
        any ink colour.
    name : str, optional
        What error messages call the image; the path, or "image", by default.

    Returns
    -------
    ndarray of uint8, shape (side, side)
        White ink on black, fitted and centred as MNIST's digits are.

    Raises
    ------
    ImageError
        When the image cannot be read, or holds no ink (`NoInkError`).
    """
    label = name or (str(source) if isinstance(source, str | Path) else "image")
    return to_uint8(preprocess_digit(gray_image(source, label), field=input_field(clf), name=label))


def gray_image(source: ImageSource, name: str) -> npt.NDArray[np.float32]:
    """An image as float32 grayscale in [0, 1].

    Parameters
    ----------
    source : str, Path, bytes or ndarray of shape (H, W)
        A file or encoded bytes, decoded by `load_image`; or an array taken as grayscale, uint8
        in [0, 255] or float in [0, 1].
    name : str
        What error messages call the image.

    Returns
    -------
    ndarray of float32, shape (H, W)
        The grayscale image, 1 being white.
    """
    if isinstance(source, np.ndarray):
        scale = np.float32(1 / 255 if source.dtype.kind in "ui" else 1)
        return source.astype(np.float32) * scale
    return load_image(source, name)


def predict_images(
    clf: Classifier,
    images: Sequence[ImageSource],
    names: Sequence[str] | None = None,
    views: int = 0,
    rng: np.random.Generator | None = None,
) -> list[Prediction]:
    """Predict one digit in each image.

    Parameters
    ----------
    clf : Classifier
        The model.
    images : sequence of str, Path, bytes or ndarray of shape (H, W)
        Paths, encoded bytes or grayscale arrays (as in `prepare_image`).
    names : sequence of str, optional
        What to call each image; the paths, or "image N", by default.
    views : int, default=0
        With ``views`` > 0 the probabilities average over the image and that many augmented
        copies drawn from ``rng`` (test-time augmentation, `handnet.train.tta`).
    rng : numpy.random.Generator, optional
        Draws the copies; needed when ``views`` > 0.

    Returns
    -------
    list of Prediction
        One per image, in order.

    Raises
    ------
    ImageError
        Naming the first image that cannot be read or holds no ink; the CLI predicts files one
        by one so that one bad file does not stop the rest.
    """
    labels = list(names) if names is not None else [_name(s, i) for i, s in enumerate(images)]
    if not labels:
        return []
    inputs = np.stack([prepare_image(clf, s, n) for s, n in zip(images, labels)])
    seen = clf.normalize_shape(inputs)  # deskewed or width-normalized once, then shown and used
    probs = view_average_proba(clf, clf.standardize(seen), views, rng).astype(np.float32)
    return [
        Prediction(n, clf.classes[int(p.argmax())], p.copy(), list(clf.classes), x, v)
        for n, p, x, v in zip(labels, probs, inputs, seen)
    ]


def predict_pixels(
    clf: Classifier,
    X: npt.NDArray[np.generic],
    views: int = 0,
    rng: np.random.Generator | None = None,
) -> npt.NDArray[np.float32]:
    """Class probabilities of inputs already like the model's training images (the rows of a
    CSV file): shape normalization and standardization as in training, no photo preprocessing.

    Parameters
    ----------
    clf : Classifier
        The model.
    X : ndarray, shape (n, side, side) or (n, n_features)
        The inputs, in the training data's pixel scale (0-255 for MNIST).
    views : int, default=0
        Test-time augmentation, as in `predict_images`.
    rng : numpy.random.Generator, optional
        Draws the augmented copies.

    Returns
    -------
    ndarray of float32, shape (n, n_classes)
        Each row sums to 1.
    """
    seen = clf.normalize_shape(X)
    return view_average_proba(clf, clf.standardize(seen), views, rng).astype(np.float32)


def _name(source: ImageSource, i: int) -> str:
    return str(source) if isinstance(source, str | Path) else f"image {i}"


@dataclass
class HiddenUnit:
    """A first-layer hidden unit: its activation, its score, and its incoming weights as an image.

    Parameters
    ----------
    unit : int
        Its index in the first hidden layer.
    activation : float
        Its activation h_j for the input.
    score : float
        Its push towards the predicted class (see `strongest_units`).
    weights : ndarray of float32, shape (side, side)
        Its incoming weights, the pattern it responds to.
    """

    unit: int
    activation: float
    score: float
    weights: npt.NDArray[np.float32]  # (side, side), the pattern the unit responds to


def strongest_units(clf: Classifier, image: npt.NDArray[np.uint8], k: int = 8) -> list[HiddenUnit]:
    """The first hidden layer's units that pushed hardest towards the predicted class, for an
    ``image`` as the network sees it (`Prediction.seen`).

    With one hidden layer, unit j's share of the winning logit c is h_j * W2[j, c], so units are
    ranked by that contribution. With deeper networks the path is not a single product, and units
    are ranked by activation h_j. h = act(W1^T x' + b1) on the normalized input x'.

    Parameters
    ----------
    clf : Classifier
        The model.
    image : ndarray of uint8, shape (side, side)
        The input as the network sees it (`Prediction.seen`).
    k : int, default=8
        How many units.

    Returns
    -------
    list of HiddenUnit
        The ``k`` strongest, strongest first; empty for a network without a hidden layer.
    """
    dense = clf.net.dense_layers()
    if len(dense) < 2:  # no hidden layer
        return []
    first, act = clf.net.layers[0], clf.net.layers[1]
    assert isinstance(first, Dense)
    x = clf.standardize(image[None])
    h = act.forward(first.forward(x, train=False), train=False)[0].copy()
    c = int(clf.net.predict_logits(x)[0].argmax())
    score = h * dense[1].params["W"][:, c] if len(dense) == 2 else h
    order = np.argsort(-score, kind="stable")[:k]
    W1 = dense[0].params["W"]
    side = image.shape[0]
    return [
        HiddenUnit(int(j), float(h[j]), float(score[j]), W1[:, j].reshape(side, side).copy())
        for j in order
    ]
