"""The network, by hand: layers, losses, the MLP, SGD with momentum, schedules, the output fine-tune.

Start here. This package imports NumPy and the standard library only, and reads top to bottom in
this order: `layers` (Dense, Tanh, ReLU, Dropout: forward and backward), `losses` (softmax
cross-entropy, L2), `model` (the MLP), `optim` (SGD with momentum), `schedules` (warmup + cosine)
and `finetune` (the closed-form output layer). `arrays` holds what differs between array
libraries, so that the same code runs on CuPy or PyTorch tensors (a GPU).

A whole training loop, with nothing but this package: a 2-16-2 tanh network learns XOR.

>>> import numpy as np
>>> from handnet.nn import MLP, SGD, L2Penalty, softmax_cross_entropy, warmup_cosine
>>> rng = np.random.default_rng(0)
>>> X = rng.uniform(-1, 1, size=(256, 2)).astype(np.float32)       # (N, 2) points in a square
>>> y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)           # (N,) XOR of the signs
>>> net = MLP(2, [16], 2, activation="tanh", rng=rng)
>>> opt = SGD(net.parameters(), momentum=0.9)
>>> l2 = L2Penalty(1e-4)
>>> steps, batch = 600, 32
>>> for step in range(steps):
...     idx = rng.integers(0, len(X), batch)                        # a random minibatch
...     logits = net.forward(X[idx], train=True)                    # forward  (B, 2)
...     loss, dlogits = softmax_cross_entropy(logits, y[idx])       # loss and dL/dlogits
...     net.backward(dlogits)                                       # backward: every dW, db
...     l2.add_gradient(net.weight_pairs())                         # dW += lambda W
...     lr = warmup_cosine(step, base_lr=0.5, warmup_steps=50, total_steps=steps)
...     opt.step(net.parameters(), net.gradients(), lr)             # w <- w + v
>>> accuracy = (net.predict_logits(X).argmax(axis=1) == y).mean()
>>> bool(accuracy > 0.95)
True
"""

from handnet.nn.finetune import FinetuneResult, finetune_output, solve_ridge
from handnet.nn.layers import ACTIVATIONS, Dense, Dropout, ReLU, Tanh
from handnet.nn.losses import L2Penalty, softmax, softmax_cross_entropy
from handnet.nn.model import MLP, count_parameters
from handnet.nn.optim import SGD
from handnet.nn.schedules import warmup_cosine

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "SGD",
    "Dense",
    "Dropout",
    "FinetuneResult",
    "L2Penalty",
    "ReLU",
    "Tanh",
    "count_parameters",
    "finetune_output",
    "softmax",
    "softmax_cross_entropy",
    "solve_ridge",
    "warmup_cosine",
]
