"""Recipes that would train in about half the default's time, and their accuracy (issue 25).

    python bench/results/issue25-2026-12-04/faster_recipes.py 0 1    # the seeds to run

Trains each variant of the default recipe with ``handnet.train.runs.train_run`` into
/tmp/handnet-faster-recipes and prints its validation and test accuracy and its seconds of
steps and augmentation. The choice is made on validation; faster-recipes.txt beside this file
is its output of 2026-12-04 (seed 0, while other jobs shared the machine: the seconds there do
not compare).
"""

from __future__ import annotations

import sys
from typing import Any

from handnet.train.config import TrainConfig
from handnet.train.runs import train_run

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "b512-lr0.2-e15": {"batch_size": 512, "lr": 0.2, "epochs": 15},
    "b512-lr0.1-e15": {"batch_size": 512, "lr": 0.1, "epochs": 15},
    "b256-lr0.1-e12": {"batch_size": 256, "lr": 0.1, "epochs": 12},
    "h512-b256-lr0.1-e20": {"hidden_sizes": (512,), "batch_size": 256, "lr": 0.1},
}


def main() -> None:
    for seed in [int(s) for s in sys.argv[1:]] or [0]:
        for name, settings in VARIANTS.items():
            res = train_run(
                TrainConfig(seed=seed, **settings),
                out="/tmp/handnet-faster-recipes",
                progress=False,
            )
            m, t = res.metrics, res.metrics["time"]
            print(
                f"{name:<22} seed {seed}  val {m['val_accuracy']:.2%}  "
                f"test {m['test_accuracy']:.2%}  steps {t['steps']:.1f}s  "
                f"aug {t['augmentation']:.1f}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
