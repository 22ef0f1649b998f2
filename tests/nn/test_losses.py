from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_grad_close, numerical_grad

from handnet.nn.losses import L2Penalty, softmax_cross_entropy


def test_softmax_cross_entropy_value_and_gradient() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4))
    y = np.array([0, 3, 1, 2, 3, 0])
    loss, dz = softmax_cross_entropy(z, y)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert np.isclose(loss, -np.log(p[np.arange(6), y]).mean())
    assert_grad_close(dz, numerical_grad(lambda: softmax_cross_entropy(z, y)[0], z))


def test_softmax_cross_entropy_gradient_scale() -> None:
    """grad_scale multiplies the gradient only (the training loop passes -lr), not the loss."""
    rng = np.random.default_rng(2)
    z, y = rng.standard_normal((5, 3)), np.array([0, 2, 1, 1, 0])
    loss, dz = softmax_cross_entropy(z, y)
    loss_s, dz_s = softmax_cross_entropy(z, y, grad_scale=-0.05)
    assert loss_s == loss
    np.testing.assert_allclose(dz_s, -0.05 * dz, rtol=1e-14)


def test_softmax_cross_entropy_is_stable_for_huge_logits() -> None:
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]], np.float32)
    loss, dz = softmax_cross_entropy(z, np.array([0, 1]))
    assert np.isfinite(loss) and loss < 1e-6
    assert np.all(np.isfinite(dz)) and dz.dtype == np.float32


def test_loss_with_l2_gradient() -> None:
    """d/dW [CE(X W) + (lam/2)||W||^2] through the one function that adds the L2 term."""
    rng = np.random.default_rng(1)
    X, W = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    y = np.array([0, 1, 2, 3, 1])
    lam = 0.3

    def total() -> float:
        return softmax_cross_entropy(X @ W, y)[0] + L2Penalty(lam).value([(W, np.zeros_like(W))])

    _, dz = softmax_cross_entropy(X @ W, y)
    dW = X.T @ dz
    l2 = L2Penalty(lam)
    l2.add_gradient([(W, dW)])
    assert np.isclose(l2.value([(W, dW)]), 0.5 * lam * (W**2).sum())
    assert_grad_close(dW, numerical_grad(total, W))


def test_l2_zero_changes_nothing() -> None:
    W, dW = np.ones((2, 2), np.float32), np.full((2, 2), 3.0, np.float32)
    L2Penalty(0.0).add_gradient([(W, dW)])
    assert L2Penalty(0.0).value([(W, dW)]) == 0.0
    np.testing.assert_array_equal(dW, 3.0)


def test_l2_value_alone_matches_the_penalty_and_leaves_the_gradient() -> None:
    rng = np.random.default_rng(0)
    W, dW = rng.standard_normal((4, 3)), np.zeros((4, 3))
    assert L2Penalty(0.1).value([(W, dW)]) == pytest.approx(0.05 * (W**2).sum())
    assert not dW.any()


def test_log_softmax_is_the_log_of_softmax_and_keeps_tiny_probabilities() -> None:
    from handnet.nn.losses import log_softmax, softmax

    z = np.array([[1.0, 2.0, 3.0], [0.0, -200.0, 5.0]])
    np.testing.assert_allclose(np.exp(log_softmax(z.copy())), softmax(z.copy()), rtol=1e-12)
    assert log_softmax(z.copy())[1, 1] == pytest.approx(-205.0 - np.log1p(np.exp(-5.0)), rel=1e-12)
