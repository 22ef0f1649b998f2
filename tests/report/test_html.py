"""A run's page: written by train_run, holds every plot and the key numbers, opens in Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import tiny_dataset

from handnet import train_run
from handnet.data import Dataset
from handnet.nn.model import MLP
from handnet.report import run_plots
from handnet.report.html import REPORT_NAME, run_report
from handnet.train.classifier import Classifier
from handnet.train.config import TrainConfig
from handnet.train.runs import RunResult
from handnet.version import __version__
from report.test_plots import assert_real_png, png_size

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py says why


@pytest.fixture(scope="module")
def run(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """A short real run on 3,000 MNIST training images, tested on the real 10,000 test images."""
    small = replace(mnist, X_train=mnist.X_train[:3000], y_train=mnist.y_train[:3000])
    cfg = TrainConfig(hidden_sizes=(32,), epochs=3, val_size=len(mnist.y_val))
    return train_run(cfg, out=tmp_path_factory.mktemp("runs"), data=small, progress=False)


def test_train_run_writes_every_plot_and_the_report(run: RunResult) -> None:
    names = {p.name for p in run.run_dir.iterdir()}
    assert {f"{k}.png" for k in run_plots.PLOTS} | {REPORT_NAME} <= names
    for k in ("loss", "confusion"):
        data = (run.run_dir / f"{k}.png").read_bytes()
        assert_real_png(data, png_size(data))
    assert run.metrics["train_size"] == 3000 and run.metrics["test_size"] == 10000


def test_report_embeds_every_plot_and_the_key_metrics(run: RunResult) -> None:
    page = (run.run_dir / REPORT_NAME).read_text()
    m = run.metrics
    for k in run_plots.PLOTS:  # each plot is embedded, byte for byte, as a data URI
        png = (run.run_dir / f"{k}.png").read_bytes()
        assert f'id="plot-{k}"' in page
        assert "data:image/png;base64," + base64.b64encode(png).decode() in page
    assert f"{m['test_accuracy']:.2%}" in page and f"{m['val_accuracy']:.2%}" in page
    assert f"{m['test_loss']:.4f}" in page and f"{m['val_loss']:.4f}" in page
    assert page.index("validation</td>") < page.index("test (evaluated once)")
    assert f"handnet {__version__}" in page and m["run"] in page and "mnist" in page
    for key in ("hidden_sizes", "lr", "weight_decay", "batch_size", "seed"):
        assert f"<td>{key}</td>" in page
    assert "3,000" in page and "10,000" in page  # dataset sizes
    assert not re.search(r"""(src|href)=["']https?:""", page), "the page must not load anything"


def test_view_from_the_model_file_alone_matches_the_run(run: RunResult, tmp_path: Path) -> None:
    """`handnet plot/report MODEL` redraws from the file: same history, same test predictions."""
    alone = tmp_path / run.model_path.name
    shutil.copy(run.model_path, alone)
    view = run_plots.load_view(alone)
    assert view.history == run.classifier.meta["history"] and view.test_source == "mnist"
    stored = json.loads((run.run_dir / "metrics.json").read_text())["test_confusion"]
    assert view.confusion.tolist() == stored
    assert view.steps_per_epoch() == run.metrics["steps"] // run.metrics["epochs"]
    pngs = run_plots.draw(view)
    assert list(pngs) == list(run_plots.PLOTS)
    assert f"{run.metrics['test_accuracy']:.2%}" in run_report(view, pngs)


@pytest.mark.browser
def test_report_opens_in_headless_chromium_without_errors(run: RunResult, browser: Any) -> None:
    page_path = run.run_dir / REPORT_NAME
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}")
                if msg.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
        page.goto(page_path.as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
        )
        title = page.title()
        shot = run.run_dir / "report-screenshot.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    assert problems == []
    assert title == run.metrics["run"]
    assert len(images) == len(run_plots.PLOTS)
    assert all(complete and width > 0 for _, complete, width in images), images
    data = shot.read_bytes()
    width, height = png_size(data)
    assert width == 1280 and height > 3000  # the whole page, plots included
    assert_real_png(data, (width, height))
    print(f"screenshot: {shot}")
    assert np.isfinite(run.metrics["test_accuracy"])


def test_a_model_without_history_or_images_still_gets_its_page() -> None:
    """A model file with no stored history (e.g. saved by other code) on non-image features:
    the curves are left out, everything else is drawn, and the page says what it has."""
    data = tiny_dataset(n=64, d=20, c=3)
    net = MLP(20, (8,), 3, rng=np.random.default_rng(0))
    clf = Classifier(net, data.norm, data.classes, data.image_shape, meta={"dataset": "tiny"})
    view = run_plots.RunView(clf, data.X_test, data.y_test, "tiny")
    pngs = run_plots.draw(view)
    assert list(pngs) == ["weights_first", "weights_output", "confusion", "mistakes", "activations"]
    for png in pngs.values():
        assert_real_png(png, png_size(png))
    page = run_report(view, pngs)
    assert page.count("data:image/png;base64,") == 5 and 'id="history"' not in page
    assert "n/a" in page  # no stored metrics: said, not invented
