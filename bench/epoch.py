"""Seconds per epoch of handnet's training loop beside the GEMM lower bound for the same shapes.

    python bench/epoch.py [--shapes 784-256-10 784-800-10] [--batch 128] [--epochs 5]

For each shape it trains on the bundled MNIST (55,000 training images) and reports the median
seconds per epoch after one warm-up epoch. The lower bound times only the matrix products a step
needs (X W forward; X^T dY and dY W^T backward, no dX for the first layer) at the same shapes,
with NumPy's own BLAS, and multiplies by the steps per epoch: no implementation that does its
math with these GEMMs can be faster.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import numpy as np

from handnet.data import load_dataset
from handnet.train import Rngs, TrainConfig, TrainState, fit


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} threads={i.get('num_threads')}"
        for i in libs
    )


def gemm_seconds_per_step(sizes: list[int], batch: int, repeats: int = 30) -> float:
    """Median time of one step's GEMMs at these shapes, in float32."""
    rng = np.random.default_rng(0)
    ops = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        X = rng.standard_normal((batch, a), dtype=np.float32)
        W = rng.standard_normal((a, b), dtype=np.float32)
        Y = np.empty((batch, b), np.float32)
        dW = np.empty((a, b), np.float32)
        dX = np.empty((batch, a), np.float32)
        ops.append(lambda X=X, W=W, Y=Y: np.matmul(X, W, out=Y))
        ops.append(lambda X=X, Y=Y, dW=dW: np.matmul(X.T, Y, out=dW))
        if i > 0:
            ops.append(lambda Y=Y, W=W, dX=dX: np.matmul(Y, W.T, out=dX))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for op in ops:
            op()
        times.append(time.perf_counter() - t)
    return statistics.median(times[3:])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shapes", nargs="+", default=["784-256-10", "784-800-10"])
    p.add_argument("--batch", type=int, nargs="+", default=[128])
    p.add_argument("--epochs", type=int, default=5, help="timed epochs (after one warm-up epoch)")
    args = p.parse_args()

    data = load_dataset("mnist", rng=np.random.default_rng(0))
    n = len(data.y_train)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"BLAS: {blas_info()}")
    print(f"{n} training images, float32, median of {args.epochs} epochs after 1 warm-up\n")
    print(f"{'shape':<16}{'batch':>6}{'handnet s/epoch':>17}{'GEMM bound':>12}{'ratio':>8}")
    for shape in args.shapes:
        sizes = [int(s) for s in shape.split("-")]
        for batch in args.batch:
            cfg = TrainConfig(
                hidden_sizes=tuple(sizes[1:-1]), epochs=args.epochs + 1, batch_size=batch
            )
            state = TrainState.fresh(cfg, sizes[0], sizes[-1], Rngs.from_seed(0))
            fit(state, data, cfg, progress=False)
            handnet = statistics.median(r["seconds"] for r in state.history[1:])
            bound = gemm_seconds_per_step(sizes, batch) * math.ceil(n / batch)
            print(f"{shape:<16}{batch:>6}{handnet:>17.3f}{bound:>12.3f}{handnet / bound:>8.2f}")


if __name__ == "__main__":
    main()
