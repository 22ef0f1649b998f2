"""``handnet search``: an Optuna study that resumes, runs in parallel and spans machines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from handnet.cli.common import (
    DefaultsHelp,
    add_config_flags,
    add_data_source_flags,
    config_values,
    flag_errors,
    needs_search_extra,
    whole_number,
)
from handnet.train.config import TrainConfig


def add_search(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="hyperparameter search on Optuna (resumable, parallel, multi-machine, pruned)",
        description="Search hyperparameters. Re-running the same command resumes the study; "
        "several processes (--jobs, or other machines on one --storage) share it.",
        formatter_class=DefaultsHelp,
    )
    p.add_argument(
        "--trials",
        type=whole_number,
        default=20,
        help="trials in the study, counted across runs and workers",
    )
    p.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    p.add_argument(
        "--sampler",
        choices=("tpe", "random"),
        default="tpe",
        help="tpe: 10 random trials (the seed's method), then model-guided; random: all random",
    )
    p.add_argument(
        "--pruner",
        choices=("median", "halving", "none"),
        default="median",
        help="early stopping of bad trials",
    )
    p.add_argument(
        "--space",
        type=Path,
        help="TOML search space (default: lr, weight_decay, hidden_units, dropout, momentum, batch_size)",
    )
    p.add_argument("--epochs", type=whole_number, default=10, help="epochs per trial")
    p.add_argument("--study", default="search", help="study name; its files go to OUT/STUDY/")
    p.add_argument(
        "--storage",
        help="database URL: sqlite:///FILE or postgresql://USER:PW@HOST/DB "
        "(default: sqlite:///OUT/search.db)",
    )
    p.add_argument("--jobs", type=whole_number, default=1, help="worker processes on this machine")
    p.add_argument(
        "--sampler-seed", type=whole_number, help="seed the sampler (default: fresh entropy)"
    )
    # Every trial trains on these, and the search space draws the rest.
    add_config_flags(p, ("dataset", "val_size", "seed", "deskew", "width_normalize"))
    p.add_argument("--out", type=Path, default=Path("runs"), help="where OUT/STUDY/ is created")
    add_data_source_flags(p)
    p.add_argument(
        "--summary",
        action="store_true",
        help="run nothing: print the leaderboard, write plots and the best model",
    )
    p.add_argument("--top", type=whole_number, default=10, help="rows of the leaderboard")
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    p.set_defaults(func=cmd_search)


def _search_summary(study: Any, cfg: Any, args: argparse.Namespace) -> None:
    from handnet.search.plots import write_plots
    from handnet.search.results import best_line, finalize_best, leaderboard

    print(leaderboard(study, cfg.study_dir, top=args.top))
    record = finalize_best(study, cfg.study_dir, data_dir=args.data_dir, mirror=args.mirror)
    print(best_line(record))
    for path in write_plots(study, cfg.study_dir):
        print(f"plot: {path}")


def cmd_search(args: argparse.Namespace) -> int:
    try:
        from handnet.search import study as S
        from handnet.search.results import leaderboard
        from handnet.search.workers import search
    except ImportError as e:
        raise needs_search_extra(e) from None
    from handnet.search.space import DEFAULT_SPACE, load_space

    cfg = S.SearchConfig(
        study=args.study,
        storage=args.storage or "",
        trials=args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        jobs=args.jobs,
        sampler_seed=args.sampler_seed,
        out=args.out,
        progress=not args.quiet,
    )
    if args.summary:
        study = S.load_study(cfg)
        _search_summary(study, cfg, args)
        return 0
    space = load_space(args.space) if args.space else DEFAULT_SPACE
    given = {**config_values(args), "epochs": args.epochs}
    with flag_errors(given):
        base = TrainConfig.from_dict(given, where="flags")
    try:
        study = search(cfg, space, base, data_dir=args.data_dir, mirror=args.mirror)
    except KeyboardInterrupt:
        study = S.load_study(cfg)
        print(leaderboard(study, cfg.study_dir, top=args.top))
        print(
            f"handnet search: interrupted; run the same command to resume study {cfg.study!r}",
            file=sys.stderr,
        )
        return 130
    _search_summary(study, cfg, args)
    return 0
