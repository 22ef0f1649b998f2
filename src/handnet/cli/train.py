"""``handnet train`` (every hyperparameter a flag, recipes, resume), ``augment-preview`` and
``finetune``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from handnet.cli.common import (
    DEFAULTS,
    FIELDS,
    MODEL_HELP,
    DefaultsHelp,
    add_config_flags,
    add_data_source_flags,
    config_flags_given,
    config_values,
    flag,
    flag_errors,
    print_json,
    shown,
    whole_number,
)
from handnet.data.augment import AugmentSpec
from handnet.errors import ConfigError
from handnet.train.config import GROUPS, TrainConfig, load_config_file

# The settings augment-preview draws with: the digits, their shape normalization, the transforms.
PREVIEW_SETTINGS = (
    "dataset",
    "seed",
    "deskew",
    "width_normalize",
    *(f"aug_{f.name}" for f in dataclasses.fields(AugmentSpec)),
)
MAX_PREVIEW_DIGITS, MAX_PREVIEW_VERSIONS = 1024, 16  # augment-preview's grid: 128 rows of 8 at most


def add_train(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "train",
        help="train a model and save it under runs/",
        usage="%(prog)s [options]",
        description="Train an MLP and write its run directory under --out. Each setting comes "
        "from its flag, else from --config FILE.toml, else from the default shown.",
        formatter_class=DefaultsHelp,
    )
    groups = {title: p.add_argument_group(title) for title in GROUPS}
    for title, group in groups.items():
        add_config_flags(group, [n for n, f in FIELDS.items() if f.metadata["group"] == title])
    add_data_source_flags(groups["data"])
    runs = groups["output and runs"]
    runs.add_argument(
        "--config",
        type=Path,
        metavar="FILE.toml",
        help="a recipe: the settings above as TOML keys (underscores for dashes); flags win",
    )
    runs.add_argument(
        "--out",
        type=Path,
        default=Path("runs"),
        metavar="DIR",
        help="where run directories are created",
    )
    runs.add_argument(
        "--checkpoint-every",
        type=whole_number,
        default=1,
        metavar="N",
        help="write RUN_DIR/checkpoint.safetensors every N epochs (0: only on SIGINT/SIGTERM)",
    )
    runs.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run from its checkpoint, with its saved settings",
    )
    runs.add_argument(
        "--json", action="store_true", help="print the final metrics as JSON on stdout"
    )
    runs.add_argument(
        "--quiet",
        action="store_true",
        help="nothing on stderr while training: no progress bar (drawn only when stderr is a "
        "terminal), no line per epoch, no finetune line; the result still prints, and so does "
        "a warning about a setting that spoils the run",
    )
    p.set_defaults(func=cmd_train)
    return p


def settings_given(args: argparse.Namespace) -> list[str]:
    """The flags on the command line that set training settings, as typed."""
    return config_flags_given(args) + ["--config"] * bool(args.config)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    where = str(args.config) if args.config else "flags"
    values.update(config_values(args))
    return TrainConfig.from_dict(values, where=where)


def cmd_train(args: argparse.Namespace) -> int:
    from handnet.report import publish
    from handnet.train.interrupt import StopSignals
    from handnet.train.runs import resume_run, train_run

    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every {args.checkpoint_every}: must be at least 0")
    if args.resume is not None:
        given = settings_given(args)
        if given:
            raise ConfigError(
                f"--resume continues a run with its saved settings; drop {', '.join(given)}"
            )
    published: list[Path] = []

    def keep(*run: Any) -> None:  # publish, and keep what it wrote to say where it went
        published.extend(publish(*run))

    with StopSignals() as stop, flag_errors(config_values(args)):
        if args.resume is not None:
            res = resume_run(
                args.resume,
                data_dir=args.data_dir,
                mirror=args.mirror,
                progress=not args.quiet,
                checkpoint_every=args.checkpoint_every,
                stop=stop,
                publish=keep,
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
                publish=keep,
            )
    m = res.metrics
    report = next((str(p) for p in published if p.suffix == ".html"), None)
    where = {"run_dir": str(res.run_dir), "report": report, "model": str(res.model_path)}
    if args.json:
        print_json({k: v for k, v in m.items() if k != "test_confusion"} | where)
    else:
        val = f"{m['val_accuracy']:.2%}" if m["val_accuracy"] is not None else "n/a"
        epochs = f"{m['epochs']} epoch" + "s" * (m["epochs"] != 1)
        plots = sum(p.suffix == ".png" for p in published)
        print(
            f"test accuracy {m['test_accuracy']:.2%} (validation {val}) after {epochs}, "
            f"{m['train_seconds']:.1f}s of training\n"
            f"run:    {res.run_dir}  ({plots} plots, history.csv, metrics.json, config.toml)\n"
            f"report: {report}\n"
            f"model:  {res.model_path}"
        )
    return 0


def add_augment_preview(sub: Any) -> None:
    p = sub.add_parser(
        "augment-preview",
        help="draw original and augmented digits side by side into a PNG",
        description="Each row of originals is followed by --versions rows of random transforms of "
        "it. The transforms come from --config and the --aug-* flags; with none, Simard's elastic "
        "distortions (alpha 34, sigma 4).",
    )
    p.add_argument(
        "--n",
        type=whole_number,
        default=64,
        help=f"how many training digits (1-{MAX_PREVIEW_DIGITS})",
    )
    p.add_argument(
        "--versions",
        type=whole_number,
        default=2,
        help=f"augmented rows per row (1-{MAX_PREVIEW_VERSIONS})",
    )
    p.add_argument("--out", type=Path, required=True, help="the PNG file to write")
    p.add_argument(
        "--config",
        type=Path,
        help="a TOML recipe whose aug_* (and deskew, width_normalize) settings to use",
    )
    add_config_flags(p, PREVIEW_SETTINGS, defaults=False)
    add_data_source_flags(p)
    p.set_defaults(func=cmd_augment_preview)


def cmd_augment_preview(args: argparse.Namespace) -> int:
    import numpy as np

    from handnet.data import load_splits
    from handnet.data.augment import Augmenter
    from handnet.data.split import to_unit
    from handnet.report.preview import preview_grid, write_preview

    # Past these the grid is too large to look at (and Pillow refuses to open it).
    if not 1 <= args.n <= MAX_PREVIEW_DIGITS:
        raise ConfigError(f"--n {args.n}: must be in [1, {MAX_PREVIEW_DIGITS}]")
    if not 1 <= args.versions <= MAX_PREVIEW_VERSIONS:
        raise ConfigError(f"--versions {args.versions}: must be in [1, {MAX_PREVIEW_VERSIONS}]")
    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out {args.out}: the preview is a PNG; give a name ending in .png")
    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    given = config_values(args)
    aug_flags = [name for name in given if name.startswith("aug_")]
    values.update(given)
    with flag_errors(given):
        cfg = TrainConfig.from_dict(values, where=str(args.config or "flags"))
    if args.config or aug_flags:
        spec = cfg.augment_spec()
        if not spec.active:
            where = args.config or " ".join(f"{flag(n)} {shown(given[n])}" for n in aug_flags)
            raise ConfigError(f"{where}: every augmentation is off, so there is nothing to draw")
    else:  # neither a recipe nor --aug-* flags: Simard 2003's distortions, not train's defaults
        spec = AugmentSpec(elastic_alpha=34.0, elastic_sigma=4.0)
    splits, _ = load_splits(cfg.dataset, args.data_dir, args.mirror)
    shape = tuple(int(d) for d in splits.X_train.shape[1:])
    raw = cfg.geometry.apply(splits.X_train[: args.n], shape)  # what training would see
    n = len(raw)  # fewer than --n if the training set is smaller
    X = to_unit(raw, cfg.dataset)  # (n, D) in [0, 1]; black is 0
    aug = Augmenter(spec, shape, np.random.default_rng(cfg.seed), fill=0.0)
    versions = [aug(X).reshape(-1, *shape) for _ in range(args.versions)]
    path = write_preview(args.out, preview_grid(X.reshape(-1, *shape), versions))
    shaped = f" ({cfg.geometry.describe()})" if cfg.geometry else ""
    print(f"{path}: {n} digits{shaped}, {args.versions} augmented versions each ({spec})")
    return 0


def add_finetune(sub: Any) -> None:
    p = sub.add_parser(
        "finetune",
        help="refit a model's output layer by least squares; write a new model file",
        description="Solve W_out = (sum x x^T + ridge I)^-1 sum x y^T over the model's training "
        "split (found again from its stored config: seed, split_seed, val_size), x the last hidden "
        "activation with a 1 appended, y one-hot. The new layer is kept only if validation "
        "accuracy does not drop.",
        formatter_class=DefaultsHelp,
    )
    p.add_argument("model", type=Path, help=MODEL_HELP)
    ridge = FIELDS["finetune_ridge"]  # the setting of `handnet train --finetune`
    p.add_argument(
        "--ridge",
        type=float,
        default=DEFAULTS.finetune_ridge,
        metavar=ridge.metadata["metavar"],
        help=ridge.metadata["help"],
    )
    p.add_argument("--out", type=Path, help="output model file (default: MODEL-ft.safetensors)")
    add_data_source_flags(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    import math

    from handnet.nn.finetune import finetune_output
    from handnet.train.config import Rngs
    from handnet.train.fit import evaluate
    from handnet.train.heldout import data_source, run_config
    from handnet.train.modelfile import load_model, save_model
    from handnet.train.rundir import run_model
    from handnet.train.runs import load_run_data

    if not (args.ridge >= 0 and math.isfinite(args.ridge)):
        raise ConfigError(f"--ridge {args.ridge}: must be at least 0")
    model = run_model(args.model)
    clf = load_model(model)
    cfg = run_config(clf, str(model))
    data = load_run_data(
        cfg, Rngs.for_config(cfg).split, *data_source(clf, args.data_dir, args.mirror)
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
    # A discarded refit leaves the model as it was: a copy of it would only join a committee twice.
    out = (args.out or model.with_name(model.stem + "-ft.safetensors")) if res.kept else None
    if out is not None:
        save_model(clf, out)
    if args.json:
        print_json({**res.to_dict(), "test_accuracy": test.accuracy, "model": out and str(out)})
    else:
        written = f"model: {out}" if out else f"no new file: {model} stays as it is"
        print(f"{res.message}\ntest accuracy {test.accuracy:.2%}\n{written}")
    return 0
