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

    Parameters
    ----------
    net : MLP
        The trained network, D inputs and C outputs.
    norm : Normalization
        The training split's mean and std, applied to every input.
    classes : list of str
        The C class names; output ``k`` is ``classes[k]``.
    image_shape : tuple of int
        The shape of one input before flattening: ``(H, W)`` for images, ``(D,)`` for rows of
        features.
    meta : dict of str to object, default={}
        What the model file records besides (dataset, config, history, metrics, source).
    geometry : Geometry, default=PLAIN
        The shape normalization applied to every image first (`handnet.data.geometry`).
    pixels : bool, default=True
        Inputs are pixels, scaled to [0, 1] before standardizing; False: features as they are.
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
        """Refuse a labelled dataset this model cannot score.

        Parameters
        ----------
        source : str
            The dataset's name, for the error message.
        X : ndarray, shape (N, H, W)
            Its inputs, or rows (N, D).
        y : ndarray of int, shape (N,)
            Its labels.

        Raises
        ------
        DatasetError
            If the inputs do not have D features, or a label is not below C.
        """
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
        """Raw images as the network sees them: their size checked and ``geometry`` applied.

        Parameters
        ----------
        images : ndarray, shape (N, H, W)
            A batch of raw inputs, uint8 in [0, 255] or floats in [0, 1], or rows (N, D).

        Returns
        -------
        ndarray, shape (N, H, W)
            uint8 if ``geometry`` has a step, else ``images`` as given.

        Raises
        ------
        DatasetError
            If ``images`` is one item rather than a batch, or its items do not have D values.
        """
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
        """Inputs from ``normalize_shape`` as the network's input.

        Pixels are scaled to [0, 1] (`to_unit`), or features taken as they are, then
        standardized.

        Parameters
        ----------
        shaped : ndarray, shape (N, H, W)
            `normalize_shape`'s output, or rows (N, D).

        Returns
        -------
        ndarray of float32, shape (N, D)
            A new array, standardized.

        Raises
        ------
        DatasetError
            If a value is NaN or inf, or a pixel is outside [0, 255].
        """
        if self.pixels:
            return self.norm.apply(to_unit(shaped, "input"))
        return self.norm.apply(finite_rows(shaped, "input: features"))

    def prepare(self, images: npt.NDArray[np.generic]) -> Array:
        """Raw inputs as the standardized float32 rows the network takes.

        Parameters
        ----------
        images : ndarray, shape (N, H, W)
            A batch of raw inputs, or rows (N, D).

        Returns
        -------
        ndarray of float32, shape (N, D)
            The network's input.
        """
        return self.standardize(self.normalize_shape(images))

    def predict_proba(self, images: npt.NDArray[np.generic]) -> Array:
        """Class probabilities of raw inputs, prepared as in training.

        Parameters
        ----------
        images : ndarray, shape (N, H, W)
            A batch of raw inputs, or rows (N, D).

        Returns
        -------
        ndarray of float32, shape (N, C)
            p(class | input); each row sums to 1.
        """
        return softmax(self.net.predict_logits(self.prepare(images)))

    def predict(self, images: npt.NDArray[np.generic]) -> list[str]:
        """The most probable class name of each input.

        Parameters
        ----------
        images : ndarray, shape (N, H, W)
            A batch of raw inputs, or rows (N, D).

        Returns
        -------
        list of str
            N class names.
        """
        return [self.classes[i] for i in self.predict_proba(images).argmax(axis=1)]
