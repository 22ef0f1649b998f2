"""Minibatch SGD with momentum. The optimizer holds only its velocity; the lr comes in each step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from handnet.nn.arrays import like, namespace, to_numpy

Array = npt.NDArray[np.floating]


class SGD:
    """Heavy-ball momentum, in the seed report's form:

        w_{t+1} = w_t - lr_t * g_t + momentum * (w_t - w_{t-1})

    kept as a velocity v_t = w_t - w_{t-1}:  v <- momentum * v - lr * g;  w <- w + v.

    With ``nesterov=True`` the step looks ahead along the new velocity (Sutskever et al., 2013, in
    the form scikit-learn uses):  v <- momentum * v - lr * g;  w <- w + momentum * v - lr * g.

    L2 regularization is not the optimizer's business: `handnet.nn.losses.L2Penalty` adds its
    gradient to ``g`` before the step, so the update stays the plain formula above.
    """

    def __init__(
        self, params: Mapping[str, Array], momentum: float = 0.9, nesterov: bool = False
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov needs a momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = {k: namespace(p).zeros_like(p) for k, p in params.items()}  # v_0 = 0

    def step(self, params: Mapping[str, Array], grads: Mapping[str, Array], lr: float) -> None:
        """Update ``params`` in place. ``grads`` is used as scratch (overwritten with -lr g)."""
        mu = self.momentum
        for k, w in params.items():
            v, g = self.velocity[k], grads[k]
            v *= mu  # v <- mu v
            g *= -lr  # g <- -lr g
            v += g  # v <- mu v - lr g
            if self.nesterov:
                g += mu * v  # -lr g + mu v   (a temporary: the option is rare)
                w += g  # w <- w + mu v - lr g
            else:
                w += v  # w <- w + v

    def to(self, ref: object) -> SGD:
        """Move the velocity to the array library and device of ``ref``, as `MLP.to` does."""
        self.velocity = {k: like(to_numpy(v), ref) for k, v in self.velocity.items()}
        return self
