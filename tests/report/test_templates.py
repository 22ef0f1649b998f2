"""The page templates shipped in handnet/report/templates: every section of a run, values escaped."""

from __future__ import annotations

import io
import re
from importlib.resources import files

import numpy as np
from conftest import tiny_dataset
from PIL import Image

from handnet.nn.model import MLP
from handnet.report import run_plots
from handnet.report.html import run_report
from handnet.train.classifier import Classifier

SECTIONS = [
    ("metrics", "Metrics"),
    ("plots", "Plots"),
    ("config", "Configuration"),
    ("data", "Dataset and timings"),
    ("history", "History"),
]
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def small_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, format="PNG")
    return buf.getvalue()


def a_run() -> run_plots.RunView:
    """A 3-class run whose second class is named ``<b>`` and whose name holds ``<`` and ``&``."""
    data = tiny_dataset(n=64, d=20, c=3)
    net = MLP(20, (8,), 3, rng=np.random.default_rng(0))
    history = [
        {"epoch": e, "train_loss": 1 / e, "train_acc": 0.5, "val_loss": 1 / e, "val_acc": 0.4,
         "lr": 0.1, "seconds": 1.5}
        for e in (1, 2, 3)
    ]  # fmt: skip
    meta = {
        "dataset": "tiny",
        "history": history,
        "config": {"lr": 0.1, "hidden_sizes": [8], "epochs": 3, "batch_size": 32},
        "metrics": {"run": "r<1> & co", "test_accuracy": 0.9, "val_accuracy": 0.8,
                    "test_loss": 0.3, "val_loss": 0.4, "test_size": 16, "val_size": 16,
                    "train_size": 64, "test_per_class_accuracy": [0.9, 0.8, 1.0]},
    }  # fmt: skip
    clf = Classifier(net, data.norm, ["a", "<b>", "c"], data.image_shape, meta=meta)
    return run_plots.RunView(clf, data.X_test, data.y_test, "tiny")


def test_the_templates_are_package_files() -> None:
    folder = files("handnet.report") / "templates"
    names = {p.name for p in folder.iterdir()}
    assert {"base.html", "run.html", "study.html", "macros.html", "report.css"} <= names


def test_the_shipped_templates_render_every_section_of_a_run() -> None:
    pngs = {"loss": small_png(40, 30), "confusion": small_png(50, 20)}
    page = run_report(a_run(), pngs)
    nav = re.search(r"<nav>(.*?)</nav>", page)
    assert nav is not None
    assert nav.group(1) == "".join(f'<a href="#{id}">{title}</a>' for id, title in SECTIONS)
    starts = [page.index(f'<section id="{id}"><h2>{title}</h2>') for id, title in SECTIONS]
    assert starts == sorted(starts)  # each section once, in the order of the contents
    assert page.count("<section ") == len(SECTIONS)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "<script" not in page and "<style>\n:root {" in page  # the CSS is inline
    # what each section holds
    assert '<div class="label">test accuracy</div><div class="value">90.00%</div>' in page
    assert "<td>validation</td><td class=num>80.00%</td><td class=num>0.4000</td>" in page
    assert page.count('<figure id="plot-') == 2
    assert 'id="plot-confusion"><h3>Confusion matrix (test)</h3>' in page
    assert 'width="50" height="20" alt="Confusion matrix (test)"' in page
    assert "<td>batch_size</td><td>32</td>" in page and "<td>network</td>" in page
    assert "<td>dataset</td><td>tiny</td>" in page and "<td>training images</td><td>64</td>" in page
    history = page[starts[-1] :]
    assert history.count("<tr>") == 1 + 3  # header and three epochs
    assert "<td class=num>3</td><td class=num>0.3333</td>" in history


def test_values_are_escaped_as_text() -> None:
    page = run_report(a_run(), {})
    assert "<title>r&lt;1&gt; &amp; co</title>" in page
    assert "<h1>r&lt;1&gt; &amp; co</h1>" in page
    assert "<td>&lt;b&gt;</td><td class=num>80.00%</td>" in page  # per-class accuracy
    assert "<td>classes</td><td>a, &lt;b&gt;, c</td>" in page
    assert "<b>" not in page and "r<1>" not in page
    assert "<p>No plots.</p>" in page
