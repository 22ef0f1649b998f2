"""Minibatch SGD with momentum. The optimizer holds only its velocity; the lr comes in each step."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]


class SGD:
    """Heavy-ball momentum, in the seed report's form:

        w_{t+1} = w_t - lr_t * g_t + momentum * (w_t - w_{t-1})

    kept as a velocity v_t = w_t - w_{t-1}:  v <- momentum * v - lr * g;  w <- w + v.

    With ``nesterov=True`` the step looks ahead along the new velocity (Sutskever et al., 2013, in
    the form scikit-learn uses):  v <- momentum * v - lr * g;  w <- w + momentum * v - lr * g.

    ``step(..., weight_decay=lam, decayed=keys)`` adds the L2 gradient lam * w to g for those keys
    inside the same update (g <- g + lam * w), so the training loop needs no separate pass over the
    weights for it: six passes per array in all, where L2 then step took eight.
    """

    def __init__(
        self, params: dict[str, Array], momentum: float = 0.9, nesterov: bool = False
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov needs a momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = {k: np.zeros_like(p) for k, p in params.items()}

    def step(
        self,
        params: dict[str, Array],
        grads: dict[str, Array],
        lr: float,
        *,
        weight_decay: float = 0.0,
        decayed: Collection[str] = (),
    ) -> None:
        """Update ``params`` in place. ``grads`` is used as scratch (overwritten)."""
        for k, w in params.items():
            lam = weight_decay if k in decayed else 0.0
            self._update(w, self.velocity[k], grads[k], lr=lr, lam=lam)

    def _update(self, w: Array, v: Array, g: Array, *, lr: float, lam: float) -> None:
        """In place: v <- mu v - lr (g + lam w);  w <- w + v  (six passes at most)."""
        mu = self.momentum
        np.multiply(v, mu, out=v)  # v <- mu v
        np.multiply(g, -lr, out=g)  # g <- -lr g
        if self.nesterov:
            if lam != 0.0:
                g += np.multiply(
                    w, -lr * lam
                )  # -lr (g + lam w)   (temporaries: the option is rare)
            v += g  # v <- mu v - lr (g + lam w)
            g += mu * v
            w += g  # w <- w + mu v - lr (g + lam w)
            return
        v += g  # v <- mu v - lr g
        if lam != 0.0:
            np.multiply(w, -lr * lam, out=g)  # g is free now: reuse it for -lr lam w
            v += g
        w += v
