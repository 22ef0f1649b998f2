"""handnet.nn on every array library: the same gradients, checked by finite differences on each
library in float64, and the same training steps in float32 as NumPy's within rounding."""

from __future__ import annotations

import numpy as np
import pytest
from backends import backend_params, converter
from conftest import assert_grad_close

from handnet.nn import MLP, SGD, L2Penalty, softmax_cross_entropy
from handnet.nn.arrays import namespace, to_numpy


def fixed_masks(net: MLP) -> None:
    """Re-seed every dropout stream, so each forward pass draws the same masks."""
    for layer in net.layers:
        if hasattr(layer, "rng"):
            layer.rng = np.random.default_rng(42)


@pytest.mark.parametrize("device", backend_params())
@pytest.mark.parametrize(("activation", "dropout"), [("tanh", 0.3), ("relu", 0.0)])
def test_mlp_gradient_matches_finite_differences_on_each_library(
    device: str, activation: str, dropout: float
) -> None:
    """Central differences of CE + L2 through the whole network, in float64, on ``device``."""
    to = converter(device)
    rng = np.random.default_rng(0)
    net = MLP(4, (6, 5), 3, activation=activation, dropout=dropout, rng=rng, dtype=np.float64)
    host = {k: v.copy() for k, v in net.state_dict().items()}
    host["layers.0.b"] += 0.1  # biases away from 0, so ReLU's kink is not where we probe
    X, y = to(rng.standard_normal((5, 4))), to(np.array([0, 2, 1, 1, 0]))
    net.to(X)
    lam = 0.01

    def loss(state: dict[str, np.ndarray]) -> float:
        net.load_state_dict(state)
        fixed_masks(net)
        ce, _ = softmax_cross_entropy(
            net.forward(namespace(X).asarray(X, copy=True), train=True), y
        )
        return ce + L2Penalty(lam).value(net.weight_pairs())

    loss(host)
    fixed_masks(net)
    _, dz = softmax_cross_entropy(net.forward(namespace(X).asarray(X, copy=True), train=True), y)
    net.backward(dz)
    L2Penalty(lam).add_gradient(net.weight_pairs())
    grads = {k: to_numpy(g).copy() for k, g in net.gradients().items()}
    eps = 1e-6
    for k, p in host.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            plus = loss(host)
            p[i] = old - eps
            minus = loss(host)
            p[i] = old
            numeric[i] = (plus - minus) / (2 * eps)
        assert_grad_close(grads[k], numeric, rtol=1e-6)


@pytest.mark.parametrize("device", backend_params())
def test_training_steps_agree_with_numpy_in_float32(device: str) -> None:
    """Five SGD steps (dropout, L2, Nesterov) give NumPy's weights within float32 rounding."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 20)).astype(np.float32)
    y = rng.integers(0, 3, 32)

    def train(to: object) -> tuple[float, dict[str, np.ndarray]]:
        net = MLP(20, [16, 8], 3, dropout=0.2, rng=np.random.default_rng(1))
        Xd, yd = to(X), to(y)  # type: ignore[operator]
        net.to(Xd)
        opt, l2 = SGD(net.parameters(), 0.9, nesterov=True), L2Penalty(1e-3)
        for _ in range(5):
            logits = net.forward(Xd, train=True)
            assert logits.dtype == namespace(Xd).float32  # float32 end to end
            loss, dlogits = softmax_cross_entropy(logits, yd)
            net.backward(dlogits)
            l2.add_gradient(net.weight_pairs())
            opt.step(net.parameters(), net.gradients(), 0.1)
        return loss, net.state_dict()

    ref_loss, ref = train(lambda a: a)
    loss, got = train(converter(device))
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-5)
