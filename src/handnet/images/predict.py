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
    (`Classifier.geometry`), else the same image."""

    source: str
    label: str
    probabilities: npt.NDArray[np.float32]  # one per class, in ``classes`` order
    classes: list[str]
    input: npt.NDArray[np.uint8]
    seen: npt.NDArray[np.uint8]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.classes[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        return {
            "file": self.source,
            "label": self.label,
            "probability": float(self.probabilities.max()),
            "top": [{"label": c, "probability": p} for c, p in self.top(k)],
            "probabilities": {c: float(p) for c, p in zip(self.classes, self.probabilities)},
        }


def input_field(clf: Classifier) -> int:
    """The side of the square input the model was trained on (28 for MNIST)."""
    shape = tuple(clf.image_shape)
    side = math.isqrt(clf.net.n_in)
    if (len(shape) == 2 and shape[0] == shape[1]) or (len(shape) == 1 and side * side == shape[0]):
        return side
    raise HandnetError(f"the model's inputs are {shape}, not square images; cannot predict images")


def prepare_image(
    clf: Classifier, source: ImageSource, name: str | None = None
) -> npt.NDArray[np.uint8]:
    """Decode (if needed) and preprocess one image into the model's (side, side) uint8 input.
    An ndarray is taken as grayscale, uint8 in [0, 255] or float in [0, 1], any ink colour."""
    label = name or (str(source) if isinstance(source, str | Path) else "image")
    return to_uint8(preprocess_digit(gray_image(source, label), field=input_field(clf), name=label))


def gray_image(source: ImageSource, name: str) -> npt.NDArray[np.float32]:
    """An image as float32 grayscale in [0, 1]: a file or encoded bytes decoded (`load_image`),
    an ndarray taken as grayscale, uint8 in [0, 255] or float in [0, 1]."""
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
    """Predict each image (paths, encoded bytes or grayscale arrays). Raises an ImageError naming
    the first image that cannot be read or holds no ink; the CLI predicts files one by one.
    With ``views`` > 0 the probabilities average over that many augmented copies drawn from
    ``rng`` (test-time augmentation, `handnet.train.tta`)."""
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
    """Class probabilities (N, classes) of inputs already like the model's training images (the
    rows of a CSV file): shape normalization and standardization as in training, no photo
    preprocessing. ``views`` and ``rng`` as in `predict_images`."""
    seen = clf.normalize_shape(X)
    return view_average_proba(clf, clf.standardize(seen), views, rng).astype(np.float32)


def _name(source: ImageSource, i: int) -> str:
    return str(source) if isinstance(source, str | Path) else f"image {i}"


@dataclass
class HiddenUnit:
    """A first-layer hidden unit: its activation, its score, and its incoming weights as an image."""

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
