"""The ``handnet`` command: subcommands that parse flags into configs and call the library.

User errors (bad flags, bad files, a diverged run) print one line on stderr and exit with 2,
without a traceback. SIGINT (Ctrl-C) or SIGTERM during training finishes the step, writes a
checkpoint, prints the resume command and exits with 130 or 143.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from handnet.errors import ConfigError, HandnetError, RunInterrupted
from handnet.train import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULTS = TrainConfig()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``handnet train: --lr: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    return v


def _sizes(s: str) -> tuple[int, ...]:
    """'1024' or '800,800' -> (1024,) or (800, 800)."""
    try:
        return tuple(int(p) for p in s.replace(" ", "").split(",") if p)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 1024 or 800,800, got {s!r}"
        ) from None


# (flag, config field, type, help). Defaults are shown from TrainConfig, the single source.
_TRAIN_FLAGS: list[tuple[str, str, Any, str]] = [
    (
        "--dataset",
        "dataset",
        str,
        "dataset name (mnist, fashion-mnist, kmnist) or a path (.npz, .mat, IDX dir)",
    ),
    ("--hidden-sizes", "hidden_sizes", _sizes, "hidden layer widths, comma-separated"),
    ("--activation", "activation", str, "hidden activation: tanh or relu"),
    ("--dropout", "dropout", float, "drop probability after each hidden layer, in [0, 1)"),
    ("--epochs", "epochs", _positive_int, "passes over the training split"),
    ("--batch-size", "batch_size", _positive_int, "minibatch size"),
    ("--lr", "lr", float, "peak learning rate (after warmup)"),
    ("--min-lr", "min_lr", float, "learning rate at the end of the cosine"),
    ("--warmup-epochs", "warmup_epochs", float, "linear warmup length in epochs"),
    ("--momentum", "momentum", float, "heavy-ball momentum coefficient"),
    ("--weight-decay", "weight_decay", float, "L2 coefficient lambda in (lambda/2)||W||^2"),
    ("--val-size", "val_size", _positive_int, "validation images split from the training set"),
    (
        "--seed",
        "seed",
        _positive_int,
        "seed of every random stream (init, split, shuffle, dropout)",
    ),
    ("--aug-rotate", "aug_rotate", float, "random rotation range in degrees, [-r, r]"),
    ("--aug-scale", "aug_scale", float, "random scaling range, factor in [1-s, 1+s] per axis"),
    ("--aug-shift", "aug_shift", float, "random translation range in pixels, [-t, t] per axis"),
    ("--aug-shear", "aug_shear", float, "random shear range in degrees, [-a, a]"),
    ("--aug-elastic-alpha", "aug_elastic_alpha", float, "elastic distortion strength (0: off)"),
    ("--aug-elastic-sigma", "aug_elastic_sigma", float, "elastic distortion smoothness (pixels)"),
    (
        "--augment-copies",
        "augment_copies",
        _positive_int,
        "append K augmented copies once instead of augmenting every batch",
    ),
    ("--finetune-ridge", "finetune_ridge", float, "ridge of the least-squares output layer"),
]


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model and save it under runs/",
        description="Train an MLP. Precedence: defaults < --config FILE.toml < flags.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for flag, name, typ, help_ in _TRAIN_FLAGS:
        default = getattr(DEFAULTS, name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        p.add_argument(
            flag, dest=name, type=typ, default=argparse.SUPPRESS, help=f"{help_} (default: {shown})"
        )
    p.add_argument(
        "--nesterov",
        dest="nesterov",
        action="store_true",
        default=argparse.SUPPRESS,
        help="use Nesterov momentum (default: off)",
    )
    p.add_argument(
        "--aug-thread",
        dest="aug_thread",
        action="store_true",
        default=argparse.SUPPRESS,
        help="augment the next batch in a background thread (pays only with a free core)",
    )
    p.add_argument(
        "--finetune",
        dest="finetune",
        action="store_true",
        default=argparse.SUPPRESS,
        help="refit the output layer by least squares after training, if validation agrees",
    )
    p.add_argument(
        "--config", type=Path, help="a TOML recipe with the same keys as the flags (underscores)"
    )
    p.add_argument(
        "--out", type=Path, default=Path("runs"), help="where run directories are created"
    )
    p.add_argument("--data-dir", type=Path, help="where to look for named datasets first")
    p.add_argument("--mirror", help="base URL to download named datasets from, instead of upstream")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=1,
        metavar="N",
        help="write RUN_DIR/checkpoint.safetensors every N epochs (0: only on SIGINT/SIGTERM)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run from its checkpoint, with its saved settings",
    )
    p.set_defaults(func=cmd_train)


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    where = str(args.config) if args.config else "flags"
    values.update(
        {name: getattr(args, name) for _, name, _, _ in _TRAIN_FLAGS if hasattr(args, name)}
    )
    for switch in ("nesterov", "finetune", "aug_thread"):
        if hasattr(args, switch):
            values[switch] = True
    return TrainConfig.from_dict(values, where=where)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def cmd_train(args: argparse.Namespace) -> int:
    from handnet.interrupt import StopSignals
    from handnet.runs import resume_run, train_run

    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every={args.checkpoint_every}: must be >= 0")
    if args.resume is not None:
        given = [f for f, name, _, _ in _TRAIN_FLAGS if hasattr(args, name)]
        given += ["--nesterov"] * hasattr(args, "nesterov") + ["--config"] * bool(args.config)
        if given:
            raise ConfigError(
                f"--resume continues a run with its saved settings; drop {', '.join(given)}"
            )
    with StopSignals() as stop:
        if args.resume is not None:
            res = resume_run(
                args.resume,
                data_dir=args.data_dir,
                mirror=args.mirror,
                progress=not args.quiet,
                checkpoint_every=args.checkpoint_every,
                stop=stop,
            )
        else:
            res = train_run(
                resolve_config(args),
                out=args.out,
                data_dir=args.data_dir,
                mirror=args.mirror,
                progress=not args.quiet,
                checkpoint_every=args.checkpoint_every,
                stop=stop,
            )
    m = res.metrics
    if args.json:
        _print_json(
            {k: v for k, v in m.items() if k != "test_confusion"} | {"model": str(res.model_path)}
        )
    else:
        val = f"{m['val_accuracy']:.2%}" if m["val_accuracy"] is not None else "n/a"
        print(
            f"test accuracy {m['test_accuracy']:.2%} (validation {val}) after {m['epochs']} epochs, "
            f"{m['train_seconds']:.1f}s of training\nmodel: {res.model_path}"
        )
    return 0


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate", help="accuracy, loss, per-class accuracy and confusion matrix on a test set"
    )
    p.add_argument(
        "model",
        type=Path,
        nargs="+",
        help="a .safetensors model file; several make a committee that averages probabilities",
    )
    p.add_argument(
        "--dataset", help="dataset name or path (default: the one the model was trained on)"
    )
    p.add_argument("--data-dir", type=Path, help="where to look for named datasets first")
    p.add_argument("--mirror", help="base URL to download named datasets from")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from handnet.committee import check_compatible, committee_logits
    from handnet.data import load_splits
    from handnet.errors import DatasetError
    from handnet.io import load_model
    from handnet.train import evaluate_logits

    members = [load_model(path) for path in args.model]
    names = [str(path) for path in args.model]
    check_compatible(members, names)
    clf = members[0]
    source = args.dataset or str(clf.meta.get("dataset", "mnist"))
    splits, _ = load_splits(source, args.data_dir, args.mirror)
    y = splits.y_test
    if y.max() >= len(clf.classes):
        raise DatasetError(
            f"{source}: labels go up to {y.max()}, the model knows {len(clf.classes)} classes"
        )
    if len(members) == 1:
        result = evaluate_logits(clf.net.predict_logits(clf.prepare(splits.X_test)), y)
    else:
        result = evaluate_logits(committee_logits(members, splits.X_test), y)
    args.model = args.model[0] if len(args.model) == 1 else f"committee of {len(members)}"
    if args.json:
        _print_json(
            {
                "model": names[0] if len(names) == 1 else names,
                "dataset": source,
                "n": len(y),
                **result.to_dict(),
            }
        )
        return 0
    print(f"{args.model}  on {source} test ({len(y)} images)")
    print(f"accuracy {result.accuracy:.2%}   loss {result.loss:.4f}")
    print("per-class accuracy:")
    for name, acc in zip(clf.classes, result.per_class_accuracy):
        print(f"  {name:>12}  {acc:.2%}")
    print("confusion matrix (rows: true, columns: predicted):")
    width = max(5, len(str(result.confusion.max())) + 1)
    print(" " * 6 + "".join(f"{i:>{width}}" for i in range(len(clf.classes))))
    for i, row in enumerate(result.confusion):
        print(f"{i:>5} " + "".join(f"{v:>{width}}" for v in row))
    return 0


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="print a model file's metadata")
    p.add_argument("model", type=Path, help="a .safetensors model file")
    p.add_argument("--json", action="store_true", help="print the whole metadata as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from handnet.io import load_model

    clf = load_model(args.model)
    meta = clf.meta
    if args.json:
        _print_json(meta)
        return 0
    n_params = sum(p.size for p in clf.net.parameters().values())
    metrics = meta.get("metrics", {})
    lines = [
        f"model        {args.model}",
        f"network      {clf.net!r}",
        f"parameters   {n_params:,}",
        f"classes      {', '.join(clf.classes)}",
        f"dataset      {meta.get('dataset', '?')}  (normalization mean {clf.norm.mean:.4f}, std {clf.norm.std:.4f})",
        f"created      {meta.get('created', '?')} with handnet {meta.get('handnet_version', '?')}",
    ]
    if metrics:
        lines.append(
            f"metrics      validation {metrics.get('val_accuracy') or float('nan'):.2%}, "
            f"test {metrics.get('test_accuracy', float('nan')):.2%}"
        )
    if "config" in meta:
        lines.append("config       " + ", ".join(f"{k}={v}" for k, v in meta["config"].items()))
    if meta.get("history"):
        lines.append(f"history      {len(meta['history'])} epochs")
    print("\n".join(lines))
    return 0


def _add_predict(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="predict the digit in image files (PNG, JPEG, BMP; any size, dark or light ink)",
        description="Each image is made MNIST-like (grayscale, ink on black, cropped, fitted to "
        "20x20, centred by mass in 28x28) and classified. A file that cannot be read or holds no "
        "ink gets a one-line error; the others are still predicted, and the exit code is 1.",
    )
    p.add_argument("model", type=Path, help="a .safetensors model file")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    p.add_argument(
        "--top", type=_positive_int, default=3, help="how many classes to show (default: 3)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list with every result")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from handnet.io import load_model
    from handnet.predict import predict_images
    from handnet.preprocess import ImageError

    clf = load_model(args.model)
    if not 1 <= args.top <= len(clf.classes):
        raise ConfigError(f"--top {args.top}: must be in [1, {len(clf.classes)}]")
    results: list[dict[str, Any]] = []
    failed = 0
    for path in args.images:
        try:
            (pred,) = predict_images(clf, [path])
        except ImageError as e:
            failed += 1
            print(f"handnet predict: error: {e}", file=sys.stderr)
            results.append({"file": str(path), "error": str(e)})
            continue
        results.append(pred.to_dict(args.top))
        if not args.json:
            shown = ", ".join(f"{c} {p:.1%}" for c, p in pred.top(args.top))
            print(f"{path}: {pred.label}  ({shown})")
    if args.json:
        _print_json(results)
    return 1 if failed else 0


def _add_serve(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page to draw digits and watch the model answer, plus a JSON API",
        description="Serve the draw-a-digit page at / and the JSON API at /api (docs at /docs). "
        "Needs the 'serve' extra: pip install 'handnet[serve]'.",
    )
    p.add_argument("model", type=Path, help="a .safetensors model file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--max-bytes",
        type=_positive_int,
        default=2_000_000,
        help="largest request body accepted, in bytes (default: 2000000)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from handnet.serve import serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be in [0, 65535]")
    if args.max_bytes < 1:
        raise ConfigError(f"--max-bytes {args.max_bytes}: must be >= 1")
    serve(args.model, host=args.host, port=args.port, max_bytes=args.max_bytes)
    return 0


def _add_run_source(p: Any, required: bool = True) -> None:
    p.add_argument(
        "run",
        type=Path,
        nargs=None if required else "?",
        help="a run directory or a .safetensors model file",
    )
    p.add_argument(
        "--dataset",
        help="draw test-set plots on this dataset name or path (default: the model's own)",
    )
    p.add_argument("--data-dir", type=Path, help="where to look for named datasets first")
    p.add_argument("--mirror", help="base URL to download named datasets from")
    p.add_argument(
        "--out", type=Path, help="output directory (default: the directory of the model file)"
    )


def _add_plot(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a run's plots (curves, weights, confusion, mistakes) as PNGs",
        description="Draw the plots of a run again from its model file's stored history and "
        "weights; test-set plots are recomputed on the dataset's test split.",
    )
    _add_run_source(p)
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from handnet import run_plots

    view = run_plots.load_view(args.run, args.dataset, args.data_dir, args.mirror)
    out = args.out or run_plots.resolve_model(args.run).parent
    for path in run_plots.write(run_plots.draw(view), out):
        print(path)
    return 0


def _add_report(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's (or a search study's) self-contained report.html",
        description="Write one self-contained HTML page for a run: plots embedded, no network. "
        "With --study, the page of a search study instead: leaderboard, search plots, and a link "
        "to the best run's own page.",
    )
    _add_run_source(p, required=False)
    p.add_argument("--study", help="a search study's name (see handnet search)")
    p.add_argument("--storage", help="the study's storage URL (default: handnet search's)")
    p.add_argument(
        "--runs", type=Path, default=Path("runs"), help="where the search wrote its studies"
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from handnet import report, run_plots

    if args.study is not None:
        if args.run is not None:
            raise ConfigError("give a run or --study, not both")
        print(_study_report(args))
        return 0
    if args.run is None:
        raise ConfigError("give a run directory or model file, or --study NAME")
    view = run_plots.load_view(args.run, args.dataset, args.data_dir, args.mirror)
    out = args.out or run_plots.resolve_model(args.run).parent
    path = report.write_run_report(view, run_plots.draw(view), Path(out) / report.REPORT_NAME)
    print(path)
    return 0


def _study_report(args: argparse.Namespace) -> Path:
    try:
        from handnet import search as S
        from handnet.search_report import write_study_report
    except ImportError as e:
        raise ConfigError(f"needs the search extra: pip install 'handnet[search]' ({e})") from None
    cfg = S.SearchConfig(study=args.study, storage=args.storage or S.DEFAULT_STORAGE, out=args.runs)
    study = S.open_study(cfg, S.open_storage(cfg.storage), create=False)
    return write_study_report(study, cfg.study_dir, data_dir=args.data_dir, mirror=args.mirror)


def _add_search(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="hyperparameter search on Optuna (resumable, parallel, multi-machine, pruned)",
        description="Search hyperparameters. Re-running the same command resumes the study; "
        "several processes (--jobs, or other machines on one --storage) share it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--trials",
        type=_positive_int,
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
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs per trial")
    p.add_argument("--study", default="search", help="study name; its files go to OUT/STUDY/")
    p.add_argument(
        "--storage",
        default="sqlite:///runs/search.db",
        help="database URL: sqlite:///FILE or postgresql://USER:PW@HOST/DB",
    )
    p.add_argument("--jobs", type=_positive_int, default=1, help="worker processes on this machine")
    p.add_argument(
        "--sampler-seed", type=_positive_int, help="seed the sampler (default: fresh entropy)"
    )
    p.add_argument("--dataset", default=DEFAULTS.dataset, help="dataset name or path")
    p.add_argument(
        "--val-size",
        type=_positive_int,
        default=DEFAULTS.val_size,
        help="validation images split from the training set",
    )
    p.add_argument(
        "--seed",
        type=_positive_int,
        default=DEFAULTS.seed,
        help="training seed shared by all trials (split, init, shuffle, dropout)",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="where OUT/STUDY/ is created")
    p.add_argument("--data-dir", type=Path, help="where to look for named datasets first")
    p.add_argument("--mirror", help="base URL to download named datasets from")
    p.add_argument(
        "--summary",
        action="store_true",
        help="run nothing: print the leaderboard, write plots and the best model",
    )
    p.add_argument("--top", type=_positive_int, default=10, help="rows of the leaderboard")
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    p.set_defaults(func=cmd_search)


def _search_summary(study: Any, cfg: Any, args: argparse.Namespace) -> None:
    from handnet.search_plots import write_plots
    from handnet.search_results import best_line, finalize_best, leaderboard

    print(leaderboard(study, top=args.top))
    record = finalize_best(study, cfg.study_dir, data_dir=args.data_dir, mirror=args.mirror)
    print(best_line(record))
    for path in write_plots(study, cfg.study_dir):
        print(f"plot: {path}")


def cmd_search(args: argparse.Namespace) -> int:
    try:
        from handnet import search as S
        from handnet.search_results import leaderboard
    except ImportError as e:
        raise ConfigError(f"needs the search extra: pip install 'handnet[search]' ({e})") from None
    from handnet.search_space import DEFAULT_SPACE, load_space

    cfg = S.SearchConfig(
        study=args.study,
        storage=args.storage,
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
        study = S.open_study(cfg, S.open_storage(cfg.storage), create=False)
        _search_summary(study, cfg, args)
        return 0
    space = load_space(args.space) if args.space else DEFAULT_SPACE
    base = TrainConfig.from_dict(
        {
            "dataset": args.dataset,
            "epochs": args.epochs,
            "val_size": args.val_size,
            "seed": args.seed,
        },
        where="flags",
    )
    try:
        study = S.search(cfg, space, base, data_dir=args.data_dir, mirror=args.mirror)
    except KeyboardInterrupt:
        study = S.open_study(cfg, S.open_storage(cfg.storage), create=False)
        print(leaderboard(study, top=args.top))
        print(
            f"handnet search: interrupted; run the same command to resume study {cfg.study!r}",
            file=sys.stderr,
        )
        return 130
    _search_summary(study, cfg, args)
    return 0


def _add_augment_preview(sub: Any) -> None:
    p = sub.add_parser(
        "augment-preview",
        help="draw original and augmented digits side by side into a PNG",
        description="Each row of originals is followed by --versions rows of random transforms of "
        "it. The transforms come from --config and the --aug-* flags; with none, Simard's elastic "
        "distortions (alpha 34, sigma 4).",
    )
    p.add_argument("--n", type=_positive_int, default=64, help="how many training digits")
    p.add_argument("--versions", type=_positive_int, default=2, help="augmented rows per row")
    p.add_argument("--out", type=Path, required=True, help="the PNG file to write")
    p.add_argument("--config", type=Path, help="a TOML recipe whose aug_* settings to use")
    for flag, name, typ, help_ in _TRAIN_FLAGS:
        if name.startswith("aug_") or name in ("dataset", "seed"):
            p.add_argument(flag, dest=name, type=typ, default=argparse.SUPPRESS, help=help_)
    p.add_argument("--data-dir", type=Path, help="where to look for named datasets first")
    p.add_argument("--mirror", help="base URL to download named datasets from")
    p.set_defaults(func=cmd_augment_preview)


def cmd_augment_preview(args: argparse.Namespace) -> int:
    import numpy as np

    from handnet.augment import Augmenter, AugmentSpec
    from handnet.data import load_splits
    from handnet.data.split import to_unit
    from handnet.preview import preview_grid, write_preview

    if args.n < 1 or args.versions < 1:
        raise ConfigError("--n and --versions must be >= 1")
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k.startswith("aug_")})
    if "seed" in args:
        values["seed"] = args.seed
    if "dataset" in args:
        values["dataset"] = args.dataset
    cfg = TrainConfig.from_dict(values, where=str(args.config or "flags"))
    spec = cfg.augment_spec()
    if not spec.active:
        spec = AugmentSpec(elastic_alpha=34.0, elastic_sigma=4.0)
    splits, _ = load_splits(cfg.dataset, args.data_dir, args.mirror)
    X = to_unit(splits.X_train[: args.n], cfg.dataset)  # (n, D) in [0, 1]; black is 0
    shape = tuple(int(d) for d in splits.X_train.shape[1:])
    aug = Augmenter(spec, shape, np.random.default_rng(cfg.seed), fill=0.0)
    versions = [aug(X).reshape(-1, *shape) for _ in range(args.versions)]
    path = write_preview(args.out, preview_grid(X.reshape(-1, *shape), versions))
    print(f"{path}: {args.n} digits, {args.versions} augmented versions each ({spec})")
    return 0


def _add_finetune(sub: Any) -> None:
    p = sub.add_parser(
        "finetune",
        help="refit a model's output layer by least squares; write a new model file",
        description="Solve W_out = (sum x x^T + ridge I)^-1 sum x y^T over the model's training "
        "split (re-derived from its config's seed and val_size), x the last hidden activation with "
        "a 1 appended, y one-hot. The new layer is kept only if validation accuracy does not drop.",
    )
    p.add_argument("model", type=Path, help="a .safetensors model file")
    p.add_argument("--ridge", type=float, default=1.0, help="ridge added to sum x x^T")
    p.add_argument("--out", type=Path, help="output model file (default: MODEL-ft.safetensors)")
    p.add_argument("--data-dir", type=Path, help="where to look for named datasets first")
    p.add_argument("--mirror", help="base URL to download named datasets from")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    import math

    from handnet.data import load_dataset
    from handnet.finetune import finetune_output
    from handnet.io import load_model, save_model
    from handnet.train import Rngs, evaluate

    if not (args.ridge >= 0 and math.isfinite(args.ridge)):
        raise ConfigError(f"--ridge: must be >= 0, got {args.ridge}")
    clf = load_model(args.model)
    cfg = TrainConfig.from_dict(dict(clf.meta.get("config", {})), where=f"{args.model} (config)")
    data = load_dataset(
        str(clf.meta.get("dataset", cfg.dataset)),
        rng=Rngs.from_seed(cfg.seed).split,
        val_size=cfg.val_size,
        data_dir=args.data_dir,
        mirror=args.mirror,
    )
    res = finetune_output(
        clf.net, data.X_train, data.y_train, data.X_val, data.y_val, ridge=args.ridge
    )
    test = evaluate(clf.net, data.X_test, data.y_test)
    clf.meta = {
        **clf.meta,
        "finetune": res.to_dict(),
        "metrics": {
            **clf.meta.get("metrics", {}),
            "val_accuracy": res.val_after if res.kept else res.val_before,
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
        },
    }
    out = args.out or args.model.with_name(args.model.stem + "-ft.safetensors")
    save_model(clf, out)
    if args.json:
        _print_json({**res.to_dict(), "test_accuracy": test.accuracy, "model": str(out)})
    else:
        print(f"{res.message}\ntest accuracy {test.accuracy:.2%}\nmodel: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from handnet.version import __version__

    parser = _Parser(prog="handnet", description="Hand-written NumPy MLPs for MNIST-style data.")
    parser.add_argument("--version", action="version", version=f"handnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_evaluate(sub)
    _add_info(sub)
    _add_predict(sub)
    _add_serve(sub)
    _add_plot(sub)
    _add_report(sub)
    _add_search(sub)
    _add_augment_preview(sub)
    _add_finetune(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RunInterrupted as e:  # a checkpoint was written; the message says how to resume
        print(f"handnet {args.command}: {e}", file=sys.stderr)
        return 128 + e.signum
    except HandnetError as e:
        print(f"handnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
