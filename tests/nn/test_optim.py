from __future__ import annotations

import numpy as np
import pytest

from handnet.nn.losses import L2Penalty
from handnet.nn.optim import SGD


@pytest.mark.parametrize(
    ("lr", "momentum", "steps"), [(0.1, 0.0, 1), (0.1, 0.9, 1), (0.05, 0.9, 5), (0.3, 0.5, 3)]
)
def test_heavy_ball_matches_the_seed_formula(lr: float, momentum: float, steps: int) -> None:
    """w_{t+1} = w_t - lr g(w_t) + momentum (w_t - w_{t-1}), with g from a fixed quadratic."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 3))
    grad = lambda w: A * w  # noqa: E731  (gradient of sum(A w^2 / 2))
    w = rng.standard_normal((4, 3))
    params = {"w": w.copy()}
    opt = SGD(params, momentum=momentum)
    prev = w.copy()
    for _ in range(steps):
        expected = w - lr * grad(w) + momentum * (w - prev)
        opt.step(params, {"w": grad(params["w"])}, lr)
        prev, w = w, expected
        np.testing.assert_allclose(params["w"], expected, rtol=1e-12)


def test_nesterov_step() -> None:
    params = {"w": np.array([1.0, 2.0])}
    opt = SGD(params, momentum=0.9, nesterov=True)
    opt.velocity["w"][:] = [0.5, -0.5]
    g = np.array([1.0, 1.0])
    v = 0.9 * np.array([0.5, -0.5]) - 0.1 * g
    expected = np.array([1.0, 2.0]) + 0.9 * v - 0.1 * g
    opt.step(params, {"w": g.copy()}, 0.1)
    np.testing.assert_allclose(params["w"], expected)


def test_step_keeps_float32() -> None:
    params = {"w": np.ones(3, np.float32)}
    SGD(params, momentum=0.9).step(params, {"w": np.ones(3, np.float32)}, 0.1)
    assert params["w"].dtype == np.float32


@pytest.mark.parametrize("momentum", [-0.1, 1.0])
def test_rejects_bad_momentum(momentum: float) -> None:
    with pytest.raises(ValueError, match="momentum"):
        SGD({"w": np.zeros(1)}, momentum=momentum)


@pytest.mark.parametrize("nesterov", [False, True])
def test_weight_decay_in_the_step_is_l2_penalty_then_a_plain_step(nesterov: bool) -> None:
    """The fast path, v <- mu v - lr (g + lambda W), folded into the update and taking -lr g
    from a scaled backward pass, against the plain one: L2Penalty.add_gradient, then a step."""
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((5, 4)), "b": rng.standard_normal(4)}
    fused = {k: v.copy() for k, v in params.items()}
    plain_opt = SGD(params, momentum=0.9, nesterov=nesterov)
    fused_opt = SGD(fused, momentum=0.9, nesterov=nesterov)
    lam = 0.01
    for lr in (0.1, 0.05, 0.2):
        g = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        plain_g = {k: v.copy() for k, v in g.items()}
        L2Penalty(lam).add_gradient([(params["W"], plain_g["W"])])  # dW += lambda W
        plain_opt.step(params, plain_g, lr)
        scaled = {k: -lr * v for k, v in g.items()}  # what backward gives from -lr dL/dlogits
        fused_opt.step(fused, scaled, lr, weight_decay=lam, scaled=True)
        for k in params:
            np.testing.assert_allclose(fused[k], params[k], rtol=1e-12, atol=1e-15)


def test_weight_decay_leaves_biases_alone() -> None:
    b_only = SGD({"b": np.ones(2)}, momentum=0.0)
    b = {"b": np.ones(2)}
    b_only.step(b, {"b": np.zeros(2)}, 0.1, weight_decay=1.0)
    np.testing.assert_array_equal(b["b"], np.ones(2))  # a 1-D parameter is not decayed


def test_scaled_gradients_skip_the_multiplication_by_minus_lr() -> None:
    params = {"w": np.array([1.0, 2.0])}
    SGD(params, momentum=0.0).step(params, {"w": np.array([-0.1, 0.2])}, 0.1, scaled=True)
    np.testing.assert_allclose(params["w"], [0.9, 2.2])
