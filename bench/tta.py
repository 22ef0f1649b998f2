"""What test-time augmentation costs: `handnet.train.tta.tta_proba` on 10,000 MNIST test-sized inputs.

    python bench/tta.py [--repeats 3] [--views 0 8 32]

Times prediction with K = 0 (plain), and K augmented copies per image, for 784-800-10 and
784-2000-10 tanh networks with random weights (the time does not depend on what they learned)
and best.toml's augmentation (elastic sigma 6, alpha 36, rotation 10 degrees, scaling 10%), in
turns, median of the repeats. Each copy costs one augmentation of the batch and one forward pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path

from handnet.data.split import Normalization
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.config import TrainConfig
from handnet.train.tta import tta_proba

AUGMENTATION = TrainConfig(
    aug_rotate=10, aug_scale=0.1, aug_shift=0, aug_elastic_alpha=36, aug_elastic_sigma=6
)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--views", type=int, nargs="+", default=[0, 8, 32])
    p.add_argument("--n", type=int, default=10_000, help="images per prediction")
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__}; BLAS: {blas_info()}\n")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 28, 28)).astype(np.uint8)
    images[:, :4] = images[:, -4:] = 0  # a black border, like MNIST
    meta = {"config": AUGMENTATION.to_dict()}
    models = {
        f"784-{h}-10": Classifier(
            MLP(784, (h,), 10, rng=rng),
            Normalization(0.13, 0.31),
            list("0123456789"),
            (28, 28),
            meta,
        )
        for h in (800, 2000)
    }
    times: dict[tuple[str, int], list[float]] = {(m, k): [] for m in models for k in args.views}
    for _ in range(args.repeats):  # in turns, so that a slow spell hits every one
        for (name, k), ts in times.items():
            t = time.perf_counter()
            tta_proba(models[name], images, k, np.random.default_rng(0))
            ts.append(time.perf_counter() - t)
    for (name, k), ts in times.items():
        s = statistics.median(ts)
        per = s / (k + 1)
        print(
            f"{name:<11} --tta {k:<3} {args.n:,} images: {s:6.2f} s  "
            f"({per:.2f} s per pass, {args.n * (k + 1) / s:,.0f} images/s)"
        )


if __name__ == "__main__":
    main()
