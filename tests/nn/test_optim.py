from __future__ import annotations

import numpy as np
import pytest

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
