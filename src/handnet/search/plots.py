"""Figures of a study (matplotlib's object API on the Agg canvas; no pyplot, no display needed).

- ``search-params.png``: validation accuracy against each hyperparameter, on a log axis where the
  search drew it log-uniformly (the seed report's figure, one panel per parameter);
- ``search-history.png``: each trial's accuracy by trial number, and the best so far (the legend
  counts the failed trials, which have no accuracy to plot);
- ``search-importances.png``: how much of the accuracy's variation each parameter explains.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from handnet.files import atomic_write_bytes
from handnet.report.plots import png_bytes

_DONE, _PRUNED = "tab:blue", "0.6"
DPI = 110  # the PNGs are figsize * DPI pixels


def _points(study: optuna.Study) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if t.intermediate_values
    ]
    return done, pruned


def _last(t: FrozenTrial) -> float:
    return t.intermediate_values[max(t.intermediate_values)]


def params_figure(study: optuna.Study) -> Figure:
    """Validation accuracy against each hyperparameter, one panel per parameter.

    Completed trials are dots, pruned ones crosses (at the last epoch they reported), the best
    trial a star. A range's axis spans the searched range, log where it was drawn
    log-uniformly; a choice's axis has a tick per choice.

    Parameters
    ----------
    study : optuna.Study
        The study.

    Returns
    -------
    Figure
        The figure, not yet rendered (`handnet.report.plots.png_bytes` renders it).
    """
    done, pruned = _points(study)
    dists: dict[str, optuna.distributions.BaseDistribution] = {}
    for t in done + pruned:
        for k, d in t.distributions.items():
            dists.setdefault(k, d)
    n = max(1, len(dists))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    best = max(done, key=lambda t: t.value or 0.0) if done else None
    handles: list[Any] = []
    labels: list[str] = []
    if not dists:  # no trial has finished an epoch yet (or every one failed)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no completed or pruned trial yet", ha="center", va="center")
        ax.set_axis_off()
    for i, (name, dist) in enumerate(dists.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for group, color, marker, label, y in (
            (pruned, _PRUNED, "x", "pruned (last epoch reported)", _last),
            (done, _DONE, "o", "completed", lambda t: t.value),
        ):
            pts = [(t.params[name], y(t)) for t in group if name in t.params]
            if pts:
                raw, ys = zip(*pts)
                ax.scatter(
                    _positions(dist, raw),
                    [100 * v for v in ys],
                    s=18,
                    c=color,
                    marker=marker,
                    label=label,
                )
        if best is not None and name in best.params:
            ax.scatter(
                _positions(dist, [best.params[name]]),
                [100 * (best.value or 0.0)],
                s=120,
                marker="*",
                c="tab:red",
                label="best",
                zorder=3,
            )
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            pad = (dist.high / dist.low) ** 0.03 if dist.log else 0.03 * (dist.high - dist.low)
            lo, hi = (
                (dist.low / pad, dist.high * pad) if dist.log else (dist.low - pad, dist.high + pad)
            )
            if dist.log:
                ax.set_xscale("log")
                decades = math.log10(dist.high / dist.low)
                subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 1 else None
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            if hi > lo:
                ax.set_xlim(lo, hi)  # the searched range, so the gaps are visible too
        if isinstance(dist, CategoricalDistribution):
            ax.set_xticks(range(len(dist.choices)), [str(c) for c in dist.choices])
            ax.set_xlim(-0.5, len(dist.choices) - 0.5)
        ax.set_xlabel(name + (" (log)" if getattr(dist, "log", False) else ""))
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(True, alpha=0.3)
        if i == 0:
            handles, labels = ax.get_legend_handles_labels()
    # One legend for all panels, above them: inside a panel it can hide the best trial's star.
    if handles:
        fig.legend(handles, labels, loc="upper right", ncol=2, fontsize="small")
    fig.suptitle(f"{study.study_name}: validation accuracy vs hyperparameters")
    return fig


def _positions(dist: optuna.distributions.BaseDistribution, xs: object) -> list[float]:
    if isinstance(dist, CategoricalDistribution):
        return [float(dist.choices.index(x)) for x in xs]  # type: ignore[attr-defined]
    return [float(x) for x in xs]  # type: ignore[attr-defined]


def history_figure(study: optuna.Study) -> Figure:
    """Each trial's validation accuracy by trial number, and the best so far.

    Pruned trials are shown at the last epoch they reported; failed trials have no accuracy,
    so the legend only counts them.

    Parameters
    ----------
    study : optuna.Study
        The study.

    Returns
    -------
    Figure
        The figure, not yet rendered.
    """
    done, pruned = _points(study)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    if pruned:
        ax.scatter(
            [t.number for t in pruned],
            [100 * _last(t) for t in pruned],
            c=_PRUNED,
            marker="x",
            s=18,
            label="pruned",
        )
    if done:
        done = sorted(done, key=lambda t: t.number)
        ax.scatter(
            [t.number for t in done],
            [100 * (t.value or 0) for t in done],
            c=_DONE,
            s=18,
            label="completed",
        )
        best, xs, ys = -math.inf, [], []
        for t in done:
            best = max(best, t.value or 0.0)
            xs.append(t.number)
            ys.append(100 * best)
        ax.step(xs, ys, where="post", c="tab:red", label="best so far")
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if failed:  # a legend line with no marker: they ended without an accuracy
        ax.plot([], [], ls="none", label=f"failed trials: {len(failed)} (no point)")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{study.study_name}: optimization history")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def importances_figure(study: optuna.Study) -> Figure:
    """How much of the validation accuracy's variation each hyperparameter explains.

    The importances are Optuna's PED-ANOVA ones, most important on top. With too few
    completed trials, or no parameter that varied, the figure says why instead.

    Parameters
    ----------
    study : optuna.Study
        The study.

    Returns
    -------
    Figure
        The figure, not yet rendered.
    """
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(f"{study.study_name}: parameter importances (PED-ANOVA)")
    try:
        with warnings.catch_warnings():  # "importances will be equal" when all trials tie
            warnings.simplefilter("ignore", UserWarning)
            imp = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
    except (ValueError, RuntimeError) as e:  # too few completed trials, or one distinct value
        imp, why = {}, str(e).split(".")[0]
    else:
        why = "no parameter varied"
    if not imp:
        ax.text(0.5, 0.5, f"not available: {why}", ha="center", va="center", wrap=True)
        ax.set_axis_off()
        return fig
    names = list(imp)[::-1]
    ax.barh(names, [imp[n] for n in names], color=_DONE)
    ax.set_xlabel("importance (share of the total)")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def write_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Draw the study's three figures and write them as PNGs into ``out_dir``, atomically.

    Parameters
    ----------
    study : optuna.Study
        The study.
    out_dir : Path
        The directory the files go into (usually the study's folder).

    Returns
    -------
    list of Path
        ``search-params.png``, ``search-history.png`` and ``search-importances.png``.
    """
    figures = {
        "search-params.png": params_figure,
        "search-history.png": history_figure,
        "search-importances.png": importances_figure,
    }
    return [
        atomic_write_bytes(out_dir / name, png_bytes(make(study), dpi=DPI))
        for name, make in figures.items()
    ]
