"""Minibatch SGD with momentum. The optimizer holds only its velocity; the lr (and the L2
coefficient, when it joins the update) come in each step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from handnet.nn.arrays import like, namespace, to_numpy, write

Array = npt.NDArray[np.floating]


class SGD:
    """Minibatch SGD with heavy-ball momentum, in the seed report's form:

        w_{t+1} = w_t - lr_t * g_t + momentum * (w_t - w_{t-1})

    kept as a velocity v_t = w_t - w_{t-1}:  v <- momentum * v - lr * g;  w <- w + v.

    With ``nesterov=True`` the step looks ahead along the new velocity (Sutskever et al., 2013, in
    the form scikit-learn uses):  v <- momentum * v - lr * g;  w <- w + momentum * v - lr * g.

    L2 regularization can join the same update: with ``weight_decay`` lambda, g becomes
    g + lambda W for the weight matrices (parameters of 2 or more dimensions; biases are not
    decayed), the gradient of the term `handnet.nn.losses.L2Penalty` adds to the loss:

        v <- momentum * v - lr * (g + lambda * W);   w <- w + v

    ``L2Penalty.add_gradient`` followed by a step without ``weight_decay`` is the same update
    written plainly (tests/nn/test_optim.py compares the two); folded in, it costs one pass over
    each weight matrix less and no scratch array.

    Parameters
    ----------
    params : Mapping of str to array
        The parameters to be updated (`handnet.nn.MLP.parameters`), each W (n_in, n_out) or
        b (n_out,): a zero velocity is made for each, of its shape, library and device.
    momentum : float, default=0.9
        mu, in [0, 1); 0 is plain SGD.
    nesterov : bool, default=False
        Nesterov's look-ahead step instead of the heavy ball (needs ``momentum`` > 0).

    Raises
    ------
    ValueError
        If ``momentum`` is outside [0, 1), or ``nesterov`` is asked for with no momentum.
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

    def step(
        self,
        params: Mapping[str, Array],
        grads: Mapping[str, Array],
        lr: float,
        *,
        weight_decay: float = 0.0,
        scaled: bool = False,
    ) -> None:
        """Update ``params`` in place; ``grads`` is used as scratch (overwritten).

        ``grads`` holds g = dL/dw, or with ``scaled`` already -lr g: back-propagation is linear,
        so a loop that multiplies dL/dlogits by -lr (B x C numbers) gets every gradient scaled
        for free, and this step skips its pass over each parameter (`handnet.train.fit`).

        Parameters
        ----------
        params : Mapping of str to array
            The parameters under the keys given at construction, each W (n_in, n_out) or
            b (n_out,); updated in place.
        grads : Mapping of str to array
            g = dL/dw under the same keys, each of its parameter's shape ((n_in, n_out) or
            (n_out,)); overwritten.
        lr : float
            The learning rate of this step.
        weight_decay : float, default=0.0
            lambda: adds lambda W to the gradient of every parameter of 2 or more dimensions.
        scaled : bool, default=False
            ``grads`` holds -lr g already.
        """
        mu = self.momentum
        for k, w in params.items():
            v, G = self.velocity[k], grads[k]
            if not scaled:
                G *= -lr  # G = -lr g
            decay = lr * weight_decay if w.ndim >= 2 else 0.0  # lr lambda, for weights only
            if self.nesterov:  # the rarer option, written plainly (with temporaries)
                if decay:
                    G -= decay * w  # G = -lr (g + lambda W)
                v *= mu
                v += G  # v <- mu v - lr (g + lambda W)
                G += mu * v  # mu v - lr (g + lambda W)
                w += G  # w <- w + mu v - lr (g + lambda W)
                continue
            v *= mu  # v <- mu v
            v += G  # v <- mu v - lr g
            if decay:
                write(G, "multiply", w, decay)  # G <- lr lambda W (G is spent: scratch now)
                v -= G  # v <- mu v - lr (g + lambda W)
            w += v  # w <- w + v

    def to(self, ref: object) -> SGD:
        """Move the velocity to the array library and device of ``ref``, as `MLP.to` does.

        Parameters
        ----------
        ref : array of any shape (d0, d1, ...)
            An array of the library and device wanted.

        Returns
        -------
        SGD
            ``self``.
        """
        self.velocity = {k: like(to_numpy(v), ref) for k, v in self.velocity.items()}
        return self
