"""Augmentation speed: images/s of each transform, and epoch time with and without it.

    python bench/augment.py [--batch 128] [--epochs 3] [--shape 784-800-10]

Part 1 times each transform alone on batches of MNIST digits (median of 30 batches). Part 2
trains the shape on the bundled MNIST with no augmentation, with elastic distortions (Simard's
alpha 34, sigma 4) applied in the training thread, and with the same distortions prepared one
batch ahead in a background thread (`Prefetcher`), once with BLAS on every core and once with
BLAS on one core fewer (what ``handnet train --aug-thread`` does), taking turns epoch by epoch,
and reports the median seconds per epoch after one warm-up epoch and the overhead over no
augmentation.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path

from handnet.data import load_dataset
from handnet.data.augment import Augmenter, AugmentSpec, batch_source, blas_threads_beside
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, fit

TRANSFORMS = {
    "rotate 15 deg": AugmentSpec(rotate=15),
    "scale 15%": AugmentSpec(scale=0.15),
    "shift 2 px": AugmentSpec(shift=2),
    "shear 15 deg": AugmentSpec(shear=15),
    "elastic 34/4": AugmentSpec(elastic_alpha=34, elastic_sigma=4),
    "affine + elastic": AugmentSpec(rotate=15, scale=0.15, shift=2, shear=15, elastic_alpha=34),
}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--shape", default="784-800-10")
    args = p.parse_args()

    data = load_dataset("mnist", rng=np.random.default_rng(0))
    fill = float(data.norm.apply(np.zeros(1, np.float32))[0])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__}; BLAS: {blas_info()}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}\n")
    print(f"{'transform':<20}{'images/s':>12}   (batch {args.batch}, median of 30 batches)")
    X = data.X_train[: args.batch * 40]
    for name, spec in TRANSFORMS.items():
        aug = Augmenter(spec, data.image_shape, np.random.default_rng(0), fill)
        times = []
        for i in range(33):
            xb = X[(i % 40) * args.batch : (i % 40 + 1) * args.batch]
            t = time.perf_counter()
            aug(xb)
            times.append(time.perf_counter() - t)
        print(f"{name:<20}{args.batch / statistics.median(times[3:]):>12,.0f}")

    sizes = [int(s) for s in args.shape.split("-")]
    cfg = TrainConfig(
        hidden_sizes=tuple(sizes[1:-1]), epochs=args.epochs + 1, batch_size=args.batch, dropout=0.0
    )
    spec = TRANSFORMS["elastic 34/4"]
    # (batch source kind, whether BLAS leaves a core to the background thread); the last one is
    # what `handnet train --aug-thread` does
    variants = {
        "none": (None, False),
        "elastic, inline": ("inline", False),
        "elastic, background": ("background", False),
        "elastic, background, BLAS on cores - 1": ("background", True),
    }
    print(f"\n{args.shape}, batch {args.batch}: median s/epoch of {args.epochs} after 1 warm-up")
    print("(the variants take turns epoch by epoch)")
    runs = {}
    for name, (kind, _) in variants.items():
        rngs = Rngs.from_seed(0)
        state = TrainState.fresh(cfg, sizes[0], sizes[-1], rngs)
        aug = Augmenter(spec, data.image_shape, rngs.augment, fill)
        runs[name] = (state, batch_source(aug, background=kind == "background") if kind else None)
    for epoch in range(1, cfg.epochs + 1):
        for name, (state, source) in runs.items():
            with blas_threads_beside(variants[name][1]):
                fit(
                    state,
                    data,
                    dataclasses.replace(cfg, epochs=epoch),
                    progress=False,
                    batch_source=source,
                )
    base = None
    for name, (state, _) in runs.items():
        sec = statistics.median(r["seconds"] for r in state.history[1:])
        base = base or sec
        print(f"  {name:<40}{sec:>7.2f} s   {sec / base - 1:>+6.0%}")


if __name__ == "__main__":
    main()
