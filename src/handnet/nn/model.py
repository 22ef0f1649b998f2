"""The network: an MLP as an ordered list of layers, and the one way to save and rebuild it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.nn.arrays import empty, like, to_numpy
from handnet.nn.layers import ACTIVATIONS, Dense, Dropout, Layer

Array = npt.NDArray[np.floating]


class MLP:
    """Dense -> activation -> [dropout] for each hidden size, then a Dense output layer (logits).

    Parameters are enumerated by ``parameters()`` under dotted keys (``layers.0.W``), the one way to
    reach the model's state: the optimizer, the model file and the gradient checks all use it.
    The weights are NumPy arrays until `to` moves them to another array library (a GPU).

    Parameters
    ----------
    n_in : int
        Input width (784 for 28 x 28 images).
    hidden_sizes : Sequence of int
        The width of each hidden layer, first to last; empty for a linear model.
    n_out : int
        Output width: the number of classes.
    activation : {"tanh", "relu"}
        The hidden layers' activation.
    dropout : float, default=0.0
        The drop rate after each hidden activation; 0 adds no Dropout layers.
    rng : numpy.random.Generator
        Draws the initial weights (and the dropout masks, unless ``dropout_rng`` is given).
    dropout_rng : numpy.random.Generator, optional
        A stream of its own for the dropout masks.
    dtype : dtype-like, default=float32
        The parameters' dtype.

    Raises
    ------
    ValueError
        If ``activation`` is not one of `handnet.nn.ACTIVATIONS`.
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
            self.layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                self.layers.append(Dropout(dropout, dropout_rng or rng))
        self.layers.append(Dense(sizes[-1], n_out, rng, dtype))
        first = self.layers[0]
        assert isinstance(first, Dense)
        first.needs_dX = False

    def forward(self, X: Array, *, train: bool = False) -> Array:
        """Logits for a batch of inputs, layer after layer.

        Parameters
        ----------
        X : array, shape (B, n_in)
            The inputs, standardized as in training.
        train : bool, default=False
            Training mode (dropout drops) or test mode.

        Returns
        -------
        array, shape (B, n_out)
            The logits, in the last layer's buffer (reused): copy them to keep them.
        """
        for layer in self.layers:
            X = layer.forward(X, train=train)  # the next layer's input
        return X

    def backward(self, dlogits: Array) -> None:
        """Back-propagate dL/dlogits, writing every layer's ``grads`` (`gradients`).

        Each layer turns dL/d(its output) into dL/d(its input), the chain rule applied layer by
        layer.

        Parameters
        ----------
        dlogits : array, shape (B, n_out)
            dL/dlogits for the last ``forward``; not modified.
        """
        d: Array | None = dlogits
        for layer in reversed(self.layers):
            assert d is not None
            d = layer.backward(d)

    def parameters(self) -> dict[str, Array]:
        """Every parameter under a dotted key, the arrays themselves (not copies).

        Returns
        -------
        dict of str to array
            ``layers.{i}.W`` (n_in, n_out) and ``layers.{i}.b`` (n_out,) for each Dense layer i.
        """
        return {
            f"layers.{i}.{k}": p
            for i, layer in enumerate(self.layers)
            for k, p in layer.params.items()
        }

    def gradients(self) -> dict[str, Array]:
        """Every parameter's gradient from the last `backward`, under the keys of `parameters`.

        Returns
        -------
        dict of str to array
            dL/dW (n_in, n_out) and dL/db (n_out,) under ``layers.{i}.W`` and ``layers.{i}.b``.
        """
        return {
            f"layers.{i}.{k}": g
            for i, layer in enumerate(self.layers)
            for k, g in layer.grads.items()
        }

    def weight_pairs(self) -> list[tuple[Array, Array]]:
        """(W, dW) for every weight matrix: what L2 regularization applies to (not biases).

        Returns
        -------
        list of (array, array)
            (W, dW) for each Dense layer, both (n_in, n_out), first layer first.
        """
        return [(layer.params["W"], layer.grads["W"]) for layer in self.dense_layers()]

    def dense_layers(self) -> list[Dense]:
        """The Dense layers, first to last (the output layer is the last).

        Returns
        -------
        list of Dense
            The layers themselves.
        """
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def predict_logits(self, X: Array, batch_size: int = 2048) -> Array:
        """Logits for any number of rows, computed in chunks (test mode), as a new array.

        Parameters
        ----------
        X : array, shape (N, n_in)
            The inputs, standardized as in training.
        batch_size : int, default=2048
            Rows per chunk.

        Returns
        -------
        array, shape (N, n_out)
            The logits, in the parameters' library and dtype.
        """
        W = self.layers[-1].params["W"]
        out = empty((X.shape[0], self.n_out), W)
        for i in range(0, X.shape[0], batch_size):
            rows = slice(i, min(i + batch_size, X.shape[0]))
            out[rows, ...] = self.forward(X[rows, ...], train=False)
        return out

    def to(self, ref: Any) -> MLP:
        """Move every parameter and gradient to the array library and device of ``ref``.

        Parameters
        ----------
        ref : array of any shape (d0, d1, ...)
            A CuPy array, a PyTorch tensor, or a NumPy array to come back.

        Returns
        -------
        MLP
            ``self``.
        """
        for layer in self.layers:
            for store in (layer.params, layer.grads):
                for k, v in store.items():
                    store[k] = like(to_numpy(v), ref)
            layer._buf.clear()  # type: ignore[attr-defined]
        return self

    def config(self) -> dict[str, Any]:
        """The architecture, as `from_state_dict` and the model file take it.

        Returns
        -------
        dict of str to object
            ``n_in``, ``hidden_sizes``, ``n_out``, ``activation`` and ``dropout``.
        """
        return {
            "n_in": self.n_in,
            "hidden_sizes": list(self.hidden_sizes),
            "n_out": self.n_out,
            "activation": self.activation,
            "dropout": self.dropout,
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter under its dotted key, as NumPy arrays (copied from a GPU if need be).

        Returns
        -------
        dict of str to ndarray
            ``layers.{i}.W`` (n_in, n_out) and ``layers.{i}.b`` (n_out,), as in `parameters`.
        """
        return {k: to_numpy(p) for k, p in self.parameters().items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], dtype: npt.DTypeLike = np.float32) -> MLP:
        """A network of the architecture ``config`` (`MLP.config`), its weights not yet set.

        Parameters
        ----------
        config : Mapping of str to object
            ``n_in``, ``hidden_sizes``, ``n_out``, ``activation`` and ``dropout``.
        dtype : dtype-like, default=float32
            The parameters' dtype.

        Returns
        -------
        MLP
            A new network, initialized from a fixed seed.
        """
        return cls(
            int(config["n_in"]),
            [int(h) for h in config["hidden_sizes"]],
            int(config["n_out"]),
            activation=str(config["activation"]),
            dropout=float(config["dropout"]),  # unused at test time, but it keeps the layer keys
            rng=np.random.default_rng(0),  # the weights are set by load_state_dict
            dtype=dtype,
        )

    def load_state_dict(self, state: Mapping[str, npt.ArrayLike]) -> MLP:
        """Copy ``state``'s arrays into the parameters, in the parameters' dtype and library.

        Parameters
        ----------
        state : Mapping of str to array-like
            An array for every key of `parameters`, of its shape: ``layers.{i}.W``
            (n_in, n_out), ``layers.{i}.b`` (n_out,) (`state_dict`).

        Returns
        -------
        MLP
            ``self``.

        Raises
        ------
        ValueError
            Naming the keys that are missing or extra, or the first key whose shape differs,
            before any value is copied.
        """
        params = self.parameters()
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or extra:
            raise ValueError(
                f"tensors do not match the architecture (missing {missing}, extra {extra})"
            )
        arrays = {k: np.asarray(state[k]) for k in params}
        for k, p in params.items():
            if arrays[k].shape != p.shape:
                raise ValueError(
                    f"tensor {k} has shape {arrays[k].shape}, the architecture needs {p.shape}"
                )
        for k, p in params.items():
            p[...] = like(arrays[k].astype(self.dtype), p)
        return self

    @classmethod
    def from_state_dict(
        cls,
        config: Mapping[str, Any],
        state: Mapping[str, npt.ArrayLike],
        dtype: npt.DTypeLike = np.float32,
    ) -> MLP:
        """The network of ``config`` with the weights of ``state``, in ``dtype``.

        This is how a model file, a checkpoint and the scikit-learn estimator rebuild a network.

        Parameters
        ----------
        config : Mapping of str to object
            The architecture (`MLP.config`).
        state : Mapping of str to array-like
            The weights (`MLP.state_dict`): ``layers.{i}.W`` (n_in, n_out), ``layers.{i}.b``
            (n_out,).
        dtype : dtype-like, default=float32
            The parameters' dtype.

        Returns
        -------
        MLP
            A new network.

        Raises
        ------
        ValueError
            If the keys or shapes of ``state`` do not match ``config``.
        """
        return cls.from_config(config, dtype).load_state_dict(state)

    def __repr__(self) -> str:
        return f"MLP([{', '.join(map(repr, self.layers))}])"


def count_parameters(config: Mapping[str, Any]) -> int:
    """Weights and biases of the network ``config`` describes: sum over layers of (a + 1) b.

    Parameters
    ----------
    config : Mapping of str to object
        At least ``n_in``, ``hidden_sizes`` and ``n_out`` (`MLP.config`).

    Returns
    -------
    int
        The number of parameters.
    """
    sizes = [int(config["n_in"]), *map(int, config["hidden_sizes"]), int(config["n_out"])]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))
