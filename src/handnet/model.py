"""The network: an MLP as an ordered list of layers, and a Classifier that wraps it for use."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.data.split import Normalization, finite_rows, to_unit
from handnet.errors import DatasetError
from handnet.geometry import PLAIN, Geometry
from handnet.layers import ACTIVATIONS, Dense, Dropout, Layer

Array = npt.NDArray[np.floating]


class MLP:
    """Dense -> activation -> [dropout] for each hidden size, then a Dense output layer (logits).

    Parameters are enumerated by ``parameters()`` under dotted keys (``layers.0.W``), the one way to
    reach the model's state: the optimizer, the model file and the gradient checks all use it.
    """

    def __init__(
        self,
        n_in: int,
        hidden_sizes: Sequence[int],
        n_out: int,
        *,
        activation: str = "tanh",
        dropout: float = 0.0,
        rng: np.random.Generator,
        dropout_rng: np.random.Generator | None = None,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.n_in, self.n_out = n_in, n_out
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.activation, self.dropout = activation, dropout
        self.dtype = np.dtype(dtype)
        self.layers: list[Layer] = []
        sizes = [n_in, *self.hidden_sizes]
        for a, b in zip(sizes, sizes[1:]):
            self.layers.append(Dense(a, b, rng, dtype))
            self.layers.append(ACTIVATIONS[activation](dtype))
            if dropout > 0:
                self.layers.append(Dropout(dropout, dropout_rng or rng, dtype))
        self.layers.append(Dense(sizes[-1], n_out, rng, dtype))
        first = self.layers[0]
        assert isinstance(first, Dense)
        first.needs_dX = False

    def forward(self, X: Array, *, train: bool = False) -> Array:
        """Logits (N, n_out) for inputs (N, n_in). The result is a reused buffer: copy to keep it."""
        for layer in self.layers:
            X = layer.forward(X, train=train)
        return X

    def backward(self, dlogits: Array) -> None:
        """Back-propagate dL/dlogits (N, n_out), writing every layer's ``grads``."""
        d: Array | None = dlogits
        for layer in reversed(self.layers):
            assert d is not None
            d = layer.backward(d)

    def parameters(self) -> dict[str, Array]:
        return {
            f"layers.{i}.{k}": p
            for i, layer in enumerate(self.layers)
            for k, p in layer.params.items()
        }

    def gradients(self) -> dict[str, Array]:
        return {
            f"layers.{i}.{k}": g
            for i, layer in enumerate(self.layers)
            for k, g in layer.grads.items()
        }

    def weight_pairs(self) -> list[tuple[Array, Array]]:
        """(W, dW) for every weight matrix: what L2 regularization applies to (not biases)."""
        return [
            (layer.params["W"], layer.grads["W"])
            for layer in self.layers
            if isinstance(layer, Dense)
        ]

    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def predict_logits(self, X: Array, batch_size: int = 2048) -> Array:
        """Logits for any number of rows, computed in chunks, returned as a new array."""
        out = np.empty((X.shape[0], self.n_out), dtype=self.dtype)
        for i in range(0, X.shape[0], batch_size):
            out[i : i + batch_size] = self.forward(X[i : i + batch_size], train=False)
        return out

    def __repr__(self) -> str:
        return f"MLP([{', '.join(map(repr, self.layers))}])"


def softmax(logits: Array) -> Array:
    """p = exp(z - max z) / sum exp(z - max z), row-wise, in place."""
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


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
