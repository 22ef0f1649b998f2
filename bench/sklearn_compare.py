"""5-fold cross-validated accuracy and wall time: HandnetClassifier against scikit-learn's MLPClassifier.

    flock /tmp/handnet-cpu.lock python bench/sklearn_compare.py [--datasets digits mnist10k]

Datasets: scikit-learn's ``load_digits`` (1,797 8x8 images, scaled to [0, 1] by /16) and a
seeded random 10,000 images of the bundled MNIST training set (scaled by /255). Every model sees
the same inputs and the same folds (StratifiedKFold(5, shuffle=True, random_state=0)), one fit at
a time (n_jobs=1), with BLAS free to use every core.

Models:
- ``HandnetClassifier()``: handnet's defaults.
- ``MLPClassifier()``: scikit-learn's defaults (100 ReLU units, Adam, up to 200 epochs, stops
  when the loss improves by less than 1e-4 for 10 epochs).
- ``MLPClassifier matched``: handnet's defaults where scikit-learn has them: 256 tanh units,
  SGD with momentum 0.9 at lr 0.2, batch 128, 10 epochs, the same L2 (alpha = weight_decay *
  batch_size, because scikit-learn divides its penalty by the batch size), no early stop. It
  has no dropout, warmup or cosine schedule, so its lr is constant.
- ``HandnetClassifier matched``: handnet with the same constant-lr, no-dropout configuration,
  which isolates the speed of the implementation from the choice of recipe.

Fit time is the mean over the 5 folds of the time to fit one model; wall is the whole 5-fold run
(fits and scoring).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier

from handnet.data import load_splits
from handnet.sklearn import HandnetClassifier

MNIST_SUBSET = 10_000


def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def mnist_subset(n: int = MNIST_SUBSET, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images drawn without replacement (seeded) from the bundled MNIST training set."""
    splits, _ = load_splits("mnist")
    idx = np.sort(np.random.default_rng(seed).choice(len(splits.y_train), n, replace=False))
    X = splits.X_train[idx].reshape(n, -1).astype(np.float32) / np.float32(255)
    return X, splits.y_train[idx]


DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "digits": digits,
    "mnist10k": mnist_subset,
}

EPOCHS, BATCH, LR, MOMENTUM, WEIGHT_DECAY, HIDDEN = 10, 128, 0.2, 0.9, 1e-3, (256,)


def models() -> dict[str, BaseEstimator]:
    return {
        "HandnetClassifier()": HandnetClassifier(random_state=0),
        "MLPClassifier()": MLPClassifier(random_state=0),
        "MLPClassifier matched": MLPClassifier(
            hidden_layer_sizes=HIDDEN,
            activation="tanh",
            solver="sgd",
            learning_rate="constant",
            learning_rate_init=LR,
            momentum=MOMENTUM,
            nesterovs_momentum=False,
            alpha=WEIGHT_DECAY * BATCH,
            batch_size=BATCH,
            max_iter=EPOCHS,
            tol=0.0,
            n_iter_no_change=EPOCHS,
            random_state=0,
        ),
        "HandnetClassifier matched": HandnetClassifier(
            hidden_sizes=HIDDEN,
            activation="tanh",
            lr=LR,
            min_lr=LR,  # with no warmup: a constant lr
            warmup_epochs=0.0,
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            dropout=0.0,
            epochs=EPOCHS,
            batch_size=BATCH,
            random_state=0,
        ),
    }


def run(name: str, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = cross_validate(model, X, y, cv=cv, n_jobs=1)
    wall = time.perf_counter() - t0
    acc = r["test_score"]
    return {
        "model": name,
        "acc": float(acc.mean()),
        "std": float(acc.std()),
        "fit_s": float(r["fit_time"].mean()),
        "wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--models", nargs="+", default=None, help="a subset of the model names")
    args = ap.parse_args()
    unknown = sorted(set(args.models or ()) - set(models()))
    if unknown:
        ap.error(f"--models: unknown {unknown}; choose from {sorted(models())}")
    print(f"# python {platform.python_version()}, numpy {np.__version__}, {blas_info()}")
    print(
        f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}, {os.cpu_count()} CPUs"
    )
    print(
        "| dataset | model | 5-fold accuracy | fit s (mean/fold) | wall s (5 folds) |\n|---|---|---|---|---|"
    )
    for ds in args.datasets:
        X, y = DATASETS[ds]()
        for name, model in models().items():
            if args.models and name not in args.models:
                continue
            r = run(name, model, X, y)
            print(
                f"| {ds} ({len(y)}x{X.shape[1]}) | {name} | {r['acc']:.2%} ± {r['std']:.2%} | "
                f"{r['fit_s']:.2f} | {r['wall_s']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
