"""How HandnetClassifier's defaults were chosen: a small grid, scored by cross-validation only.

    OPENBLAS_NUM_THREADS=1 python bench/sklearn_tune.py --round 1   # then --round 2

Scores each configuration on two problems that the comparison in ``sklearn_compare.py`` does not
report on: 3-fold CV on a seeded 10,000 MNIST training images *disjoint* from the benchmark's
subset, and 5-fold CV on ``load_digits`` with a different shuffle (random_state=1) than the
benchmark's folds. No test set is touched. Prints one row per configuration, best mean first.
Round 1 is a coarse grid around TrainConfig's defaults; round 2 refines where round 1 peaked (the
largest lr, no dropout needed, the larger L2, and short runs nearly as good as long ones).
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn_compare import MNIST_SUBSET, digits

from handnet.data import load_splits
from handnet.errors import HandnetError
from handnet.sklearn import HandnetClassifier

ROUNDS: dict[int, dict[str, list[Any]]] = {
    1: {
        "lr": [0.05, 0.1, 0.2],
        "epochs": [10, 20, 40],
        "dropout": [0.0, 0.2],
        "weight_decay": [1e-4, 1e-3],
    },
    2: {
        "lr": [0.2, 0.4, 0.8],
        "epochs": [10, 20],
        "dropout": [0.0, 0.1],
        "weight_decay": [1e-3, 3e-3],
    },
}


def mnist_tuning_subset(n: int = MNIST_SUBSET) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST training images none of which is in the benchmark's seed-0 subset."""
    splits, _ = load_splits("mnist")
    N = len(splits.y_train)
    bench = np.random.default_rng(0).choice(N, MNIST_SUBSET, replace=False)
    rest = np.setdiff1d(np.arange(N), bench)
    idx = np.sort(np.random.default_rng(1).choice(rest, n, replace=False))
    X = splits.X_train[idx].reshape(n, -1).astype(np.float32) / np.float32(255)
    return X, splits.y_train[idx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--round", type=int, choices=sorted(ROUNDS), default=1)
    grid = ROUNDS[ap.parse_args().round]
    data = {
        "mnist": (*mnist_tuning_subset(), StratifiedKFold(3, shuffle=True, random_state=1)),
        "digits": (*digits(), StratifiedKFold(5, shuffle=True, random_state=1)),
    }
    rows = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        scores, t0 = {}, time.perf_counter()
        for name, (X, y, cv) in data.items():
            model = HandnetClassifier(random_state=0, **params)
            try:
                scores[name] = float(
                    cross_val_score(model, X, y, cv=cv, error_score="raise").mean()
                )
            except HandnetError:  # TrainingDiverged: too large an lr counts as a failure
                scores[name] = 0.0
        rows.append((np.mean(list(scores.values())), scores, params, time.perf_counter() - t0))
        print(f"{scores} {params} {rows[-1][3]:.1f}s", flush=True)
    print("\n| mean | mnist (3-fold) | digits (5-fold) | lr | epochs | dropout | weight_decay |")
    print("|---|---|---|---|---|---|---|")
    for mean, s, p, _ in sorted(rows, key=lambda r: -r[0]):
        print(
            f"| {mean:.2%} | {s['mnist']:.2%} | {s['digits']:.2%} | {p['lr']} | {p['epochs']} "
            f"| {p['dropout']} | {p['weight_decay']} |"
        )


if __name__ == "__main__":
    main()
