"""The network: an MLP as an ordered list of layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from handnet.nn.layers import ACTIVATIONS, Dense, Dropout, Layer

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
