"""What deskewing costs: it runs once, when a deskewing run loads its data (or a model its input).

    python bench/deskew.py [--repeats 5]

Times `handnet.deskew.deskew` on MNIST's 60,000 training and 10,000 test images (median of the
repeats), and ``load_dataset`` with and without it, in turns.
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
from handnet.deskew import deskew


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
    args = p.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__}; BLAS: {blas_info()}\n")
    splits, _ = load_splits("mnist")
    shape = splits.X_train.shape[1:]
    for name, X in (("train", splits.X_train), ("test", splits.X_test)):
        s = median_seconds(lambda X=X: deskew(X, shape), args.repeats)
        print(f"deskew {name:<5} {len(X):>6,} images: {s:6.2f} s  ({len(X) / s:,.0f} images/s)")
    plain, skewed = [], []
    for _ in range(args.repeats):  # in turns, so that a slow spell hits both
        plain.append(median_seconds(lambda: load_dataset("mnist", rng=np.random.default_rng(0)), 1))
        skewed.append(
            median_seconds(
                lambda: load_dataset("mnist", rng=np.random.default_rng(0), deskew=True), 1
            )
        )
    a, b = statistics.median(plain), statistics.median(skewed)
    print(f"load_dataset('mnist'): {a:.2f} s; with deskew=True: {b:.2f} s (+{b - a:.2f} s)")


if __name__ == "__main__":
    main()
