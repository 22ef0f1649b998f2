"""Pictures and pages: ``handnet plot`` and ``handnet report`` (a run, or a search study)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from handnet.cli.common import MODEL_HELP, add_data_source_flags, dataset_name, needs_search_extra
from handnet.errors import ConfigError


def add_run_source(p: Any, required: bool = True) -> None:
    p.add_argument(
        "run",
        type=Path,
        nargs=None if required else "?",
        help=MODEL_HELP,
    )
    p.add_argument(
        "--dataset",
        type=dataset_name,
        help="draw test-set plots on this dataset name or path (default: the model's own)",
    )
    add_data_source_flags(p)
    p.add_argument(
        "--out", type=Path, help="output directory (default: the directory of the model file)"
    )


def add_plot(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a run's plots (curves, weights, confusion, mistakes) as PNGs",
        description="Draw the plots of a run again from its model file's stored history and "
        "weights; test-set plots are recomputed on the dataset's test split.",
    )
    add_run_source(p)
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from handnet.report import run_plots
    from handnet.train.rundir import run_model

    view = run_plots.load_view(args.run, args.dataset, args.data_dir, args.mirror)
    out = args.out or run_model(args.run).parent
    for path in run_plots.write(run_plots.draw(view), out):
        print(path)
    return 0


def add_report(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's (or a search study's) self-contained report.html",
        description="Write one self-contained HTML page for a run: plots embedded, no network. "
        "With --study, the page of a search study instead: leaderboard, search plots, and a link "
        "to the best run's own page.",
    )
    add_run_source(p, required=False)
    p.add_argument("--study", help="a search study's name (see handnet search)")
    p.add_argument(
        "--storage", help="the study's storage URL (default: sqlite:///RUNS/search.db, as search)"
    )
    p.add_argument(
        "--runs", type=Path, default=Path("runs"), help="where the search wrote its studies"
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from handnet.report import html as report
    from handnet.report import run_plots
    from handnet.train.rundir import run_model

    if args.study is not None:
        if args.run is not None:
            raise ConfigError("give a run or --study, not both")
        print(_study_report(args))
        return 0
    if args.run is None:
        raise ConfigError("give a run directory or model file, or --study NAME")
    view = run_plots.load_view(args.run, args.dataset, args.data_dir, args.mirror)
    out = args.out or run_model(args.run).parent
    path = report.write_run_report(view, run_plots.draw(view), Path(out) / report.REPORT_NAME)
    print(path)
    return 0


def _study_report(args: argparse.Namespace) -> Path:
    try:
        from handnet.search import study as S
        from handnet.search.report import write_study_report
    except ImportError as e:
        raise needs_search_extra(e) from None
    cfg = S.SearchConfig(study=args.study, storage=args.storage or "", out=args.runs)
    study = S.load_study(cfg)
    return write_study_report(study, cfg.study_dir, data_dir=args.data_dir, mirror=args.mirror)
