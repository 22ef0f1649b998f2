"""Finite-difference checks of every layer's backward pass, in float64."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import assert_grad_close, numerical_grad

from handnet.nn.layers import Buffers, Dense, Dropout, ReLU, Tanh


def fake_loss(out: np.ndarray, dout: np.ndarray) -> float:
    """L = sum(out * dout): its gradient with respect to out is exactly dout."""
    return float((out * dout).sum())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1)


def test_dense_gradients(rng: np.random.Generator) -> None:
    layer = Dense(5, 4, rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(4)
    X = rng.standard_normal((3, 5))
    dout = rng.standard_normal((3, 4))
    layer.forward(X, train=True)
    dX = layer.backward(dout)
    f = lambda: fake_loss(layer.forward(X, train=True), dout)  # noqa: E731
    assert dX is not None
    assert_grad_close(dX, numerical_grad(f, X))
    for k in ("W", "b"):
        assert_grad_close(layer.grads[k], numerical_grad(f, layer.params[k]))


def test_dense_first_layer_skips_dX(rng: np.random.Generator) -> None:
    layer = Dense(5, 4, rng, dtype=np.float64)
    layer.needs_dX = False
    layer.forward(rng.standard_normal((3, 5)), train=True)
    assert layer.backward(rng.standard_normal((3, 4))) is None


def test_dense_init_is_glorot_and_seeded() -> None:
    a = Dense(784, 800, np.random.default_rng(0)).params["W"]
    b = Dense(784, 800, np.random.default_rng(0)).params["W"]
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    bound = np.sqrt(6 / (784 + 800))
    assert np.abs(a).max() <= bound
    assert abs(a.std() - bound / np.sqrt(3)) < 0.01 * bound


@pytest.mark.parametrize("act", [Tanh, ReLU])
def test_activation_gradients(act: type, rng: np.random.Generator) -> None:
    layer = act()
    X = rng.standard_normal((4, 6))
    X[np.abs(X) < 1e-3] = 0.5  # keep ReLU away from its kink
    dout = rng.standard_normal((4, 6))
    layer.forward(X.copy(), train=True)  # activations work in place: hand them copies
    dX = layer.backward(dout.copy())
    f = lambda: fake_loss(act().forward(X.copy(), train=True), dout)  # noqa: E731
    assert_grad_close(dX, numerical_grad(f, X))


def test_dropout_gradient_uses_the_same_mask(rng: np.random.Generator) -> None:
    layer = Dropout(0.5, np.random.default_rng(3))
    X = rng.standard_normal((5, 8))
    out = layer.forward(X.copy(), train=True)
    mask = out / X  # (m / (1 - p)) per entry
    assert set(np.unique(np.round(mask, 12))) <= {0.0, 2.0}
    dout = rng.standard_normal((5, 8))
    np.testing.assert_allclose(layer.backward(dout.copy()), dout * mask)


def test_dropout_rate_and_eval_mode() -> None:
    layer = Dropout(0.3, np.random.default_rng(0))
    X = np.ones((200, 500), np.float32)
    out = layer.forward(X.copy(), train=True)
    assert out.dtype == np.float32
    assert abs((out == 0).mean() - 0.3) < 0.01
    assert abs(out.mean() - 1.0) < 0.02  # inverted scaling keeps the expectation
    np.testing.assert_array_equal(layer.forward(X.copy(), train=False), X)


def test_dropout_mask_is_seeded_and_exactly_scaled() -> None:
    """The mask comes from 16-bit draws: the drop rate is k / 2^16 and the scale exactly inverts it.

    An odd batch (7 x 9 = 63 entries, not a multiple of the four draws per 64-bit word) works too.
    """
    X = np.ones((7, 9), np.float32)
    a = Dropout(0.2, np.random.default_rng(5)).forward(X.copy(), train=True).copy()
    b = Dropout(0.2, np.random.default_rng(5)).forward(X.copy(), train=True)
    np.testing.assert_array_equal(a, b)
    k = round(0.2 * 65536)
    assert set(np.unique(a)) == {0.0, np.float32(65536 / (65536 - k))}
    big = Dropout(0.2, np.random.default_rng(1)).forward(np.ones((400, 1000)), train=True)
    assert abs(big.mean() - 1.0) < 0.005  # E[Y] = X
    assert abs((big == 0).mean() - k / 65536) < 0.002


def test_dropout_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="dropout"):
        Dropout(1.0, np.random.default_rng(0))


def test_scratch_buffers_are_not_copied_with_a_layer(rng: np.random.Generator) -> None:
    layer = Dense(4, 3, rng)
    X = rng.standard_normal((5, 4), dtype=np.float32)
    out = layer.forward(X, train=False).copy()
    twin = copy.deepcopy(layer)
    assert twin._buf._store == {} and layer._buf._store != {}
    np.testing.assert_array_equal(twin.forward(X, train=False), out)


def test_buffers_reuse_rows_and_remake_on_a_new_shape_or_dtype() -> None:
    buf, ref = Buffers(), np.zeros(1, np.float32)
    big = buf.get("a", ref, (8, 3, 2))
    big[...] = 7.0
    small = buf.get("a", ref, (5, 3, 2))  # a smaller batch: the leading rows of the same array
    assert small.shape == (5, 3, 2) and np.shares_memory(small, big)
    assert not np.shares_memory(buf.get("a", ref, (9, 3, 2)), big)  # longer: regrown
    assert buf.get("a", ref, (4, 2, 3)).shape == (4, 2, 3)  # another trailing shape: remade
    assert buf.get("a", ref, (4, 2, 3), "intp").dtype == np.intp  # another dtype: remade
    assert buf.get("b", ref, (2, 2)).dtype == np.float32  # the dtype of ``ref`` by default
