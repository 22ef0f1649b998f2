"""Layers with hand-written forward and backward passes: Dense, Tanh, ReLU, Dropout.

Every layer follows one protocol: ``params`` and ``grads`` are dicts with the same keys, allocated
once; ``forward(X, train=...)`` keeps the minimum it needs for the backward pass on ``self``, and
``backward(dY)`` *writes* the gradients (never accumulates) and returns ``dX``. Shapes: B is the
batch, ``n_in``/``n_out`` a Dense layer's widths, H the width of an activation.

What is cached, and why: Dense keeps its input X (dW = X^T dY needs it); Tanh and ReLU keep
their *output* Y, since both derivatives are cheaper from Y than from X (1 - Y^2, [Y > 0]);
Dropout keeps its mask. Nothing is recomputed in the backward pass.

For speed, outputs live in per-layer buffers reused across steps (`Buffers`), and activations
work in place on their input, as scikit-learn's do: an output is valid until the next
``forward`` of the same layer. Copy it if you need to keep it.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from handnet.nn.arrays import empty, like, namespace, write

Array = npt.NDArray[np.floating]


class Layer(Protocol):
    """What every layer has: ``params`` and ``grads`` (same keys), ``forward`` and ``backward``.

    Attributes
    ----------
    params : dict of str to array
        The parameters, e.g. W (n_in, n_out) and b (n_out,) for `Dense`; empty for activations.
    grads : dict of str to array
        dL/d(each parameter), same keys and shapes ((n_in, n_out), (n_out,)), written by
        ``backward``.
    """

    params: dict[str, Array]
    grads: dict[str, Array]

    def forward(self, X: Array, *, train: bool) -> Array:
        """The layer's output for a batch, keeping on ``self`` what ``backward`` needs.

        Parameters
        ----------
        X : array, shape (B, n_in)
            The batch of inputs.
        train : bool
            Training mode (dropout drops) or test mode.

        Returns
        -------
        array, shape (B, n_out)
            The output, valid until the layer's next ``forward``.
        """
        ...

    def backward(self, dY: Array) -> Array | None:
        """Write dL/d(parameters) into ``grads``, and return dL/dX.

        Parameters
        ----------
        dY : array, shape (B, n_out)
            dL/dY for the last ``forward``'s output.

        Returns
        -------
        array, shape (B, n_in), or None
            dX = dL/dX; None where nobody needs it (the first `Dense` layer).
        """
        ...


class Buffers:
    """Named scratch arrays reused from step to step; ``get`` returns a view of a buffer's
    leading rows, grown to the largest first dimension asked for.

    Fresh multi-megabyte temporaries cost more than the arithmetic done in them (the kernel
    zeroes every new page), so the layers and the augmentation (`handnet.data.augment`) keep
    theirs here. A buffer is made in the library, device and dtype of the array it serves
    (``ref``, or the dtype named), so the same code runs on NumPy or on a GPU library.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[str, str | None], Any] = {}

    def get(
        self,
        name: str,
        ref: Any,
        shape: tuple[int, ...],
        dtype: str | None = None,
    ) -> Any:
        """The first ``shape[0]`` rows of the buffer ``name`` (uninitialized).

        The buffer is remade when it is too short or its trailing shape, dtype or array type
        (library) differ.

        Parameters
        ----------
        name : str
            The buffer's name, unique within its owner ("Y", "dX", "mask").
        ref : array of any shape (d0, d1, ...)
            An array of the library, device and dtype the buffer must have.
        shape : tuple of int
            The view's shape, (n, ...).
        dtype : str, optional
            A dtype by name (``"bool"``) instead of ``ref``'s; it is part of the buffer's key.

        Returns
        -------
        array, shape (n, ...)
            A view of the buffer's first n rows.
        """
        key = (name, dtype)  # a named dtype is part of the name; else the buffer follows ref's
        buf = self._store.get(key)
        if (
            buf is None
            or type(buf) is not type(ref)
            or buf.shape[0] < shape[0]
            or buf.shape[1:] != tuple(shape[1:])
            or (dtype is None and buf.dtype != ref.dtype)
        ):
            buf = empty((max(shape[0], 1), *shape[1:]), ref, dtype)
            self._store[key] = buf
        return buf[: shape[0], ...]

    def clear(self) -> None:
        """Forget every buffer (`handnet.nn.MLP.to` does, when the arrays change library)."""
        self._store = {}

    def __getstate__(self) -> dict[str, object]:
        # Scratch is not state: a pickled or deep-copied layer starts empty and regrows its own
        # (writable) buffers, rather than carrying, say, read-only copies of the last batch.
        return {"_store": {}}


