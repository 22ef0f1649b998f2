"""One self-contained HTML page per run: the numbers and the plots, readable from disk.

The page is a single file: the PNGs are embedded as ``data:`` URIs, the CSS is inline, there is
no script, and a Content-Security-Policy forbids every network request. The markup and the style
are Jinja templates in ``handnet/report/templates`` (``base.html``, the page every report shares;
``run.html`` and the study's ``study.html`` extend it), rendered with autoescape on, so that a
class name or a failure reason shows as text. This module computes what a run's page shows;
`render` fills a template with it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from handnet.files import atomic_write_text
from handnet.report import run_plots
from handnet.report.run_plots import PLOTS, RunView
from handnet.report.settings import settings_in_effect
from handnet.version import __version__

REPORT_NAME = "report.html"

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("handnet.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a misspelt name fails here, not as a blank on the page
    keep_trailing_newline=True,
)


def render(template: str, **context: Any) -> str:
    """Fill a page template (one that extends ``base.html``) with ``context``.

    Every page also gets the handnet version and the time it was made (UTC). Autoescape is on
    and a name the template uses but ``context`` lacks raises instead of showing as a blank.

    Parameters
    ----------
    template : str
        The template's file name in ``handnet/report/templates`` (``"run.html"``,
        ``"study.html"``).
    **context : Any
        The values the template shows, by name.

    Returns
    -------
    str
        The HTML page.

    Raises
    ------
    jinja2.UndefinedError
        When the template uses a name that ``context`` does not give.
    """
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    page = _TEMPLATES.get_template(template)
    return page.render(version=__version__, made=made, **context)


@dataclass(frozen=True)
class Figure:
    """A titled plot of a page, its PNG as a ``data:`` URI and its natural size in pixels.

    Parameters
    ----------
    name : str
        The plot's name (the PNG's file name without ``.png``), used as its anchor on the page.
    title : str
        The heading shown above the plot.
    caption : str
        The sentence shown below it: how to read the plot.
    uri : str
        The PNG as a ``data:image/png;base64,...`` URI.
    width : int
        The PNG's width in pixels; the page shows it at most this wide.
    height : int
        The PNG's height in pixels.
    """

    name: str
    title: str
    caption: str
    uri: str
    width: int
    height: int


def png_figure(name: str, title: str, caption: str, png: bytes) -> Figure:
    """A plot for a page's ``figure`` macro, shown at most at the PNG's own size.

    Parameters
    ----------
    name : str
        The plot's name (its file name without ``.png``).
    title : str
        The heading shown above the plot.
    caption : str
        The sentence shown below it.
    png : bytes
        The PNG file's bytes; only its header is read, for the size.

    Returns
    -------
    Figure
        The plot, its PNG embedded as a base64 ``data:`` URI.
    """
    width, height = Image.open(io.BytesIO(png)).size  # reads the header only
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return Figure(name, title, caption, uri, width, height)


def _pct(v: Any) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def _num(v: Any, fmt: str = ".4f") -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def _seconds(v: Any, short: bool = False) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    if v < 120:
        return f"{v:.1f} s"
    return f"{v / 60:.1f} min" if short else f"{v / 60:.1f} min ({v:.0f} s)"


def _count(v: Any) -> str:
    return f"{int(v):,}" if isinstance(v, (int, float)) and math.isfinite(v) else ""


def _split_rows(view: RunView) -> list[tuple[str, str, str, str]]:
    m = view.metrics
    return [
        (name, _pct(m.get(f"{s}_accuracy")), _num(m.get(f"{s}_loss")), _count(m.get(f"{s}_size")))
        for s, name in (("val", "validation"), ("test", "test (evaluated once)"))
    ]


def _class_rows(view: RunView) -> list[tuple[str, str, str]]:
    """Test accuracy per class, and its mistakes when the plots were drawn on the same test set."""
    per_class = view.metrics.get("test_per_class_accuracy") or []
    conf = view.confusion if view.test_source == view.meta.get("dataset") else None
    return [
        (c, _pct(a), _count(int(conf[i].sum() - conf[i, i])) if conf is not None else "")
        for i, (c, a) in enumerate(zip(view.clf.classes, per_class))
    ]


def _model_rows(view: RunView) -> list[tuple[str, str]]:
    net = view.clf.net
    n_params = sum(p.size for p in net.parameters().values())
    return [
        ("network", repr(net)),
        ("parameters", f"{n_params:,}"),
        ("created", str(view.meta.get("created", "?"))),
        ("handnet version", str(view.meta.get("handnet_version", __version__))),
    ]


def _dataset_rows(view: RunView) -> list[tuple[str, str]]:
    m, clf = view.metrics, view.clf
    rows = [
        ("dataset", str(view.meta.get("dataset", "?"))),
        ("classes", ", ".join(clf.classes)),
        ("image shape", " x ".join(map(str, clf.image_shape))),
    ]
    for split in ("train", "val", "test"):
        if f"{split}_size" in m:
            name = {"train": "training", "val": "validation", "test": "test"}[split]
            rows.append((f"{name} images", f"{int(m[f'{split}_size']):,}"))
    rows.append(
        (
            "normalization",
            (f"{clf.geometry.describe()}, then " if clf.geometry else "")
            + f"(x - {clf.norm.mean:.4f}) / {clf.norm.std:.4f}, pixels in [0, 1]",
        )
    )
    rows.append(("plots drawn on", f"{view.test_source} test split ({len(view.y_test):,} images)"))
    return rows


def _timing_rows(view: RunView) -> list[tuple[str, str]]:
    m, hist = view.metrics, view.history
    rows = [
        ("loading data", _seconds(m.get("data_seconds"))),
        ("training", _seconds(m.get("train_seconds"))),
        ("whole run", _seconds(m.get("wall_seconds"))),
    ]
    if hist:
        secs = [float(r["seconds"]) for r in hist]
        rows.append(
            (
                "per epoch",
                f"{sum(secs) / len(secs):.2f} s (min {min(secs):.2f}, max {max(secs):.2f})",
            )
        )
        if m.get("train_size"):
            rate = int(m["train_size"]) * len(secs) / sum(secs)
            rows.append(("throughput", f"{rate:,.0f} training images/s"))
    return rows


def _history_rows(history: Sequence[Mapping[str, float]]) -> list[tuple[object, ...]]:
    return [
        (
            int(r["epoch"]),
            _num(r["train_loss"]),
            _pct(r["train_acc"]),
            _num(r["val_loss"]),
            _pct(r["val_acc"]),
            _num(r["lr"], ".4g"),
            _num(r["seconds"], ".2f"),
        )
        for r in history
    ]


def run_report(view: RunView, pngs: Mapping[str, bytes]) -> str:
    """The HTML page of one run: summary, metrics, plots, config, dataset, timings, history.

    Parameters
    ----------
    view : RunView
        The trained classifier (its metadata: config, history, metrics) and its test split.
    pngs : Mapping of str to bytes
        The drawn plots, PNG bytes keyed by name (as `handnet.report.run_plots.draw` returns
        them); they are shown in the order of `PLOTS`, and a plot left out is not shown.

    Returns
    -------
    str
        The self-contained HTML page.
    """
    m = view.metrics
    hidden = ", ".join(map(str, view.clf.net.hidden_sizes)) or "none"
    return render(
        "run.html",
        title=str(m.get("run") or view.meta.get("run") or "handnet model"),
        subtitle=(
            f"{view.meta.get('dataset', '?')} · hidden {hidden} ({view.clf.net.activation}) · "
            f"{len(view.history)} epochs · handnet {view.meta.get('handnet_version', __version__)}"
        ),
        summary=[
            ("test accuracy", _pct(m.get("test_accuracy"))),
            ("validation accuracy", _pct(m.get("val_accuracy"))),
            ("test loss", _num(m.get("test_loss"))),
            ("epochs", str(m.get("epochs", len(view.history)))),
            ("training time", _seconds(m.get("train_seconds"), short=True)),
        ],
        splits=_split_rows(view),
        per_class=_class_rows(view),
        figures=[png_figure(k, *PLOTS[k], pngs[k]) for k in PLOTS if k in pngs],
        config=settings_in_effect(view.config),
        model=_model_rows(view),
        dataset=_dataset_rows(view),
        timings=_timing_rows(view),
        history=_history_rows(view.history),
    )


def write_run_report(view: RunView, pngs: Mapping[str, bytes], path: str | Path) -> Path:
    """Write the HTML page of one run (`run_report`) to ``path``, atomically.

    Parameters
    ----------
    view : RunView
        The trained classifier and its test split.
    pngs : Mapping of str to bytes
        The drawn plots, PNG bytes keyed by name.
    path : str or Path
        Where the page goes (usually ``<run>/report.html``).

    Returns
    -------
    Path
        The file written.
    """
    return atomic_write_text(path, run_report(view, pngs))


def publish_run(view: RunView, out_dir: str | Path) -> list[Path]:
    """Draw every plot, write the PNGs and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    view : RunView
        The trained classifier and the test split the plots are drawn on.
    out_dir : str or Path
        The directory the files go into; it is made if missing.

    Returns
    -------
    list of Path
        The files written: one ``<name>.png`` per plot, then ``report.html``.
    """
    pngs = run_plots.draw(view)
    written = run_plots.write(pngs, out_dir)
    return [*written, write_run_report(view, pngs, Path(out_dir) / REPORT_NAME)]
