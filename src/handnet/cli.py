"""The ``handnet`` command: subcommands that parse flags into configs and call the library.

User errors (bad flags, bad files, a diverged run) print one line on stderr and exit with 2,
without a traceback; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from handnet.errors import ConfigError, HandnetError
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
    from handnet.runs import train_run

    cfg = resolve_config(args)
    res = train_run(
        cfg, out=args.out, data_dir=args.data_dir, mirror=args.mirror, progress=not args.quiet
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
    _add_augment_preview(sub)
    _add_finetune(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HandnetError as e:
        print(f"handnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
