"""Shared test helpers: finite differences, small synthetic datasets and models, a cached real
MNIST."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handnet.data import Dataset, Normalization, load_dataset
from handnet.data.geometry import PLAIN, Geometry
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier


def require(available: bool, what: str) -> None:
    """Skip a test whose system component is missing on a developer's machine, but fail in CI
    (CI=true), where `.ci/setup.d/` must have installed it."""
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is missing in CI: .ci/setup.d/ should have installed it")
    pytest.skip(f"{what} is not installed")


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + e) - f(x - e)) / 2e of a scalar function, for every entry of x."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def assert_grad_close(analytic: np.ndarray, numeric: np.ndarray, rtol: float = 1e-5) -> None:
    scale = max(1.0, float(np.abs(numeric).max()))
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=rtol * scale)


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The bundled MNIST, loaded once per session."""
    return load_dataset("mnist", rng=np.random.default_rng(0))


@pytest.fixture(scope="session")
def mnist_model(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model file: 784-128-10 tanh, 2 epochs on the bundled MNIST (~97% test)."""
    from handnet.train.config import TrainConfig
    from handnet.train.runs import train_run

    cfg = TrainConfig(hidden_sizes=(128,), epochs=2, dropout=0.0, warmup_epochs=0.5)
    out = tmp_path_factory.mktemp("mnist-runs")
    return train_run(cfg, out=out, data=mnist, progress=False).model_path


def tiny_dataset(n: int = 64, d: int = 20, c: int = 3, seed: int = 0) -> Dataset:
    """A small random classification problem, already standardized."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, c, n)
    return Dataset(
        name="tiny",
        classes=[str(i) for i in range(c)],
        image_shape=(d,),
        norm=Normalization(0.0, 1.0),
        X_train=X,
        y_train=y,
        X_val=X[:16].copy(),
        y_val=y[:16].copy(),
        X_test=X[16:32].copy(),
        y_test=y[16:32].copy(),
    )


def meta_classifier(meta: dict[str, Any], geometry: Geometry = PLAIN) -> Classifier:
    """A 4-3-2 model with the given file metadata, for code that reads what a model file records."""
    net = MLP(4, [3], 2, rng=np.random.default_rng(0))
    return Classifier(net, Normalization(0.0, 1.0), ["a", "b"], (2, 2), meta, geometry)
