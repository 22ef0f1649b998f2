"""Loss functions: fused softmax cross-entropy, and the L2 penalty on weight matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]


def softmax_cross_entropy(logits: Array, y: npt.NDArray[np.integer]) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    p = softmax(z) = exp(z - max z) / sum exp(z - max z)       (N, C)
    L = -(1/N) sum_n log p[n, y_n]
    dL/dz = (p - onehot(y)) / N                                   (N, C)

    Softmax and cross-entropy are fused because the gradient of the pair is this simple difference,
    while the softmax Jacobian alone is a dense C x C matrix per sample. Subtracting the row max
    keeps exp() from overflowing and changes nothing mathematically.
    """
    N = logits.shape[0]
    rows = np.arange(N)
    z = logits - logits.max(axis=1, keepdims=True)  # (N, C), each row's max is 0
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)  # (N, 1)
    loss = float(np.log(s[:, 0]).sum() - z[rows, y].sum()) / N  # -log p_y = log sum e - z_y
    e /= s  # p
    e[rows, y] -= 1.0  # p - onehot
    e *= 1.0 / N
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
    """

    def __init__(self, weight_decay: float) -> None:
        self.weight_decay = weight_decay
        self._scratch: list[Array] = []

    def add_gradient(self, weights: Sequence[tuple[Array, Array]]) -> None:
        """dW += lambda W for every (W, dW) pair: two passes, into a scratch array and back."""
        lam = self.weight_decay
        if lam == 0.0:
            return
        if [s.shape for s in self._scratch] != [W.shape for W, _ in weights]:
            self._scratch = [np.empty_like(W) for W, _ in weights]
        for (W, dW), s in zip(weights, self._scratch):
            np.multiply(W, lam, out=s)
            dW += s  # dW += lambda W

    def value(self, weights: Sequence[tuple[Array, Array]]) -> float:
        """(lambda / 2) * sum_l ||W_l||^2, the term it adds to the loss."""
        lam = self.weight_decay
        if lam == 0.0:
            return 0.0
        return 0.5 * lam * sum(float(np.dot(W.reshape(-1), W.reshape(-1))) for W, _ in weights)
