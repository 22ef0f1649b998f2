"""Training speed of handnet at several git revisions side by side, and the GEMM bound, in one run.

    python bench/revisions.py HEAD .                      # the last commit against the working tree
    python bench/revisions.py HEAD~2 HEAD . --aug none shift elastic --batch 128 512

Each revision's ``src`` (``git archive REV src``, unpacked in a temporary folder; ``.`` is the
working tree) is imported into this one process under its own copy of the ``handnet`` modules, so
every case shares one BLAS thread pool. The cases then take turns of ``--turn`` training steps
each (``fit`` stops after them through its ``stop`` hook and the next turn continues where it
stopped), round after round: a slow spell of the shared machine falls on all of them alike, and
no case pays for another's idle BLAS threads spinning. The table gives seconds per epoch of the
bundled MNIST's 55,000 training images (the median over the turns of seconds per step, times the
steps of an epoch) and, the figures to compare, the medians over the rounds of each case's time
over the first case's, the bound's and the same revision's without augmentation (``/ none``) in
the same round. A turn during which the rest of
the machine used more than ``--others`` of a core (from /proc/stat, less this process's own CPU
time) is dropped; the table says how many.

The network is the default recipe at ``--shape`` (tanh, dropout 0.2, L2 1e-4, momentum 0.9),
with no validation pass. ``--aug`` names what the batches get: ``none``; ``shift``, the default
recipe's random shifts of up to 1 px; ``elastic``, Simard's distortions with alpha 36, sigma 6
(best.toml's); ``elastic+affine``, best.toml's whole set; ``shift-bg`` and ``elastic-bg``, the same
made one batch ahead in a background thread (`handnet.data.augment.Prefetcher`; BLAS keeps
every core, unlike ``handnet train --aug-thread``). ``bound`` is the time of one step's
matrix products alone (X W; X^T dY; dY W^T except for the first layer) at the same shapes: what
any implementation on this BLAS needs at least. Run it once as set and once with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` (or with ``OPENBLAS_CORETYPE=Haswell``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
TRAIN_ROWS = 55_000
AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "none": {"aug_shift": 0.0},
    "shift": {"aug_shift": 1.0},
    "elastic": {"aug_shift": 0.0, "aug_elastic_alpha": 36.0, "aug_elastic_sigma": 6.0},
    # the same, each batch made one ahead in a background thread (BLAS keeps every core)
    "shift-bg": {"aug_shift": 1.0, "aug_thread": True},
    "elastic-bg": {
        "aug_shift": 0.0,
        "aug_elastic_alpha": 36.0,
        "aug_elastic_sigma": 6.0,
        "aug_thread": True,
    },
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


def import_version(src: Path) -> SimpleNamespace:
    """handnet's training API as found in ``src``, in modules of its own: the ``handnet``
    modules imported before stay loaded where they are referenced, and out of ``sys.modules``."""
    mine = [k for k in sys.modules if k == "handnet" or k.startswith("handnet.")]
    for k in mine:
        del sys.modules[k]
    sys.path.insert(0, str(src))
    try:
        from handnet.data import load_dataset
        from handnet.train.config import Rngs, TrainConfig
        from handnet.train.fit import TrainState, fit
        from handnet.train.runs import prepare_augmentation

        module: ModuleType = sys.modules["handnet"]
        assert Path(module.__file__ or "").is_relative_to(src), module.__file__
    finally:
        sys.path.remove(str(src))
        for k in [k for k in sys.modules if k == "handnet" or k.startswith("handnet.")]:
            del sys.modules[k]
    return SimpleNamespace(
        load_dataset=load_dataset,
        Rngs=Rngs,
        TrainConfig=TrainConfig,
        TrainState=TrainState,
        fit=fit,
        prepare_augmentation=prepare_augmentation,
    )


class _NoVal:
    """The dataset without its validation split, so that the turns time training only."""

    def __init__(self, data: Any) -> None:
        self.X_train, self.y_train = data.X_train, data.y_train
        self.X_val, self.y_val = data.X_val[:0], data.y_val[:0]


class Trainer:
    """``fit`` in turns of a few steps, on batches augmented as the case says."""

    def __init__(self, api: SimpleNamespace, aug: str, sizes: list[int], batch: int) -> None:
        self.cfg = api.TrainConfig(
            hidden_sizes=tuple(sizes[1:-1]), batch_size=batch, epochs=1000, **AUGMENTATIONS[aug]
        )
        rngs = api.Rngs.for_config(self.cfg)
        data = api.load_dataset("mnist", rng=np.random.default_rng(0))
        data, self.source = api.prepare_augmentation(self.cfg, data, rngs)
        self.data = _NoVal(data)
        self.state = api.TrainState.fresh(self.cfg, sizes[0], sizes[-1], rngs)
        self.fit = api.fit

    def turn(self, steps: int) -> int:
        """Train ``steps`` more steps (or to the end of the epoch); returns the steps taken."""
        first = self.state.step
        stop = lambda: self.state.step - first >= steps  # noqa: E731
        self.fit(
            self.state, self.data, self.cfg, progress=False, stop=stop, batch_source=self.source
        )
        return self.state.step - first


class Bound:
    """The matrix products of a step, alone."""

    def __init__(self, sizes: list[int], batch: int) -> None:
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

    def turn(self, steps: int) -> int:
        for _ in range(steps):
            for op in self.ops:
                op()
        return steps


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, steal included), /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def race(cases: dict[str, Any], args: argparse.Namespace, batch: int) -> None:
    """Turns of every case in rounds; prints seconds per epoch and the ratios within a round.

    The shared VM has slow spells that last from seconds to minutes, during which everything
    (the bare GEMMs too) runs up to twice as slowly. The ratios are therefore taken round by round,
    between turns run a fraction of a second apart, and their median is the figure to read."""
    per_step: dict[str, list[float]] = {name: [] for name in cases}
    rounds: list[dict[str, float]] = []  # the kept turns of each round: seconds per step
    dropped = 0
    for case in cases.values():  # warm-up: buffers allocated, caches and pages touched
        case.turn(args.turn * 3)
    names = list(cases)
    for r in range(args.rounds):
        this: dict[str, float] = {}
        # Each round starts one case further on: what runs just before a turn (whose arrays it
        # leaves in the caches) moves a few percent, and so would a fixed order's figures.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            case = cases[name]
            busy, cpu, t = busy_seconds(), sum(os.times()[:2]), time.perf_counter()
            steps = case.turn(args.turn)
            seconds = time.perf_counter() - t
            others = busy_seconds() - busy - (sum(os.times()[:2]) - cpu)
            if others <= args.others * seconds:
                this[name] = seconds / steps
                per_step[name].append(seconds / steps)
            else:
                dropped += 1
        rounds.append(this)
    steps_per_epoch = math.ceil(TRAIN_ROWS / batch)
    first = next(iter(cases))

    def ratio(name: str, to: str) -> str:
        if to not in cases:
            return f"{'-':>9}"
        both = [r[name] / r[to] for r in rounds if name in r and to in r]
        return f"{statistics.median(both):>9.2f}" if both else f"{'-':>9}"

    print(
        f"\n{args.shape}, batch {batch}: {args.rounds} rounds of turns of {args.turn} steps, "
        f"{dropped} of {args.rounds * len(cases)} turns dropped (another process busy); s/epoch "
        f"({steps_per_epoch} steps) from the median step, its quartiles, and the medians of the "
        "ratios within a round (over the rounds where both turns were kept)"
    )
    print(f"{'case':<28}{'s/epoch':>9}{'quartiles':>15}{'/ first':>9}{'/ bound':>9}{'/ none':>9}")
    for name, v in per_step.items():
        if not v:
            continue
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
        quart = f"{q[0] * steps_per_epoch:.3f}-{q[2] * steps_per_epoch:.3f}"
        med = statistics.median(v) * steps_per_epoch
        none = name.rsplit(" ", 1)[0] + " none"  # the same revision without augmentation
        print(
            f"{name:<28}{med:>9.3f}{quart:>15}{ratio(name, first)}{ratio(name, 'bound')}"
            f"{ratio(name, none)}"
        )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("revs", nargs="+", help="git revisions; '.' is the working tree")
    p.add_argument("--aug", nargs="+", default=["none"], choices=list(AUGMENTATIONS))
    p.add_argument("--shape", default="784-800-10")
    p.add_argument("--batch", type=int, nargs="+", default=[128])
    p.add_argument("--turn", type=int, default=50, help="training steps per turn")
    p.add_argument("--rounds", type=int, default=40, help="turns of every case")
    p.add_argument(
        "--others",
        type=float,
        default=0.05,
        help="drop a turn during which other processes used more than this share of a core",
    )
    p.add_argument("--no-bound", action="store_true")
    args = p.parse_args()
    sizes = [int(s) for s in args.shape.split("-")]
    print(
        f"{os.cpu_count()} CPUs; numpy {np.__version__}; BLAS: {blas_info()}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="handnet-revs-") as tmp:
        apis = {rev: import_version(unpack(rev, Path(tmp))) for rev in args.revs}
        for batch in args.batch:
            cases: dict[str, Any] = {
                f"{rev} {aug}": Trainer(api, aug, sizes, batch)
                for rev, api in apis.items()
                for aug in args.aug
            }
            if not args.no_bound:
                cases["bound"] = Bound(sizes, batch)
            race(cases, args, batch)
            del cases
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
