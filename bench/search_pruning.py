"""What pruning saves: the same random search with and without a pruner, wall time and best accuracy.

    flock /tmp/handnet-cpu.lock python bench/search_pruning.py [--trials 20] [--epochs 5]

The random sampler with one seed proposes the same sequence of hyperparameters whatever the pruner
does (it ignores history), so the studies differ only in which trials were stopped early. Each
study runs in one process on the bundled MNIST, in a throwaway SQLite file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna
from machine import blas_info  # bench/machine.py: this folder is on sys.path

from handnet.search.space import DEFAULT_SPACE
from handnet.search.study import SearchConfig
from handnet.search.workers import search
from handnet.train.config import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--pruners", nargs="+", default=["none", "median", "halving"])
    ap.add_argument("--sampler-seed", type=int, default=0)
    args = ap.parse_args()
    print(f"BLAS: {blas_info()}")
    print(f"{args.trials} random trials of the default space, {args.epochs} epochs each")
    print(
        f"{'pruner':>8}  {'seconds':>8}  {'complete':>8}  {'pruned':>6}  {'best val':>8}  best trial"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in args.pruners:
            cfg = SearchConfig(
                study=f"prune-{pruner}",
                storage=f"sqlite:///{tmp}/bench.db",
                trials=args.trials,
                sampler="random",
                sampler_seed=args.sampler_seed,
                pruner=pruner,
                out=Path(tmp) / "runs",
                progress=False,
            )
            t0 = time.perf_counter()
            study = search(cfg, DEFAULT_SPACE, TrainConfig(epochs=args.epochs))
            seconds = time.perf_counter() - t0
            states = [t.state for t in study.trials]
            best = study.best_trial
            print(
                f"{pruner:>8}  {seconds:8.1f}  {states.count(optuna.trial.TrialState.COMPLETE):>8}  "
                f"{states.count(optuna.trial.TrialState.PRUNED):>6}  {best.value:8.2%}  "
                f"#{best.number} {best.params}"
            )


if __name__ == "__main__":
    main()
