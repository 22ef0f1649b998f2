"""Least-squares output layer: the normal equations match numpy.linalg.lstsq, and a worse fit
is discarded."""

from __future__ import annotations

import numpy as np
from conftest import tiny_dataset

from handnet.nn.finetune import finetune_output, hidden_features, normal_equations, solve_ridge
from handnet.nn.model import MLP
from handnet.train.fit import evaluate


def small_net(seed: int = 0) -> MLP:
    return MLP(20, (12, 7), 3, activation="tanh", dropout=0.3, rng=np.random.default_rng(seed))


def design(net: MLP, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    H = hidden_features(net, X).astype(np.float64)
    return np.hstack([H, np.ones((len(X), 1))]), np.eye(3)[y]


def test_matches_lstsq_without_ridge() -> None:
    data = tiny_dataset(n=200, d=20, c=3)
    net = small_net()
    XtX, XtY = normal_equations(net, data.X_train, data.y_train, 3, batch_size=37)
    W, method = solve_ridge(XtX, XtY, 0.0)
    A, Y = design(net, data.X_train, data.y_train)
    ref = np.linalg.lstsq(A, Y, rcond=None)[0]
    assert method == "cholesky"
    np.testing.assert_allclose(W, ref, rtol=1e-6, atol=1e-8)


def test_matches_lstsq_with_ridge() -> None:
    data = tiny_dataset(n=200, d=20, c=3)
    net = small_net(1)
    XtX, XtY = normal_equations(net, data.X_train, data.y_train, 3)
    lam = 2.5
    W, _ = solve_ridge(XtX, XtY, lam)
    A, Y = design(net, data.X_train, data.y_train)
    # ridge regression = least squares on [A; sqrt(lam) I] and [Y; 0]
    A2 = np.vstack([A, np.sqrt(lam) * np.eye(A.shape[1])])
    Y2 = np.vstack([Y, np.zeros((A.shape[1], 3))])
    np.testing.assert_allclose(W, np.linalg.lstsq(A2, Y2, rcond=None)[0], rtol=1e-6, atol=1e-8)


def test_singular_system_falls_back_to_lstsq() -> None:
    XtX = np.ones((3, 3))  # rank 1: Cholesky fails
    XtY = np.ones((3, 2))
    W, method = solve_ridge(XtX, XtY, 0.0)
    assert method == "lstsq"
    np.testing.assert_allclose(XtX @ W, XtY, atol=1e-10)


def test_finetune_writes_the_least_squares_layer_when_validation_agrees() -> None:
    data = tiny_dataset(n=200, d=20, c=3)
    net = small_net(2)
    res = finetune_output(net, data.X_train, data.y_train, data.X_val, data.y_val, ridge=1e-3)
    assert res.val_before is not None and res.val_after is not None
    assert res.kept == (res.val_after >= res.val_before)
    if res.kept:
        XtX, XtY = normal_equations(net, data.X_train, data.y_train, 3)
        W, _ = solve_ridge(XtX, XtY, 1e-3)
        out = net.layers[-1].params
        np.testing.assert_allclose(out["W"], W[:-1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["b"], W[-1], rtol=1e-5, atol=1e-6)
    assert ("kept" in res.message) == res.kept


def test_a_layer_that_lowers_validation_accuracy_is_discarded() -> None:
    data = tiny_dataset(n=200, d=20, c=3)
    net = small_net(3)
    # Train the output layer a little towards the labels first, so that it beats chance.
    XtX, XtY = normal_equations(net, data.X_val, data.y_val, 3)
    W, _ = solve_ridge(XtX, XtY, 1e-6)
    net.layers[-1].params["W"][...] = W[:-1]
    net.layers[-1].params["b"][...] = W[-1]
    before = {k: v.copy() for k, v in net.layers[-1].params.items()}
    acc = evaluate(net, data.X_val, data.y_val).accuracy
    # A huge ridge shrinks the refit to zero: every prediction becomes class 0, a drop.
    res = finetune_output(net, data.X_train, data.y_train, data.X_val, data.y_val, ridge=1e12)
    assert not res.kept and res.val_before == acc and res.val_after is not None
    assert res.val_after < acc and "discarded" in res.message
    for k, v in before.items():
        np.testing.assert_array_equal(net.layers[-1].params[k], v)
