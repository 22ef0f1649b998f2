"""The forward pass of the default network on one batch, with the shape of every array.

Run at build time by the backpropagation page (docs/hooks/handnet_docs.py), so the table is
what handnet.nn computes today. Prints a Markdown table.
"""

import numpy as np

from handnet.nn import MLP, softmax_cross_entropy
from handnet.train.config import TrainConfig

cfg = TrainConfig()  # the default model: what `make train` trains
B, D, C = cfg.batch_size, 784, 10
rng = np.random.default_rng(0)
net = MLP(D, cfg.hidden_sizes, C, activation=cfg.activation, dropout=cfg.dropout, rng=rng)
X = rng.standard_normal((B, D), dtype=np.float32)
y = rng.integers(0, C, B)

print("| step | layer | output | dtype | parameters |")
print("| --- | --- | --- | --- | --- |")
print(f"| input | | `X` {X.shape} | {X.dtype} | |")
out = X
for i, layer in enumerate(net.layers):
    out = layer.forward(out, train=True)
    params = ", ".join(f"`layers.{i}.{k}` {tuple(p.shape)}" for k, p in layer.params.items())
    print(f"| {i} | `{layer!r}` | {tuple(out.shape)} | {out.dtype} | {params} |")
loss, dlogits = softmax_cross_entropy(out, y)
print(
    f"| loss | softmax cross-entropy | `L` (a float), `dL/dlogits` {dlogits.shape} | "
    f"{dlogits.dtype} | |"
)
print()
print(
    f"B = {B} (the batch), D = {D} (28×28 pixels), H = {cfg.hidden_sizes[0]}, C = {C}: "
    f"{sum(p.size for p in net.parameters().values()):,} parameters in all."
)
