"""handnet's hand-written math on a GPU (CuPy, PyTorch tensors as arrays) beside PyTorch itself.

    python bench/gpu.py                       # on a machine with a CUDA GPU
    python bench/gpu.py --systems handnet-torch,torch --shapes 784-64-10 --rows 5000   # a CPU smoke run

Seconds per epoch (``--rows`` bundled MNIST training images, float32; no augmentation, or with
``--aug distort`` configs/ciresan.toml's elastic and affine distortions, made on the device
for handnet and left out for PyTorch, which has no such transform of its own) is the
median of ``--epochs`` epochs after one warm-up epoch, read from each epoch's ``seconds`` in the
history that ``fit`` writes (the batch loop, without the validation pass). The systems:

- ``handnet-cupy``, ``handnet-torch-cuda``: ``handnet.train.fit`` with ``device=cupy`` or
  ``torch-cuda``: the same code as on the CPU, on the GPU's arrays;
- ``handnet-cpu``: ``fit`` with NumPy on this machine's CPU (shown for the small network only);
- ``torch``: the same model (tanh, dropout 0.2), loss, SGD with momentum 0.9, L2 1e-4 on the
  weights and the same schedule, written the PyTorch way (``nn.Linear``, autograd) on CUDA when
  there is a GPU, else on the CPU.

Prints one Markdown table per shape and writes the figures as JSON to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

SHAPES = ["784-800-10", "784-2500-2000-1500-1000-500-10"]
BATCHES = [128, 1024]
SYSTEMS = ["handnet-cupy", "handnet-torch-cuda", "torch", "handnet-cpu"]
# --aug distort: configs/ciresan.toml's distortions (elastic alpha 36, sigma 6, rotation and
# scaling), drawn anew for every batch on the batch's device.
DISTORT = {
    "aug_shift": 0.0,
    "aug_rotate": 10.0,
    "aug_scale": 0.1,
    "aug_elastic_alpha": 36.0,
    "aug_elastic_sigma": 6.0,
}


def load(rows: int) -> Any:
    from handnet.data import load_dataset

    data = load_dataset("mnist", rng=np.random.default_rng(0))
    return data.__class__(
        **{**data.__dict__, "X_train": data.X_train[:rows], "y_train": data.y_train[:rows]}
    )


def handnet_epochs(
    data: Any, sizes: list[int], batch: int, epochs: int, device: str, aug: str = "none"
) -> list[float]:
    from handnet.train.config import Rngs, TrainConfig
    from handnet.train.fit import TrainState, fit
    from handnet.train.runs import prepare_augmentation

    cfg = TrainConfig(
        hidden_sizes=tuple(sizes[1:-1]),
        batch_size=batch,
        epochs=epochs + 1,
        device=device,
        **(DISTORT if aug == "distort" else {"aug_shift": 0.0}),
    )
    rngs = Rngs.for_config(cfg)
    data, source = prepare_augmentation(cfg, data, rngs)
    state = TrainState.fresh(cfg, sizes[0], sizes[-1], rngs)
    history = fit(state, data, cfg, progress=False, batch_source=source)
    return [r["seconds"] for r in history[1:]]


def torch_epochs(data: Any, sizes: list[int], batch: int, epochs: int) -> list[float]:
    import torch
    from torch import nn

    from handnet.nn.schedules import warmup_cosine

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.Tanh(), nn.Dropout(0.2)]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    model = nn.Sequential(*layers).to(dev)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD(
        [{"params": weights, "weight_decay": 1e-4}, {"params": biases, "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.9,
    )
    X = torch.asarray(data.X_train, device=dev)
    y = torch.asarray(data.y_train, device=dev)
    n = X.shape[0]
    steps = math.ceil(n / batch)
    total, step, out = (epochs + 1) * steps, 0, []
    torch.set_grad_enabled(True)
    for _ in range(epochs + 1):
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev)
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            for g in opt.param_groups:
                g["lr"] = warmup_cosine(step, base_lr=0.05, warmup_steps=steps, total_steps=total)
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if dev == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    ap.add_argument("--rows", type=int, default=55000, help="training images per epoch")
    ap.add_argument("--aug", choices=["none", "distort"], default="none")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    data = load(args.rows)
    results: list[dict[str, Any]] = []
    for shape in args.shapes.split(","):
        sizes = [int(s) for s in shape.split("-")]
        print(
            f"\n### {shape}, {args.rows:,} images per epoch, augmentation {args.aug}, "
            f"median of {args.epochs} epochs\n"
        )
        print("| system | batch | s/epoch | images/s |\n|---|---:|---:|---:|")
        for batch in map(int, args.batches.split(",")):
            for system in args.systems.split(","):
                if system == "handnet-cpu" and len(sizes) > 3:
                    continue  # minutes per epoch on a CPU: shown for the small network only
                try:
                    if system == "torch":
                        secs = torch_epochs(data, sizes, batch, args.epochs)
                    else:
                        device = system.removeprefix("handnet-")
                        secs = handnet_epochs(data, sizes, batch, args.epochs, device, args.aug)
                except Exception as e:  # a missing library or GPU: say so, measure the rest
                    print(f"| {system} | {batch} | failed: {type(e).__name__}: {e} | |")
                    continue
                med = statistics.median(secs)
                print(f"| {system} | {batch} | {med:.3f} | {args.rows / med:,.0f} |", flush=True)
                results.append(
                    {
                        "shape": shape,
                        "batch": batch,
                        "system": system,
                        "aug": args.aug,
                        "seconds": secs,
                        "median": med,
                    }
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
