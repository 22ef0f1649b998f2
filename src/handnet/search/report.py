"""A search study's page: leaderboard, search plots, and the best run's own page, linked.

``handnet report --study NAME`` writes ``<runs>/<study>/report.html`` from the template
``study.html``, which extends the run page's ``base.html`` (`handnet.report.html.render`), and
``best-report.html`` beside it: the full run page of the best trial's model. The best model is
evaluated on the test set once (`finalize_best`).
Failed trials are listed under the ranked ones, greyed, with their reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from handnet.files import atomic_write_text
from handnet.report import html as report
from handnet.report.plots import png_bytes
from handnet.report.run_plots import draw, load_view
from handnet.search.plots import DPI, history_figure, importances_figure, params_figure
from handnet.search.results import fail_reason, finalize_best, fmt_param, ranked, state_counts

BEST_REPORT_NAME = "best-report.html"
_PLOTS = (
    (
        "params",
        "Validation accuracy against each hyperparameter",
        params_figure,
        "One dot per completed trial; log axes where the search was log-uniform (the seed's figure).",
    ),
    (
        "history",
        "Optimization history",
        history_figure,
        "Each trial's validation accuracy at its end, in the order the trials ran, and the best "
        "so far. Failed trials have no point (they ended without an accuracy); the leaderboard "
        "lists them, greyed, with the reason.",
    ),
    (
        "importances",
        "Hyperparameter importances",
        importances_figure,
        "How much of the variation in validation accuracy each hyperparameter explains (Optuna's "
        "PED-ANOVA evaluator, which compares the best trials' values with all trials').",
    ),
)


def _leaderboard(study: optuna.Study, top: int) -> dict[str, Any]:
    """The ``top`` completed trials, ranked, then every failed trial, greyed, with its reason."""
    ranks = ranked(study)[:top]
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    names = list(dict.fromkeys(n for t in ranks + failed for n in t.params))
    rows = [
        [
            i + 1 if i < len(ranks) else "",
            t.number,
            t.state.name.lower(),
            f"{t.value:.2%}" if t.value is not None else "",
            *(fmt_param(t.params[n]) if n in t.params else "" for n in names),
            f"{t.user_attrs['seconds']:.1f}" if "seconds" in t.user_attrs else "",
            fail_reason(t) if t.state == TrialState.FAIL else "",
        ]
        for i, t in enumerate(ranks + failed)
    ]
    header = ["rank", "trial", "state", "validation", *names, "seconds", "why it failed"]
    return {
        "n_ranked": len(ranks),
        "leaderboard": rows,
        "header": header,
        "numeric": [j for j, h in enumerate(header) if h not in ("state", "why it failed")],
        "muted": range(len(ranks), len(rows)),
    }


def _best_rows(record: dict[str, Any]) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("trial", record["trial"]),
        ("validation accuracy (chosen on this)", f"{record['val_accuracy']:.2%}"),
    ]
    if "test_accuracy" in record:
        rows.append(("test accuracy (evaluated once)", f"{record['test_accuracy']:.2%}"))
    rows.append(("model", record["best"] or record["model"]))
    rows += [(f"param {k}", fmt_param(v)) for k, v in record["params"].items()]
    return rows


def study_report(
    study: optuna.Study, record: dict[str, Any] | None, link: str | None, top: int = 20
) -> str:
    """The study's HTML page: counts, leaderboard, failed trials, the best trial and the plots.

    The plots are drawn only once a trial has completed.

    Parameters
    ----------
    study : optuna.Study
        The study.
    record : dict of str to Any or None
        The best trial's record, as `finalize_best` returns it; None when there is none.
    link : str or None
        The best run's page, relative to the study page (``best-report.html``); None when it
        was not written.
    top : int, default=20
        How many completed trials the leaderboard ranks; every failed trial is listed too.

    Returns
    -------
    str
        The self-contained HTML page.
    """
    counts = state_counts(study)
    summary = [
        ("trials", str(sum(counts.values()))),
        *((state, str(n)) for state, n in counts.items()),
    ]
    if record:
        summary.append(("best validation", f"{record['val_accuracy']:.2%}"))
    if record and "test_accuracy" in record:
        summary.append(("its test accuracy", f"{record['test_accuracy']:.2%}"))
    figures = (
        [
            report.png_figure(name, title, caption, png_bytes(make(study), dpi=DPI))
            for name, title, make, caption in _PLOTS
        ]
        if ranked(study)
        else []
    )
    return report.render(
        "study.html",
        title=f"study {study.study_name}",
        subtitle="A handnet hyperparameter search: every trial chosen on validation accuracy; only "
        "the best model is evaluated on the test set, once.",
        summary=summary,
        **_leaderboard(study, top),
        best=None if record is None else _best_rows(record),
        missing=(record or {}).get("missing"),
        link=link,
        figures=figures,
    )


def write_study_report(
    study: optuna.Study,
    study_dir: Path,
    *,
    data_dir: Path | None = None,
    mirror: str | None = None,
) -> Path:
    """Write the study page (and the best run's page beside it) into ``study_dir``.

    The best model is copied out and evaluated on the test set once (`finalize_best`); its
    run page shows that evaluation, since a trial's model records no test metrics. Where the
    best model is not on this machine, only the study page is written, saying so.

    Parameters
    ----------
    study : optuna.Study
        The study.
    study_dir : Path
        The study's folder; ``report.html`` and ``best-report.html`` go into it.
    data_dir : Path or None, optional
        Where the dataset files are.
    mirror : str or None, optional
        Where to download the dataset from.

    Returns
    -------
    Path
        The study page written (``study_dir / "report.html"``).
    """
    record = finalize_best(study, study_dir, data_dir=data_dir, mirror=mirror)
    link = None
    if record and "missing" not in record:
        view = load_view(record["best"], data_dir=data_dir, mirror=mirror)
        # A trial's model records no test metrics (trials never see the test set): the page shows
        # the one evaluation that finalize_best made of the best model.
        metrics = view.clf.meta.setdefault("metrics", {})
        metrics |= {k: record[k] for k in ("test_accuracy", "test_loss", "test_per_class_accuracy")}
        report.write_run_report(view, draw(view), study_dir / BEST_REPORT_NAME)
        link = BEST_REPORT_NAME
    return atomic_write_text(study_dir / report.REPORT_NAME, study_report(study, record, link))
