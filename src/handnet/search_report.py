"""A search study's page: leaderboard, search plots, and the best run's own page, linked.

``handnet report --study NAME`` writes ``<runs>/<study>/report.html`` with the same template as a
run's page (`handnet.report.render_page`), and ``best-report.html`` beside it: the full run page of
the best trial's model. The best model is evaluated on the test set once (`finalize_best`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from handnet import report
from handnet.io import atomic_write_text
from handnet.run_plots import draw, load_view
from handnet.search_plots import history_figure, importances_figure, params_figure, png_bytes
from handnet.search_results import finalize_best, ranked, state_counts

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
        "so far.",
    ),
    (
        "importances",
        "Hyperparameter importances",
        importances_figure,
        "How much of the variation in validation accuracy each hyperparameter explains (Optuna's "
        "default importance evaluator).",
    ),
)


def _leaderboard(study: optuna.Study, top: int) -> str:
    rows = ranked(study)[:top]
    if not rows:
        return "<p>No completed trial yet.</p>"
    names = list(rows[0].params)
    body = [
        [
            i + 1,
            t.number,
            f"{t.value:.2%}",
            *(
                f"{t.params.get(n):.3g}" if isinstance(t.params.get(n), float) else t.params.get(n)
                for n in names
            ),
            f"{t.user_attrs.get('seconds', float('nan')):.1f}",
        ]
        for i, t in enumerate(rows)
    ]
    header = ["rank", "trial", "validation", *names, "seconds"]
    return report.table(body, header, numeric=range(len(header)))


def _best_section(record: dict[str, Any] | None, link: str | None) -> str:
    if record is None:
        return "<p>No completed trial yet.</p>"
    if "missing" in record:
        return f"<p>Trial {report.esc(record['trial'])}: {report.esc(record['missing'])}.</p>"
    rows = [
        ("trial", record["trial"]),
        ("validation accuracy (chosen on this)", f"{record['val_accuracy']:.2%}"),
        ("test accuracy (evaluated once)", f"{record['test_accuracy']:.2%}"),
        ("model", record["best"]),
        *(
            (f"param {k}", f"{v:.4g}" if isinstance(v, float) else v)
            for k, v in record["params"].items()
        ),
    ]
    page = (
        f'<p><a href="{report.esc(link)}">The best run\'s own page</a> (curves, weights, mistakes).</p>'
        if link
        else ""
    )
    return page + report.table(rows)


def study_report(
    study: optuna.Study, record: dict[str, Any] | None, link: str | None, top: int = 20
) -> str:
    counts = state_counts(study)
    summary = [
        ("trials", str(sum(counts.values()))),
        *((state, str(n)) for state, n in counts.items()),
    ]
    if record and "val_accuracy" in record:
        summary += [
            ("best validation", f"{record['val_accuracy']:.2%}"),
            ("its test accuracy", f"{record['test_accuracy']:.2%}"),
        ]
    sections = [
        report.Section("leaderboard", "Leaderboard", _leaderboard(study, top)),
        report.Section("best", "Best trial", _best_section(record, link)),
    ]
    if ranked(study):
        figures = "".join(
            report.png_figure(name, title, caption, png_bytes(make(study)))
            for name, title, make, caption in _PLOTS
        )
        sections.append(report.Section("plots", "Search plots", figures))
    return report.render_page(
        f"study {study.study_name}",
        "A handnet hyperparameter search: every trial chosen on validation accuracy; only the best "
        "model is evaluated on the test set, once.",
        summary,
        sections,
    )


def write_study_report(
    study: optuna.Study,
    study_dir: Path,
    *,
    data_dir: Path | None = None,
    mirror: str | None = None,
) -> Path:
    """Write the study page (and the best run's page beside it) into ``study_dir``."""
    record = finalize_best(study, study_dir, data_dir=data_dir, mirror=mirror)
    link = None
    if record and "best" in record:
        view = load_view(record["best"], data_dir=data_dir, mirror=mirror)
        # A trial's model records no test metrics (trials never see the test set): the page shows
        # the one evaluation that finalize_best made of the best model.
        metrics = view.clf.meta.setdefault("metrics", {})
        metrics |= {k: record[k] for k in ("test_accuracy", "test_loss", "test_per_class_accuracy")}
        report.write_run_report(view, draw(view), study_dir / BEST_REPORT_NAME)
        link = BEST_REPORT_NAME
    study_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(study_dir / report.REPORT_NAME, study_report(study, record, link))
