"""The network, by hand: layers, losses, the MLP, SGD with momentum, schedules and the output fine-tune.

Start here. This package imports NumPy and the standard library only, and reads top to bottom in
this order: `layers` (dense, tanh, relu, dropout), `losses` (softmax cross-entropy, L2),
`model` (the MLP: forward, backward, parameters), `optim` (SGD), `schedules` (warmup + cosine)
and `finetune` (the closed-form output layer).
"""

from handnet.nn.finetune import FinetuneResult, finetune_output, solve_ridge
from handnet.nn.layers import ACTIVATIONS, Dense, Dropout, ReLU, Tanh
from handnet.nn.losses import L2Penalty, softmax_cross_entropy
from handnet.nn.model import MLP, softmax
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
    "finetune_output",
    "softmax",
    "softmax_cross_entropy",
    "solve_ridge",
    "warmup_cosine",
]