class Dense:
    """Affine map Y = X W + b, with W (n_in, n_out) and b (n_out,).

    Glorot-uniform init, U(-a, a) with a = sqrt(6 / (n_in + n_out)): it keeps the variance of
    activations and of gradients roughly constant through tanh layers (Glorot & Bengio, 2010).
    ReLU layers get the same init, not He's (twice the variance): best.toml's one hidden layer
    trains well with it, and one init keeps the seed-to-seed comparisons of the recipes simple.

    Parameters
    ----------
    n_in : int
        Input width.
    n_out : int
        Output width.
    rng : numpy.random.Generator
        Draws the initial W.
    dtype : dtype-like, default=float32
        The parameters' dtype.
    """

    def __init__(
        self, n_in: int, n_out: int, rng: np.random.Generator, dtype: npt.DTypeLike = np.float32
    ) -> None:
        a = math.sqrt(6.0 / (n_in + n_out))
        W = rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)  # (n_in, n_out)
        self.params = {"W": W, "b": np.zeros(n_out, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.needs_dX = True  # the first layer's dX is never used: skipping it saves a third
        self._buf = Buffers()  # of its GEMMs (`MLP` turns it off)
        self._X: Array | None = None

    def forward(self, X: Array, *, train: bool) -> Array:
        """Y = X W + b.

        Parameters
        ----------
        X : array, shape (B, n_in)
            The batch; kept (not copied) for dW in the backward pass.
        train : bool
            Unused: the layer is the same in training and at test.

        Returns
        -------
        array, shape (B, n_out)
            Y, in the layer's buffer: valid until its next ``forward``.
        """
        W, b = self.params["W"], self.params["b"]
        self._X = X  # (B, n_in), kept for dW
        Y = write(self._buf.get("Y", W, (X.shape[0], W.shape[1])), "matmul", X, W)  # X W (B, n_out)
        Y += b  # Y = X W + b, b broadcast over the rows
        return Y

    def backward(self, dY: Array) -> Array | None:
        """dW = X^T dY and db = sum_rows dY, written into ``grads``; returns dX = dY W^T.

        Parameters
        ----------
        dY : array, shape (B, n_out)
            dL/dY.

        Returns
        -------
        array, shape (B, n_in), or None
            dX = dL/dX, in the layer's buffer; None when ``needs_dX`` is off (the first layer).
        """
        assert self._X is not None, "backward before forward"
        W = self.params["W"]
        write(self.grads["W"], "matmul", self._X.T, dY)  # dW = X^T dY        (n_in, n_out)
        write(self.grads["b"], "sum", dY, axis=0)  # db = sum_rows dY               (n_out,)
        if not self.needs_dX:
            return None
        dX = self._buf.get("dX", W, (dY.shape[0], W.shape[0]))
        return write(dX, "matmul", dY, W.T)  # dX = dY W^T                  (B, n_in)

    def __repr__(self) -> str:
        n_in, n_out = self.params["W"].shape
        return f"Dense({n_in}, {n_out})"


class _Activation:
    """What elementwise activations share: no parameters, a scratch buffer, the cached output."""

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._buf = Buffers()
        self._Y: Array | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Tanh(_Activation):
    """Y = tanh(X), in place.

    Since d tanh(x)/dx = 1 - tanh(x)^2, dX = dY * (1 - Y^2): the derivative comes from the cached
    output, with no call to tanh in the backward pass.
    """

    def forward(self, X: Array, *, train: bool) -> Array:
        """Y = tanh(X), in place: ``X`` is overwritten, and kept for the backward pass.

        Parameters
        ----------
        X : array, shape (B, H)
            The pre-activations.
        train : bool
            Unused: tanh is the same in training and at test.

        Returns
        -------
        array, shape (B, H)
            Y, the same array as ``X``.
        """
        self._Y = write(X, "tanh", X)  # Y = tanh(X)                          (B, H)
        return self._Y

    def backward(self, dY: Array) -> Array:
        """dX = dY * (1 - Y^2), in place on ``dY``.

        Parameters
        ----------
        dY : array, shape (B, H)
            dL/dY.

        Returns
        -------
        array, shape (B, H)
            dX = dL/dX, the same array as ``dY``.
        """
        assert self._Y is not None, "backward before forward"
        t = write(self._buf.get("t", dY, self._Y.shape), "multiply", self._Y, self._Y)  # Y^2
        write(t, "subtract", 1.0, t)  # 1 - Y^2                                (B, H)
        dY *= t  # dX = dY * (1 - Y^2), in place                               (B, H)
        return dY


class ReLU(_Activation):
    """Y = max(X, 0), in place. dX = dY * [Y > 0] (the kink at 0 gets derivative 0)."""

    def forward(self, X: Array, *, train: bool) -> Array:
        """Y = max(X, 0), in place: ``X`` is overwritten, and kept for the backward pass.

        Parameters
        ----------
        X : array, shape (B, H)
            The pre-activations.
        train : bool
            Unused: ReLU is the same in training and at test.

        Returns
        -------
        array, shape (B, H)
            Y, the same array as ``X``.
        """
        self._Y = write(X, "maximum", X, 0.0)  # Y = max(X, 0)                 (B, H)
        return self._Y

    def backward(self, dY: Array) -> Array:
        """dX = dY * [Y > 0], in place on ``dY``.

        Parameters
        ----------
        dY : array, shape (B, H)
            dL/dY.

        Returns
        -------
        array, shape (B, H)
            dX = dL/dX, the same array as ``dY``.
        """
        assert self._Y is not None, "backward before forward"
        mask = self._buf.get("mask", dY, self._Y.shape, dtype="bool")
        write(mask, "greater", self._Y, 0.0)  # [Y > 0]                         (B, H)
        write(dY, "multiply", dY, mask)  # dX = dY * [Y > 0], in place           (B, H)
        return dY


class Dropout:
    """Inverted dropout: in training Y = X * m / (1 - p) with m ~ Bernoulli(1 - p); at test Y = X.

    Scaling at training time keeps E[Y] = X, so nothing changes at test time. The mask comes from
    the layer's own Generator, so the dropout stream is independent of the others.

    Plainly, the mask is ``m = rng.random(X.shape) >= p``. It is drawn here as 16-bit integers u,
    four from each 64-bit output of the bit generator, and m = [u >= k] with k = round(p * 2^16):
    half the cost of float32 uniforms (which take 32 bits each and one more pass). The drop rate
    is therefore k / 2^16, within 2^-17 of p (0.2 -> 0.199997), and the scale uses that exact
    rate, so E[Y] = X still holds exactly (tests/nn/test_layers.py compares the two). The mask is
    drawn on the host and moved to the data's device, so a seed gives the same masks on a GPU.

    Parameters
    ----------
    p : float
        The drop rate, in [0, 1).
    rng : numpy.random.Generator
        The layer's own stream of masks.

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1).
    """

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng
        self._threshold = min(round(p * 65536), 65535)  # k: drop when u < k, P = k / 2^16
        self._scale = 65536 / (65536 - self._threshold)  # 1 / (1 - k / 2^16)
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._buf = Buffers()
        self._mask: Array | None = None

    def draw_keep(self, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
        """[u >= k] for uniform 16-bit u, on the host: 1 with probability 1 - k / 2^16.

        Parameters
        ----------
        shape : tuple of int
            (n, width), the mask's shape.

        Returns
        -------
        ndarray of bool, shape (n, width)
            The keep mask m, in the layer's buffer: valid until the next draw.
        """
        n, width = shape
        words = self.rng.bit_generator.random_raw(-(-n * width // 4))  # ceil(n w / 4) uint64
        u = words.view(np.uint16)[: n * width].reshape(n, width)  # uniform on [0, 2^16)
        keep = self._buf.get("keep", u, shape, dtype="bool")
        return np.greater_equal(u, self._threshold, out=keep)

    def forward(self, X: Array, *, train: bool) -> Array:
        """Y = X * m / (1 - p) with a fresh mask m in training; Y = X at test.

        Parameters
        ----------
        X : array, shape (B, H)
            The activations; not modified (the activation's backward still needs them).
        train : bool
            Drop (True) or pass ``X`` through (False).

        Returns
        -------
        array, shape (B, H)
            Y, in the layer's buffer; ``X`` itself at test or when p = 0.
        """
        if not train or self.p == 0.0:
            self._mask = None
            return X
        xp = namespace(X)
        keep = like(self.draw_keep(X.shape), X)  # m: 1 kept, 0 dropped (B, H), on X's device
        # m / (1 - p): the booleans copied in as 1.0 and 0.0, then scaled in place (as one
        # product, bool times a Python float runs in float64 and casts back, 3x slower)
        mask = self._buf.get("mask", X, X.shape)
        mask[...] = keep if xp is np else xp.astype(keep, mask.dtype)  # m
        mask *= self._scale  # m / (1 - p)                                    (B, H)
        self._mask = mask
        # Not in place: X is the activation's cached output, which its backward still needs.
        return write(self._buf.get("Y", X, X.shape), "multiply", X, mask)  # Y = X m/(1-p)

    def backward(self, dY: Array) -> Array:
        """dX = dY * m / (1 - p), in place on ``dY`` (dY itself at test).

        Parameters
        ----------
        dY : array, shape (B, H)
            dL/dY.

        Returns
        -------
        array, shape (B, H)
            dX = dL/dX, the same array as ``dY``.
        """
        if self._mask is not None:
            dY *= self._mask  # dX = dY * m / (1 - p)                            (B, H)
        return dY

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


ACTIVATIONS: dict[str, type[Tanh] | type[ReLU]] = {"tanh": Tanh, "relu": ReLU}
