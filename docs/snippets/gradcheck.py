"""Every hand-written gradient of handnet.nn against central differences, in float64.

The comparison the test suite runs (tests/nn/), with its own ``numerical_grad``: move one entry
at a time by +-eps, take (f(x + eps) - f(x - eps)) / 2 eps, and compare with what ``backward``
wrote. A layer alone is checked through the "fake loss" f = sum(out * G), whose gradient with
respect to ``out`` is G. Run at build time by the backpropagation page; prints a Markdown table.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from handnet.nn import MLP, Dense, Dropout, L2Penalty, ReLU, Tanh, softmax_cross_entropy

TESTS = Path(__file__).resolve().parents[2] / "tests" / "conftest.py"
spec = importlib.util.spec_from_file_location("handnet_test_helpers", TESTS)
helpers = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
numerical_grad = helpers.numerical_grad  # the tests' central differences, eps = 1e-6

rng = np.random.default_rng(0)
rows = []  # (gradient, analytic, numeric)


def check(what, analytic, f, x):
    rows.append((what, analytic.copy(), numerical_grad(f, x)))


def fake_loss(layer, X, G):
    """f = sum(layer(X) * G); activations work in place, so each call gets a copy of X."""
    return lambda: float((layer.forward(X.copy(), train=True) * G).sum())


# Dense: Y = X W + b.
dense = Dense(5, 4, rng, dtype=np.float64)
dense.params["b"][:] = rng.standard_normal(4)
X, G = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
dense.forward(X, train=True)
dX = dense.backward(G).copy()
f = fake_loss(dense, X, G)
check("Dense: dX = G Wᵀ", dX, f, X)
check("Dense: dW = Xᵀ G", dense.grads["W"], f, dense.params["W"])
check("Dense: db = Σₙ G", dense.grads["b"], f, dense.params["b"])

# Tanh and ReLU (inputs kept away from ReLU's kink at 0, where it has no derivative).
for act, formula in ((Tanh, "dX = G (1 − Y²)"), (ReLU, "dX = G [Y > 0]")):
    X, G = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    X[np.abs(X) < 1e-3] = 0.5
    layer = act()
    layer.forward(X.copy(), train=True)
    dX = layer.backward(G.copy())
    check(f"{act.__name__}: {formula}", dX, fake_loss(act(), X, G), X)

# Dropout: the same mask in every forward pass, by re-seeding the layer's generator.
drop = Dropout(0.5, np.random.default_rng(42))
X, G = rng.standard_normal((5, 8)), rng.standard_normal((5, 8))


def dropped():
    drop.rng = np.random.default_rng(42)
    return drop.forward(X.copy(), train=True)


dropped()
dX = drop.backward(G.copy())
check("Dropout: dX = G m / (1 − p)", dX, lambda: float((dropped() * G).sum()), X)

# Softmax cross-entropy: the loss itself is the scalar.
Z, y = rng.standard_normal((6, 4)), np.array([0, 3, 1, 2, 3, 0])
dZ = softmax_cross_entropy(Z, y)[1]
check("softmax CE: dZ = (P − Y) / B", dZ, lambda: softmax_cross_entropy(Z, y)[0], Z)

# L2: (lambda / 2) ||W||^2 adds lambda W to dW.
W, lam = rng.standard_normal((3, 4)), 0.3
dW = np.zeros_like(W)
L2Penalty(lam).add_gradient([(W, dW)])
check("L2: dW = λ W", dW, lambda: L2Penalty(lam).value([(W, dW)]), W)

# The whole network, CE + L2 through Dense, tanh, dropout, ..., for every parameter.
net = MLP(4, (6, 5), 3, activation="tanh", dropout=0.3, rng=rng, dtype=np.float64)
X, y = rng.standard_normal((5, 4)), np.array([0, 2, 1, 1, 0])


def reseed():
    """The same dropout masks in every forward pass: each Dropout's generator anew."""
    for layer in net.layers:
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(7)


def total_loss():
    reseed()
    logits = net.forward(X.copy(), train=True)
    return softmax_cross_entropy(logits, y)[0] + L2Penalty(lam).value(net.weight_pairs())


reseed()
net.backward(softmax_cross_entropy(net.forward(X.copy(), train=True), y)[1])
L2Penalty(lam).add_gradient(net.weight_pairs())
grads = {k: g.copy() for k, g in net.gradients().items()}
for k, p in net.parameters().items():
    check(f"MLP 4-6-5-3, CE + L2: `{k}`", grads[k], total_loss, p)

print("| gradient | shape | largest \\|analytic − numeric\\| | largest \\|numeric\\| |")
print("| --- | --- | ---: | ---: |")
worst = 0.0
for what, analytic, numeric in rows:
    err, scale = np.abs(analytic - numeric).max(), np.abs(numeric).max()
    worst = max(worst, err / max(1.0, scale))
    print(f"| {what} | {numeric.shape} | {err:.1e} | {scale:.2f} |")
print()
print(f"Largest error relative to the gradient's scale: {worst:.1e} (the tests allow 1e-5).")
assert worst < 1e-5, "a hand-written gradient disagrees with finite differences"
