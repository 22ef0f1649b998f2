"""One self-contained HTML page per run: the numbers and the plots, readable from disk.

The page is a single file: the PNGs are embedded as ``data:`` URIs, the CSS is inline, there is
no script, and a Content-Security-Policy forbids every network request. `render_page` is the
shared template (header, summary cards, table of contents, sections); `run_report` fills it for
one run. A study's page can be another filler of the same template.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from handnet.files import atomic_write_text
from handnet.report import run_plots
from handnet.report.run_plots import PLOTS, RunView
from handnet.version import __version__

REPORT_NAME = "report.html"

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 24px 48px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 14px; margin-bottom: 20px; }
h1 { font-size: 26px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 4px; }
.sub { color: var(--muted); margin: 0; }
nav { margin: 12px 0 0; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
nav a:hover { text-decoration: underline; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 20px;
  align-items: start; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 0 0 8px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
tbody tr:nth-child(even) { background: #fbfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: 13px ui-monospace, "DejaVu Sans Mono", monospace; background: var(--soft);
  padding: 1px 4px; border-radius: 4px; }
.scroll { overflow-x: auto; }
figure { margin: 0 0 28px; padding: 14px; border: 1px solid var(--line); border-radius: 8px; }
figure img { display: block; max-width: 100%; height: auto; margin: 8px auto 0; }
figcaption { color: var(--muted); font-size: 14px; }
tr.muted td { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line);
  padding-top: 10px; }
"""

# No script, no network: only inline styles and data: images may load.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Section:
    """One titled part of a page; ``body`` is trusted HTML built by this module."""

    id: str
    title: str
    body: str


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def table(
    rows: Sequence[Sequence[object]],
    header: Sequence[str] = (),
    numeric: Sequence[int] = (),
    muted: Sequence[int] = (),
) -> str:
    """An HTML table; cells are escaped, columns listed in ``numeric`` are right-aligned, rows
    listed in ``muted`` are greyed (e.g. a search's failed trials)."""

    def cells(row: Sequence[object], tag: str) -> str:
        return "".join(
            f"<{tag}{' class=num' if i in numeric else ''}>{esc(v)}</{tag}>"
            for i, v in enumerate(row)
        )

    head = f"<thead><tr>{cells(header, 'th')}</tr></thead>" if header else ""
    body = "".join(
        f"<tr{' class=muted' if j in muted else ''}>{cells(r, 'td')}</tr>"
        for j, r in enumerate(rows)
    )
    return f'<div class="scroll"><table>{head}<tbody>{body}</tbody></table></div>'


def cards(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="label">{esc(k)}</div><div class="value">{esc(v)}</div></div>'
            for k, v in items
        )
        + "</div>"
    )


def png_figure(name: str, title: str, caption: str, png: bytes) -> str:
    """A titled figure with the PNG embedded as a data URI (shown at most at its natural size)."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return (
        f'<figure id="plot-{esc(name)}"><h3>{esc(title)}</h3><figcaption>{esc(caption)}</figcaption>'
        f'<img src="{uri}" width="{w}" height="{h}" alt="{esc(title)}"></figure>'
    )


def render_page(
    title: str, subtitle: str, summary: Sequence[tuple[str, str]], sections: Sequence[Section]
) -> str:
    """The page template shared by every handnet report."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{esc(title)}</title>
<link rel="icon" href="data:,">
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p><nav>{nav}</nav></header>
{cards(summary)}
{body}
<footer>Written by handnet {esc(__version__)} at {esc(made)}. This page is self-contained: it
needs no network and no server.</footer>
</main>
</body>
</html>
"""


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


def _metrics_section(view: RunView) -> str:
    m = view.metrics
    rows = [
        (
            "validation",
            _pct(m.get("val_accuracy")),
            _num(m.get("val_loss")),
            _count(m.get("val_size")),
        ),
        (
            "test (evaluated once)",
            _pct(m.get("test_accuracy")),
            _num(m.get("test_loss")),
            _count(m.get("test_size")),
        ),
    ]
    out = "<div>" + table(rows, ("split", "accuracy", "loss", "images"), numeric=(1, 2, 3))
    out += (
        "<p class=sub>Hyperparameters are chosen on the validation split; the test split is "
        "evaluated once, at the end of the run.</p></div>"
    )
    per_class = m.get("test_per_class_accuracy")
    if per_class:
        conf = view.confusion if view.test_source == view.meta.get("dataset") else None
        by_class = [
            (c, _pct(a), _count(int(conf[i].sum() - conf[i, i])) if conf is not None else "")
            for i, (c, a) in enumerate(zip(view.clf.classes, per_class))
        ]
        out += "<div>" + table(by_class, ("class", "test accuracy", "mistakes"), numeric=(1, 2))
        out += "</div>"
    return f'<div class="grid2">{out}</div>'


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


def _history_table(history: Sequence[Mapping[str, float]]) -> str:
    rows = [
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
    return table(
        rows,
        ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds"),
        numeric=range(7),
    )


def run_report(view: RunView, pngs: Mapping[str, bytes]) -> str:
    """The HTML page of one run: summary, metrics, plots, config, dataset, timings, history."""
    m, cfg = view.metrics, view.config
    name = str(m.get("run") or view.meta.get("run") or "handnet model")
    hidden = ", ".join(map(str, view.clf.net.hidden_sizes)) or "none"
    subtitle = (
        f"{view.meta.get('dataset', '?')} · hidden {hidden} ({view.clf.net.activation}) · "
        f"{len(view.history)} epochs · handnet {view.meta.get('handnet_version', __version__)}"
    )
    summary = [
        ("test accuracy", _pct(m.get("test_accuracy"))),
        ("validation accuracy", _pct(m.get("val_accuracy"))),
        ("test loss", _num(m.get("test_loss"))),
        ("epochs", str(m.get("epochs", len(view.history)))),
        ("training time", _seconds(m.get("train_seconds"), short=True)),
    ]
    figs = "".join(png_figure(k, *PLOTS[k], pngs[k]) for k in PLOTS if k in pngs)
    sections = [
        Section("metrics", "Metrics", _metrics_section(view)),
        Section("plots", "Plots", figs or "<p>No plots.</p>"),
        Section(
            "config",
            "Configuration",
            '<div class="grid2"><div>'
            + table(sorted((k, _config_value(v)) for k, v in cfg.items()), ("setting", "value"))
            + "</div><div>"
            + table(_model_rows(view), ("model", ""))
            + "</div></div>",
        ),
        Section(
            "data",
            "Dataset and timings",
            '<div class="grid2"><div>'
            + table(_dataset_rows(view), ("dataset", ""))
            + "</div><div>"
            + table(_timing_rows(view), ("timing", ""))
            + "</div></div>",
        ),
    ]
    if view.history:
        sections.append(Section("history", "History", _history_table(view.history)))
    return render_page(name, subtitle, summary, sections)


def _config_value(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def write_run_report(view: RunView, pngs: Mapping[str, bytes], path: str | Path) -> Path:
    return atomic_write_text(path, run_report(view, pngs))


def publish_run(view: RunView, out_dir: str | Path) -> list[Path]:
    """Draw every plot, write the PNGs and ``report.html`` into ``out_dir``; returns the paths."""
    pngs = run_plots.draw(view)
    written = run_plots.write(pngs, out_dir)
    return [*written, write_run_report(view, pngs, Path(out_dir) / REPORT_NAME)]
