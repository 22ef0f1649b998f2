"""The training step's fast path against the plain algorithm it stands for."""

from __future__ import annotations

import numpy as np
import pytest

from handnet.nn import MLP, SGD, L2Penalty, softmax_cross_entropy
from handnet.train.fit import train_step


@pytest.mark.parametrize("nesterov", [False, True])
def test_train_step_is_the_plain_step_with_l2(nesterov: bool) -> None:
    """train_step scales dL/dlogits by -lr and folds L2 into the update; the plain form is
    backward, dW += lambda W (L2Penalty), then v <- mu v - lr g; w <- w + v. Same masks, float64."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 12))
    y = rng.integers(0, 3, 16)

    def net() -> MLP:
        return MLP(12, [10, 8], 3, dropout=0.3, rng=np.random.default_rng(1), dtype=np.float64)

    fast, plain = net(), net()
    fast_opt = SGD(fast.parameters(), 0.9, nesterov)
    plain_opt = SGD(plain.parameters(), 0.9, nesterov)
    lam = 1e-3
    for lr in (0.1, 0.05, 0.2):
        loss, correct = train_step(fast, fast_opt, X.copy(), y, lr, lam)
        logits = plain.forward(X.copy(), train=True)  # the same dropout stream, so the same masks
        plain_loss, dlogits = softmax_cross_entropy(logits, y)
        assert correct == int((logits.argmax(axis=1) == y).sum())
        plain.backward(dlogits)
        L2Penalty(lam).add_gradient(plain.weight_pairs())
        plain_opt.step(plain.parameters(), plain.gradients(), lr)
        assert loss == pytest.approx(plain_loss, rel=1e-12)
        for k, p in plain.parameters().items():
            np.testing.assert_allclose(fast.parameters()[k], p, rtol=1e-12, atol=1e-14)
