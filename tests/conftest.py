"""Shared test helpers: finite differences, small synthetic datasets and models, a cached real
MNIST, the command line run in this process."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from handnet.cli import main
from handnet.data import Dataset, Normalization, load_dataset, write_idx
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


CHROMIUM = Path("/usr/bin/chromium")  # installed by .ci/setup.d/chromium.sh; never downloaded
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright (which downloads no browser of its own);
    one per test module. Skipped where it is missing, failed in CI (`require`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright Python package")
        raise
    require(CHROMIUM.exists(), f"Debian's chromium ({CHROMIUM})")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass(frozen=True)
class Ran:
    """What a ``handnet`` command did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str | Path) -> Ran:
    """``handnet ARGS`` run in this process by `handnet.cli.main`: the exit code a shell would see
    (argparse's usage errors, raised as SystemExit, included) and what went to stdout and stderr.

    A test keeps a real subprocess only for what needs one: signals, a closed pipe, resource
    limits, another user, the interpreter's own exit."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, --version, usage errors
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def unrendered_plots() -> Iterator[None]:
    """No plot is drawn: a 1x1 PNG stands in for each. Which plots a run gets is still decided
    from its data (`run_plots.draw` runs, and the model predicts the test images it would show),
    but the report's plot_* figures are not built and no figure is rendered: matplotlib's axes cost
    more than a second a run, more than the tiny runs themselves. For modules about what commands
    write and print (``pytestmark = pytest.mark.usefixtures(...)``); tests/report and
    tests/search/test_plots.py check the plots themselves."""
    from matplotlib.figure import Figure
    from PIL import Image

    import handnet.report.model_plots as model_plots
    import handnet.report.plots as plots

    buf = io.BytesIO()
    Image.new("L", (1, 1), 255).save(buf, "PNG")
    png = buf.getvalue()

    def unbuilt(*args: Any, **kwargs: Any) -> None:
        return None

    def savefig(self: Figure, fname: str | Path | IO[bytes], **kwargs: Any) -> None:
        if isinstance(fname, str | Path):
            Path(fname).write_bytes(png)
        else:
            fname.write(png)

    with pytest.MonkeyPatch.context() as mp:
        for module in (plots, model_plots):  # plot_loss, plot_mistakes, ...: the run's figures
            for name in dir(module):
                if name.startswith("plot_") and callable(getattr(module, name)):
                    mp.setattr(module, name, unbuilt)
        mp.setattr(plots, "png_bytes", lambda fig, dpi=plots.DPI: png)
        mp.setattr(Figure, "savefig", savefig)  # the study's figures, built elsewhere
        yield


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
    with threadpool_limits(limits=1, user_api="blas"):  # see one_blas_thread
        return train_run(cfg, out=out, data=mnist, progress=False).model_path


@pytest.fixture(scope="module")
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread for a module. The tests multiply small matrices, and on a shared 2-core
    machine OpenBLAS's second thread spins while it waits for a core another process holds: the
    2-epoch run of `mnist_model` took 17-48 s with two threads there, 2.2 s with one. (Not for
    the whole suite: a float32 GEMM rounds differently with another thread count, and
    tests/train/test_pinned.py pins weights computed with the default.)"""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


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


def quadrants(n: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small, learnable image problem: (n, size, size) uint8 noise with one bright quadrant,
    and the quadrant's number (0-3) as the label, (n,) uint8."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    h = size // 2
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        X[i, r * h : r * h + h, q * h : q * h + h] += 150
    return X, y.astype(np.uint8)


def write_idx_dir(d: Path, train: tuple, test: tuple) -> Path:
    """An MNIST-layout folder of gzipped IDX files with ``train`` and ``test`` as (images, labels)."""
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / "train-images-idx3-ubyte.gz", train[0])
    write_idx(d / "train-labels-idx1-ubyte.gz", train[1])
    write_idx(d / "t10k-images-idx3-ubyte.gz", test[0])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", test[1])
    return d


def meta_classifier(meta: dict[str, Any], geometry: Geometry = PLAIN) -> Classifier:
    """A 4-3-2 model with the given file metadata, for code that reads what a model file records."""
    net = MLP(4, [3], 2, rng=np.random.default_rng(0))
    return Classifier(net, Normalization(0.0, 1.0), ["a", "b"], (2, 2), meta, geometry)
