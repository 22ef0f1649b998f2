"""Layers with hand-written forward and backward passes.

Every layer follows one protocol: ``params`` and ``grads`` are dicts with the same keys, allocated
once; ``forward(X, train=...)`` keeps the minimum it needs for the backward pass on ``self`` and
``backward(dY)`` *writes* the gradients (never accumulates) and returns ``dX``.

For speed, outputs live in per-layer buffers that are reused across steps (`Buffers`), and the
activations work in place on their input, as scikit-learn's do: an output is valid until the next
``forward`` of the same layer. Copy it if you need to keep it.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]


class Layer(Protocol):
    params: dict[str, Array]
    grads: dict[str, Array]

    def forward(self, X: Array, *, train: bool) -> Array: ...
    def backward(self, dY: Array) -> Array | None: ...


class Buffers:
    """Named scratch arrays grown to the largest batch seen; ``get`` returns a view of ``n`` rows."""

    def __init__(self, dtype: npt.DTypeLike) -> None:
        self.dtype = np.dtype(dtype)
        self._store: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, width: int, dtype: npt.DTypeLike | None = None) -> np.ndarray:
        buf = self._store.get(name)
        if buf is None or buf.shape[0] < n:
            buf = np.empty((n, width), dtype=dtype or self.dtype)
            self._store[name] = buf
        return buf[:n]

    def __getstate__(self) -> dict[str, object]:
        # Scratch is not state: a pickled or deep-copied layer starts empty and regrows its own
        # (writable) buffers, rather than carrying, say, read-only copies of the last batch.
        return {"dtype": self.dtype, "_store": {}}


class Dense:
    """Affine map Y = X W + b, with W (n_in, n_out) and b (n_out,).

    Glorot-uniform init, U(-a, a) with a = sqrt(6 / (n_in + n_out)): it keeps the variance of
    activations and of gradients roughly constant through tanh layers (Glorot & Bengio, 2010).
    ReLU layers get the same init, not He's (twice the variance): best.toml's one hidden layer
    trains well with it, and one init keeps the seed-to-seed comparisons of the recipes simple.
    """

    def __init__(
        self, n_in: int, n_out: int, rng: np.random.Generator, dtype: npt.DTypeLike = np.float32
    ) -> None:
        a = math.sqrt(6.0 / (n_in + n_out))
        W = rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)
        self.params = {"W": W, "b": np.zeros(n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.needs_dX = (
            True  # the first layer's dX is never used: skipping it saves a third of its GEMMs
        )
        self._buf = Buffers(dtype)
        self._X: Array | None = None

    def forward(self, X: Array, *, train: bool) -> Array:
        W, b = self.params["W"], self.params["b"]
        self._X = X  # (N, n_in), kept for dW
        Y = self._buf.get("Y", X.shape[0], W.shape[1])  # (N, n_out)
        np.matmul(X, W, out=Y)
        Y += b
        return Y

    def backward(self, dY: Array) -> Array | None:
        assert self._X is not None, "backward before forward"
        W = self.params["W"]
        np.matmul(self._X.T, dY, out=self.grads["W"])  # dW = X^T dY   (n_in, n_out)
        np.sum(dY, axis=0, out=self.grads["b"])  # db = sum_n dY   (n_out,)
        if not self.needs_dX:
            return None
        dX = self._buf.get("dX", dY.shape[0], W.shape[0])  # (N, n_in)
        np.matmul(dY, W.T, out=dX)  # dX = dY W^T
        return dX

    def __repr__(self) -> str:
        n_in, n_out = self.params["W"].shape
        return f"Dense({n_in}, {n_out})"


class _Activation:
    """What elementwise activations share: no parameters, a scratch buffer, the cached output."""

    def __init__(self, dtype: npt.DTypeLike = np.float32) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._buf = Buffers(dtype)
        self._Y: Array | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Tanh(_Activation):
    """Y = tanh(X), in place. dX = dY * (1 - Y^2): the derivative comes from the cached output."""

    def forward(self, X: Array, *, train: bool) -> Array:
        self._Y = np.tanh(X, out=X)
        return self._Y

    def backward(self, dY: Array) -> Array:
        assert self._Y is not None, "backward before forward"
        t = self._buf.get("t", *self._Y.shape)
        np.multiply(self._Y, self._Y, out=t)  # Y^2
        np.subtract(1.0, t, out=t)  # 1 - Y^2
        dY *= t
        return dY


class ReLU(_Activation):
    """Y = max(X, 0), in place. dX = dY * [Y > 0]."""

    def forward(self, X: Array, *, train: bool) -> Array:
        self._Y = np.maximum(X, 0.0, out=X)
        return self._Y

    def backward(self, dY: Array) -> Array:
        assert self._Y is not None, "backward before forward"
        n, width = self._Y.shape
        mask = self._buf.get("mask", n, width, dtype=bool)
        np.greater(self._Y, 0.0, out=mask)
        dY *= mask
        return dY


class Dropout:
    """Inverted dropout: in training Y = X * m / (1 - p) with m ~ Bernoulli(1 - p); at test Y = X.

    Scaling at training time keeps E[Y] = X, so nothing changes at test time. The mask comes from
    the layer's own Generator, so the dropout stream is independent of the others. It is drawn as
    16-bit integers u, four from each 64-bit output of the bit generator, and m = [u >= k] with
    k = round(p * 2^16): half the cost of float32 uniforms (which take 32 bits each and one more
    pass). The drop rate is therefore k / 2^16, within 2^-17 of p (0.2 -> 0.199997), and the scale
    uses that exact rate, so E[Y] = X still holds exactly.
    """

    def __init__(
        self, p: float, rng: np.random.Generator, dtype: npt.DTypeLike = np.float32
    ) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng
        self._threshold = min(round(p * 65536), 65535)  # k: drop when u < k, P = k / 2^16
        self._scale = 65536 / (65536 - self._threshold)  # 1 / (1 - k / 2^16)
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._buf = Buffers(dtype)
        self._mask: Array | None = None

    def forward(self, X: Array, *, train: bool) -> Array:
        if not train or self.p == 0.0:
            self._mask = None
            return X
        n, width = X.shape
        words = self.rng.bit_generator.random_raw(-(-n * width // 4))  # ceil(n w / 4) uint64
        u = words.view(np.uint16)[: n * width].reshape(n, width)  # uniform on [0, 2^16)
        keep = self._buf.get("keep", n, width, dtype=bool)
        np.greater_equal(u, self._threshold, out=keep)  # [u >= k]: 1 with probability 1 - k/2^16
        m = self._buf.get("mask", n, width)
        np.multiply(keep, m.dtype.type(self._scale), out=m)  # m / (1 - p)
        self._mask = m
        # Not in place: X is the activation's cached output, which its backward still needs.
        return np.multiply(X, m, out=self._buf.get("Y", n, width))

    def backward(self, dY: Array) -> Array:
        if self._mask is not None:
            dY *= self._mask  # dX = dY * m / (1 - p)
        return dY

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


ACTIVATIONS: dict[str, type[Tanh] | type[ReLU]] = {"tanh": Tanh, "relu": ReLU}
