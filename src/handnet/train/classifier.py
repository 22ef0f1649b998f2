"""A trained network with what it needs to be used: input normalization, class names, geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.data.geometry import PLAIN, Geometry
from handnet.data.split import Normalization, finite_rows, to_unit
from handnet.errors import DatasetError
from handnet.nn.losses import softmax
from handnet.nn.model import MLP

Array = npt.NDArray[np.floating]


@dataclass
class Classifier:
    """A trained network with what it needs to be used: input normalization and class names.

    ``predict_proba`` takes raw images (uint8 in [0, 255] or floats in [0, 1]), shaped (N, H, W)
    or (N, D), and applies the same shape normalization (``geometry``: deskewing, width),
    scaling and standardization the network was trained with.
    """

    net: MLP
    norm: Normalization
    classes: list[str]
    image_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    geometry: Geometry = PLAIN
    # True: inputs are pixels, scaled to [0, 1] before standardizing. False: features as they are
    # (a HandnetClassifier fitted on arbitrary arrays standardized them unscaled).
    pixels: bool = True

    def check_data(
        self, source: str, X: npt.NDArray[np.generic], y: npt.NDArray[np.integer]
    ) -> None:
        """Refuse a labelled dataset (named ``source`` in the error) this model cannot score."""
        features = math.prod(X.shape[1:])
        if features != self.net.n_in:
            raise DatasetError(
                f"{source}: its images have {features} pixels, the model expects {self.net.n_in}"
            )
        if len(y) and y.max() >= len(self.classes):
            raise DatasetError(
                f"{source}: labels go up to {y.max()}, the model knows {len(self.classes)} classes"
            )

    def normalize_shape(self, images: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Raw images as the network sees them: their size checked and ``geometry`` applied
        (uint8 (N, H, W) if it has a step, else the images as given)."""
        images = np.asarray(images)
        if images.ndim < 2 or images.shape == self.image_shape:
            raise DatasetError(
                f"input is one item of shape {images.shape}; pass a batch of shape "
                f"(N, {', '.join(map(str, images.shape))}), e.g. x[None]"
            )
        features = math.prod(images.shape[1:])
        if features != self.net.n_in:
            raise DatasetError(
                f"input of shape {images.shape} has {features} features per row, "
                f"the model expects {self.net.n_in}"
            )
        return self.geometry.apply(images, self.image_shape)

    def standardize(self, shaped: npt.NDArray[np.generic]) -> Array:
        """Inputs from ``normalize_shape`` as the network's input: pixels scaled to [0, 1]
        (`to_unit`), or features as they are, then standardized."""
        if self.pixels:
            return self.norm.apply(to_unit(shaped, "input"))
        return self.norm.apply(finite_rows(shaped, "input: features"))

    def prepare(self, images: npt.NDArray[np.generic]) -> Array:
        """Raw inputs (N, H, W) or (N, D) -> the standardized (N, D) float32 the network takes."""
        return self.standardize(self.normalize_shape(images))

    def predict_proba(self, images: npt.NDArray[np.generic]) -> Array:
        """Class probabilities (N, classes) of raw inputs, prepared as in training."""
        return softmax(self.net.predict_logits(self.prepare(images)))

    def predict(self, images: npt.NDArray[np.generic]) -> list[str]:
        """The most probable class name of each input."""
        return [self.classes[i] for i in self.predict_proba(images).argmax(axis=1)]
