"""The whole MLP: gradient check through every layer, shapes, dtype, repr."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_grad_close, numerical_grad

from handnet.nn.losses import L2Penalty, softmax, softmax_cross_entropy
from handnet.nn.model import MLP


@pytest.mark.parametrize(
    ("activation", "hidden", "dropout"),
    [("tanh", (7,), 0.0), ("tanh", (6, 5), 0.3), ("relu", (6, 5), 0.0), ("relu", (8,), 0.5)],
)
def test_mlp_gradient_with_l2_and_fixed_dropout_mask(
    activation: str, hidden: tuple[int, ...], dropout: float
) -> None:
    """Packed finite differences of CE + L2 through the whole network, in float64.

    The dropout stream is re-seeded before every forward, so each evaluation sees the same mask.
    """
    rng = np.random.default_rng(0)
    net = MLP(4, hidden, 3, activation=activation, dropout=dropout, rng=rng, dtype=np.float64)
    for layer in net.layers:
        if "b" in layer.params:
            layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape) * 0.1
    X = rng.standard_normal((5, 4))
    y = np.array([0, 2, 1, 1, 0])
    lam = 0.01

    def reseed() -> None:
        for layer in net.layers:
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(42)

    def loss() -> float:
        reseed()
        ce, _ = softmax_cross_entropy(net.forward(X.copy(), train=True), y)
        return ce + L2Penalty(lam).value(net.weight_pairs())

    reseed()
    _, dz = softmax_cross_entropy(net.forward(X.copy(), train=True), y)
    net.backward(dz)
    L2Penalty(lam).add_gradient(net.weight_pairs())
    grads = {k: g.copy() for k, g in net.gradients().items()}
    for k, p in net.parameters().items():
        assert_grad_close(grads[k], numerical_grad(loss, p), rtol=1e-6)


def test_forward_shapes_dtype_and_keys() -> None:
    net = MLP(784, (32,), 10, rng=np.random.default_rng(0))
    X = np.zeros((3, 784), np.float32)
    assert net.forward(X).shape == (3, 10) and net.forward(X).dtype == np.float32
    assert list(net.parameters()) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"]
    assert repr(net) == "MLP([Dense(784, 32), Tanh(), Dense(32, 10)])"
    assert net.predict_logits(np.zeros((5000, 784), np.float32), batch_size=2048).shape == (
        5000,
        10,
    )


def test_softmax_rows_sum_to_one() -> None:
    p = softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, 0.0]], np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert p.dtype == np.float32


def test_rejects_unknown_activation() -> None:
    with pytest.raises(ValueError, match="activation"):
        MLP(4, (3,), 2, activation="sigmoid", rng=np.random.default_rng(0))
