"""What shape normalization costs: it runs once, when a run loads its data (or a model its input).

    python bench/geometry.py [--repeats 5] [--width 14]

Times deskewing (`handnet.data.deskew.deskew`) and width normalization
(`handnet.data.geometry.normalize_width`) on MNIST's 60,000 training and 10,000 test images (median
of the repeats), and ``load_dataset`` without them, deskewed, and deskewed with widths
normalized, in turns.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path

from handnet.data import load_dataset, load_splits
from handnet.data.deskew import deskew
from handnet.data.geometry import PLAIN, Geometry, normalize_width


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--width", type=int, default=14, help="the width to normalize to")
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__}; BLAS: {blas_info()}\n")
    splits, _ = load_splits("mnist")
    shape = splits.X_train.shape[1:]
    steps: dict[str, Callable[[np.ndarray], object]] = {
        "deskew": lambda X: deskew(X, shape),
        f"width {args.width}": lambda X: normalize_width(X, shape, args.width),
    }
    for step, fn in steps.items():
        for name, X in (("train", splits.X_train), ("test", splits.X_test)):
            s = median_seconds(lambda X=X, fn=fn: fn(X), args.repeats)
            print(
                f"{step:<9} {name:<5} {len(X):>6,} images: {s:6.2f} s  ({len(X) / s:,.0f} images/s)"
            )
    geometries = [PLAIN, Geometry(deskew=True), Geometry(deskew=True, width=args.width)]
    times: dict[Geometry, list[float]] = {g: [] for g in geometries}
    for _ in range(args.repeats):  # in turns, so that a slow spell hits every one
        for g in geometries:
            t = time.perf_counter()
            load_dataset("mnist", rng=np.random.default_rng(0), geometry=g)
            times[g].append(time.perf_counter() - t)
    base = statistics.median(times[PLAIN])
    for g in geometries:
        t = statistics.median(times[g])
        print(f"load_dataset('mnist', {g.describe() or 'as is'}): {t:.2f} s (+{t - base:.2f} s)")


if __name__ == "__main__":
    main()
