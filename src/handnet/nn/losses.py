"""Losses: softmax cross-entropy fused with its gradient, and the L2 penalty on weight matrices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.nn.arrays import namespace, write

Array = npt.NDArray[np.floating]


def softmax(logits: Array) -> Array:
    """p = exp(z - max z) / sum exp(z - max z), row by row, in place on ``logits``.

    Subtracting each row's max keeps exp() from overflowing and changes nothing mathematically.

    Parameters
    ----------
    logits : array, shape (N, C)
        z, one row per sample; overwritten by p.

    Returns
    -------
    array, shape (N, C)
        p, the same array as ``logits``: each row sums to 1.
    """
    xp = namespace(logits)
    logits -= xp.max(logits, axis=1, keepdims=True)  # z - max z, each row's max is 0
    write(logits, "exp", logits)  # e = exp(z - max z)                       (N, C)
    logits /= xp.sum(logits, axis=1, keepdims=True)  # p = e / sum e            (N, C)
    return logits


def log_softmax(logits: Array) -> Array:
    """log p = z - max z - log sum exp(z - max z), row by row, in place on ``logits``.

    The log of `softmax` without the exp and log of every probability, so tiny ones stay exact.

    Parameters
    ----------
    logits : array, shape (N, C)
        z, one row per sample; overwritten by log p.

    Returns
    -------
    array, shape (N, C)
        log p, the same array as ``logits``.
    """
    xp = namespace(logits)
    logits -= xp.max(logits, axis=1, keepdims=True)  # z - max z                (N, C)
    logits -= xp.log(xp.sum(xp.exp(logits), axis=1, keepdims=True))  # - log sum e  (N, C)
    return logits


def one_hot(y: Any, n_classes: int, ref: Any) -> Any:
    """Y[n, c] = 1 if y_n = c else 0, in ``ref``'s library and dtype.

    Parameters
    ----------
    y : array of int, shape (N,)
        Labels in [0, C), on ``ref``'s device.
    n_classes : int
        C.
    ref : array, shape (N, C)
        An array of the library and dtype wanted (the logits).

    Returns
    -------
    array, shape (N, C)
        The one-hot rows.
    """
    xp = namespace(ref)
    return xp.astype(y[:, None] == xp.arange(n_classes, device=y.device), ref.dtype)


def softmax_cross_entropy(
    logits: Array, y: npt.NDArray[np.integer], grad_scale: float = 1.0
) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    p = softmax(z) = exp(z - max z) / sum exp(z - max z)       (N, C)
    L = -(1/N) sum_n log p[n, y_n]
    dL/dz = (p - onehot(y)) / N                                   (N, C)

    Softmax and cross-entropy are fused because the gradient of the pair is this simple difference,
    while the softmax Jacobian alone is a dense C x C matrix per sample. ``logits`` is left as
    it was; the gradient is a new array, multiplied by ``grad_scale`` (the training loop passes
    -lr: see `handnet.nn.optim.SGD.step`).

    Parameters
    ----------
    logits : array, shape (N, C)
        z, one row per sample; not modified.
    y : array of int, shape (N,)
        The labels, in [0, C).
    grad_scale : float, default=1.0
        A factor on the gradient.

    Returns
    -------
    loss : float
        L, the mean cross-entropy.
    dlogits : array, shape (N, C)
        dL/dz times ``grad_scale``, a new array.
    """
    xp = namespace(logits)
    N, C = logits.shape
    z = logits - xp.max(logits, axis=1, keepdims=True)  # (N, C), each row's max is 0
    e = xp.exp(z)  # (N, C)
    s = xp.sum(e, axis=1, keepdims=True)  # (N, 1)
    Y = one_hot(y, C, z)  # (N, C)
    # -log p_y = log sum_c e_c - z_y, averaged over the rows
    loss = float(xp.sum(xp.log(s[:, 0])) - xp.sum(z * Y)) / N
    e /= s  # p                                                              (N, C)
    e -= Y  # p - onehot(y)
    e *= grad_scale / N  # dL/dz = (p - onehot(y)) / N, times grad_scale
    return loss, e


class L2Penalty:
    """Adds the L2 term to each weight's gradient, and returns its value for the loss.

    L2 = (lambda / 2) * sum_l ||W_l||_F^2,     dL2/dW_l = lambda * W_l

    This is the one place where regularization enters both the loss and the gradient. It takes
    (W, dW) pairs for weight matrices only: biases are not decayed, since shrinking them
    does not reduce the model's capacity and only shifts its outputs.

    The seed report wrote ``f + lambda * ||w||`` with an unsquared norm, whose gradient
    ``lambda * w / ||w||`` has a constant length and is undefined at w = 0. The squared form used
    here gives the same gradient at a given w when ``lambda_here = lambda_seed / ||w||``.

    It is a small object rather than a function to own one scratch array per weight, so the
    per-step ``lambda * W`` needs no allocation, and so the training loop can add the gradient
    every step (`add_gradient`) but compute the loss term only when it records it (`value`).

    Parameters
    ----------
    weight_decay : float
        lambda; 0 turns the penalty off.
    """

    def __init__(self, weight_decay: float) -> None:
        self.weight_decay = weight_decay
        self._scratch: list[Array] = []

    def add_gradient(self, weights: Sequence[tuple[Array, Array]]) -> None:
        """dW += lambda W for every (W, dW) pair: two passes, into a scratch array and back.

        Parameters
        ----------
        weights : Sequence of (array, array)
            (W, dW) pairs, each (n_in, n_out) (`handnet.nn.MLP.weight_pairs`); dW is
            updated in place.
        """
        lam = self.weight_decay
        if lam == 0.0:
            return
        if [(s.shape, type(s)) for s in self._scratch] != [(W.shape, type(W)) for W, _ in weights]:
            self._scratch = [namespace(W).empty_like(W) for W, _ in weights]
        for (W, dW), s in zip(weights, self._scratch):
            write(s, "multiply", W, lam)  # lambda W                         (n_in, n_out)
            dW += s  # dW += lambda W

    def value(self, weights: Sequence[tuple[Array, Array]]) -> float:
        """(lambda / 2) * sum_l ||W_l||^2, the term it adds to the loss.

        Parameters
        ----------
        weights : Sequence of (array, array)
            (W, dW) pairs, each (n_in, n_out) (`handnet.nn.MLP.weight_pairs`); only W is read.

        Returns
        -------
        float
            The penalty.
        """
        lam = self.weight_decay
        if lam == 0.0:
            return 0.0
        return 0.5 * lam * sum(float(namespace(W).sum(W * W)) for W, _ in weights)
