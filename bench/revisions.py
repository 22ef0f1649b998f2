"""Seconds per epoch of handnet at several git revisions side by side, and the GEMM bound, in one run.

    python bench/revisions.py HEAD .                      # the last commit against the working tree
    python bench/revisions.py HEAD~2 HEAD . --aug none shift elastic --batch 128 512

Every (revision, augmentation) case trains in its own worker process, which imports handnet from
that revision (``git archive REV src``, unpacked in a temporary folder; ``.`` is the working
tree), and the workers take turns epoch by epoch, with a pause between turns (an idle OpenBLAS
pool spins for about 0.1 s). So before and after are measured under the same machine load, and
each figure is the median of ``--epochs`` epochs after one warm-up.

The network is the default recipe at ``--shape`` (tanh, dropout 0.2, L2 1e-4, momentum 0.9) on
the bundled MNIST's 55,000 training images, with no validation pass. ``--aug`` names what each
epoch's batches get: ``none``; ``shift``, the default recipe's random shifts of up to 1 px;
``elastic``, Simard's distortions with alpha 36, sigma 6 (best.toml's); ``elastic+affine``,
best.toml's whole set. ``bound`` is the time of one step's matrix products alone (X W; X^T dY;
dY W^T except for the first layer) at the same shapes, times the steps of an epoch: what any
implementation on this BLAS needs at least. Run it once as set and once with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` (or with ``OPENBLAS_CORETYPE=Haswell``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
SPIN_GAP = 0.3  # s between turns: OpenBLAS's idle threads spin for about 0.1 s
AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "none": {"aug_shift": 0.0},
    "shift": {"aug_shift": 1.0},
    "elastic": {"aug_shift": 0.0, "aug_elastic_alpha": 36.0, "aug_elastic_sigma": 6.0},
    "elastic+affine": {
        "aug_shift": 0.0,
        "aug_rotate": 10.0,
        "aug_scale": 0.1,
        "aug_elastic_alpha": 36.0,
        "aug_elastic_sigma": 6.0,
    },
}


def unpack(rev: str, into: Path) -> Path:
    """The ``src`` folder of ``rev`` (``.``: the working tree's own)."""
    if rev == ".":
        return ROOT / "src"
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = into / sha
    if not dest.exists():
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev, "src"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        tar_path = into / f"{sha}.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(dest, filter="data")
    return dest / "src"


class Trainer:
    """``fit`` one epoch at a time, on batches augmented as the case says."""

    def __init__(self, aug: str, sizes: list[int], batch: int, epochs: int) -> None:
        from handnet.data import load_dataset
        from handnet.train.config import Rngs, TrainConfig
        from handnet.train.fit import TrainState
        from handnet.train.runs import prepare_augmentation

        self.cfg = TrainConfig(
            hidden_sizes=tuple(sizes[1:-1]), batch_size=batch, epochs=epochs, **AUGMENTATIONS[aug]
        )
        rngs = Rngs.for_config(self.cfg)
        data = load_dataset("mnist", rng=np.random.default_rng(0))
        data, self.source = prepare_augmentation(self.cfg, data, rngs)
        self.data = _NoVal(data)
        self.state = TrainState.fresh(self.cfg, sizes[0], sizes[-1], rngs)

    def epoch(self) -> float:
        import dataclasses

        from handnet.train.fit import fit

        one_more = dataclasses.replace(self.cfg, epochs=self.state.epoch + 1)
        t = time.perf_counter()
        fit(self.state, self.data, one_more, progress=False, batch_source=self.source)
        return time.perf_counter() - t


class _NoVal:
    """The dataset without its validation split, so an epoch times training only."""

    def __init__(self, data: Any) -> None:
        self.X_train, self.y_train = data.X_train, data.y_train
        self.X_val, self.y_val = data.X_val[:0], data.y_val[:0]


class Bound:
    """The matrix products of one step, timed alone (median of 60 steps), times the steps."""

    def __init__(self, sizes: list[int], batch: int, n: int = 55_000) -> None:
        rng = np.random.default_rng(0)
        self.ops: list[Any] = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            X = rng.standard_normal((batch, a), dtype=np.float32)
            W = rng.standard_normal((a, b), dtype=np.float32)
            Y, dW = np.empty((batch, b), np.float32), np.empty((a, b), np.float32)
            dX = np.empty((batch, a), np.float32)
            self.ops.append(lambda X=X, W=W, Y=Y: np.matmul(X, W, out=Y))
            self.ops.append(lambda X=X, Y=Y, dW=dW: np.matmul(X.T, Y, out=dW))
            if i > 0:
                self.ops.append(lambda Y=Y, W=W, dX=dX: np.matmul(Y, W.T, out=dX))
        self.steps = math.ceil(n / batch)

    def epoch(self) -> float:
        times = []
        for _ in range(60):
            t = time.perf_counter()
            for op in self.ops:
                op()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * self.steps


def worker(src: str | None, case: tuple[str, ...], conn: Any) -> None:
    """One case in its own process, importing handnet from ``src``: answers "setup" and "epoch"."""
    if src is not None:
        sys.path.insert(0, src)
    system: Any = None
    while (msg := conn.recv()) is not None:
        if msg[0] == "setup":
            _, sizes, batch, epochs = msg
            system = Bound(sizes, batch) if src is None else Trainer(case[1], sizes, batch, epochs)
            conn.send(None)
        else:
            conn.send(system.epoch())


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("revs", nargs="+", help="git revisions; '.' is the working tree")
    p.add_argument("--aug", nargs="+", default=["none"], choices=list(AUGMENTATIONS))
    p.add_argument("--shape", default="784-800-10")
    p.add_argument("--batch", type=int, nargs="+", default=[128])
    p.add_argument("--epochs", type=int, default=5, help="timed epochs (after one warm-up)")
    p.add_argument("--no-bound", action="store_true")
    args = p.parse_args()
    sizes = [int(s) for s in args.shape.split("-")]
    print(
        f"{os.cpu_count()} CPUs; numpy {np.__version__}; BLAS: {blas_info()}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="handnet-revs-") as tmp:
        cases: dict[tuple[str, ...], tuple[str | None, Any]] = {}
        for rev in args.revs:
            src = str(unpack(rev, Path(tmp)))
            for aug in args.aug:
                cases[(rev, aug)] = (src, None)
        if not args.no_bound:
            cases[("bound",)] = (None, None)
        procs = []
        for case, (src, _) in cases.items():
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(src, case, child), daemon=True)
            proc.start()
            procs.append(proc)
            cases[case] = (src, parent)
        for batch in args.batch:
            for _, conn in cases.values():
                conn.send(("setup", sizes, batch, args.epochs + 1))
            for _, conn in cases.values():
                conn.recv()
            times: dict[tuple[str, ...], list[float]] = {case: [] for case in cases}
            for _ in range(args.epochs + 1):  # interleaved: one epoch of each case in turn
                for case, (_, conn) in cases.items():
                    time.sleep(SPIN_GAP)
                    conn.send(("epoch",))
                    times[case].append(conn.recv())
            bound = statistics.median(times[("bound",)][1:]) if ("bound",) in times else None
            first = statistics.median(times[next(iter(times))][1:])
            print(
                f"\n{args.shape}, batch {batch}: s/epoch, median of {args.epochs} after 1 warm-up"
            )
            print(f"{'case':<32}{'s/epoch':>9}{'vs first':>10}{'/ bound':>9}   all epochs")
            for case, t in times.items():
                med = statistics.median(t[1:])
                vs_bound = f"{med / bound:>9.2f}" if bound else f"{'-':>9}"
                every = " ".join(f"{x:.3f}" for x in t[1:])
                print(
                    f"{' '.join(case):<32}{med:>9.3f}{med / first - 1:>+10.0%}{vs_bound}   {every}"
                )
        for _, conn in cases.values():
            conn.send(None)
        for proc in procs:
            proc.join()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
