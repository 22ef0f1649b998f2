"""Using a trained model: ``evaluate`` (one model or a committee), ``info``, ``predict``, ``serve``."""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handnet.cli.common import (
    MODEL_HELP,
    add_data_source_flags,
    add_tta_flags,
    dataset_name,
    percent,
    print_json,
    tta_views,
    whole_number,
)
from handnet.errors import ConfigError, install_extra

if TYPE_CHECKING:
    import numpy as np

    from handnet.train.classifier import Classifier


def add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, loss, per-class accuracy and confusion matrix on the test set (or on "
        "the validation images the models held out)",
    )
    p.add_argument(
        "model",
        type=Path,
        nargs="+",
        help=f"{MODEL_HELP}; several make a committee that averages probabilities",
    )
    p.add_argument(
        "--dataset",
        type=dataset_name,
        help="dataset name or path (default: the one the model was trained on)",
    )
    add_data_source_flags(p)
    p.add_argument(
        "--split",
        choices=("test", "validation", "all"),
        default="test",
        help="the test set, or the validation images the models held out in training, for "
        "choosing a committee without the test set; its members must have held out the same "
        "ones (train them with one --split-seed); or all of a --dataset the models never saw, "
        "such as a folder of your own photos (default: test)",
    )
    add_tta_flags(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from handnet.data import load_splits, model_labels
    from handnet.train.committee import as_logits, check_compatible, committee_votes
    from handnet.train.fit import evaluate_logits
    from handnet.train.heldout import data_source, held_out_images
    from handnet.train.modelfile import load_model
    from handnet.train.rundir import run_model
    from handnet.train.tta import check_augmented

    views, rng = tta_views(args)
    paths = [run_model(path) for path in args.model]
    members = [load_model(path) for path in paths]
    names = [str(path) for path in paths]
    check_compatible(members, names)
    if views:
        check_augmented(members, names)
    clf = members[0]
    data_dir, mirror = data_source(clf, args.data_dir, args.mirror)
    if args.split == "validation":
        if args.dataset:
            raise ConfigError(
                "--dataset: not with --split validation, whose images come from the dataset "
                "the models were trained on"
            )
        source, X, y = held_out_images(members, names, data_dir, mirror)
    else:
        source = args.dataset or str(clf.meta.get("dataset", "mnist"))
        splits, classes = load_splits(source, data_dir, mirror)
        X, y = splits.every_image() if args.split == "all" else (splits.X_test, splits.y_test)
        y = model_labels(y, classes, clf.classes)  # an image folder's classes, by name
        warn_other_classes(clf, source, classes)
    clf.check_data(source, X, y)
    if len(members) == 1 and not views:
        logits = clf.net.predict_logits(clf.prepare(X))
        answers = logits.argmax(axis=1)[None]
    else:
        proba, answers = committee_votes(members, X, views, rng, progress=True)
        logits = as_logits(proba)
    result = evaluate_logits(logits, y)
    member_accuracy = (answers == y).mean(axis=1).tolist()
    args.model = names[0] if len(names) == 1 else f"committee of {len(members)}"
    tta = {"views": views, "seed": args.tta_seed} if views else None
    if args.json:
        print_json(
            {
                "model": names[0] if len(names) == 1 else names,
                "dataset": source,
                "split": args.split,
                "n": len(y),
                "tta": tta,
                **result.to_dict(),
                "member_accuracy": member_accuracy,
            }
        )
        return 0
    with_tta = f", each with {views} augmented copies (--tta-seed {args.tta_seed})" if tta else ""
    print(f"{args.model}  on {source} {args.split} ({len(y)} images{with_tta})")
    print(f"accuracy {result.accuracy:.2%}   loss {result.loss:.4f}")
    if len(members) > 1:
        print(
            f"members {min(member_accuracy):.2%} to {max(member_accuracy):.2%}, "
            f"mean {sum(member_accuracy) / len(members):.2%}"
        )
    print("per-class accuracy:")
    for name, acc in zip(clf.classes, result.per_class_accuracy):
        print(f"  {name:>12}  {acc:.2%}")
    print("confusion matrix (rows: true, columns: predicted):")
    short = max(map(len, clf.classes)) <= 4  # digits; longer names (Fashion-MNIST) get numbers
    labels = clf.classes if short else [str(i) for i in range(len(clf.classes))]
    if not short:
        print("  " + ", ".join(f"{i} = {name}" for i, name in enumerate(clf.classes)))
    width = max(5, len(str(result.confusion.max())) + 1)
    print(" " * 6 + "".join(f"{c:>{width}}" for c in labels))
    for c, row in zip(labels, result.confusion):
        print(f"{c:>5} " + "".join(f"{v:>{width}}" for v in row))
    return 0


def warn_other_classes(clf: Classifier, source: str, classes: list[str]) -> None:
    """A warning when a dataset's classes are not the model's, by name (an MNIST model on
    Fashion-MNIST): its accuracy there would count labels that mean other things. A file names
    its classes by number, so it is compared only with a named dataset's model."""
    from handnet.data.registry import DATASETS
    from handnet.train.runs import SettingWarning

    trained_on = str(clf.meta.get("dataset", "?"))
    if source == trained_on or set(classes) <= set(clf.classes):
        return
    if source in DATASETS or trained_on in DATASETS:
        warnings.warn(
            f"dataset={source}: the model was trained on {trained_on}, whose classes "
            f"({few(clf.classes)}) are not these ({few(classes)}); the accuracy compares labels "
            "that mean different things",
            SettingWarning,
            stacklevel=2,
        )


def few(names: list[str]) -> str:
    """``0, 1, ..., 9``: a list of names short enough for a line."""
    return ", ".join(names if len(names) <= 4 else [*names[:2], "...", names[-1]])


def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="print a model file's metadata")
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help="print the whole metadata as JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from handnet.report.settings import settings_in_effect
    from handnet.train.modelfile import load_model
    from handnet.train.rundir import run_model

    path = run_model(args.model)
    clf = load_model(path)
    meta = clf.meta
    if args.json:
        print_json(meta)
        return 0
    n_params = sum(p.size for p in clf.net.parameters().values())
    metrics = meta.get("metrics", {})
    lines = [
        f"model        {path}",
        f"network      {clf.net!r}",
        f"parameters   {n_params:,}",
        f"classes      {', '.join(clf.classes)}",
        f"dataset      {meta.get('dataset', '?')}  ({clf.geometry.describe() + ', ' if clf.geometry else ''}"
        f"normalization mean {clf.norm.mean:.4f}, std {clf.norm.std:.4f})",
        f"created      {meta.get('created', '?')} with handnet {meta.get('handnet_version', '?')}",
    ]
    if metrics:
        val, test = metrics.get("val_accuracy"), metrics.get("test_accuracy")
        lines.append(
            "metrics      validation "
            + ("none (trained with --val-size 0)" if val is None else f"{val:.2%}")
            + ", test "
            + ("?" if test is None else f"{test:.2%}")
        )
    if isinstance(meta.get("config"), dict):  # a table of the settings in effect
        rows = settings_in_effect(meta["config"])
        width = max((len(name) for name, _ in rows), default=0)
        for i, (name, value) in enumerate(rows):
            lines.append(f"{'config' if i == 0 else '':<13}{name:<{width}}  {value}")
    if meta.get("history"):
        lines.append(f"history      {len(meta['history'])} epochs")
    print("\n".join(lines))
    return 0


# What a first argument of predict is named when it is an image, not the model.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


NO_DIGIT = 3  # handnet predict's exit code when a page holds no digit (and every file was read)


def add_predict(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="read the digits, or the number, in image files (PNG, JPEG, BMP; any size, dark or "
        "light ink), or predict the rows of a CSV file",
        description="Each digit in an image is found (the light evened out, touching digits cut "
        "apart), made MNIST-like (grayscale, ink on black, cropped, fitted to 20x20, centred by "
        "mass in 28x28) and classified; the digits read left to right make the number, shown "
        "with each digit's confidence (a single digit: the --top classes). A page with no digit "
        f"answers 'no digit found' and the exit code is {NO_DIGIT}; a file that cannot be read "
        "gets a one-line error, the others are still read, and the exit code is 1. With --csv, "
        "each row of a CSV file (Kaggle's test.csv) is an image, and the answers are written in "
        "Kaggle's submission format, ImageId,Label.",
    )
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("images", type=Path, nargs="*", metavar="IMAGE", help="image files")
    p.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="predict every row of a CSV file instead: the model's pixels (784 for 28x28), "
        "with or without a header and a label column first",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="with --csv: write the submission (ImageId,Label) to FILE, whole or not at all "
        "(default: standard output)",
    )
    p.add_argument(
        "--top",
        type=whole_number,
        default=3,
        help="how many classes to show for an image of one digit (default: 3)",
    )
    add_tta_flags(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON list: for each file its number (a string, or null) and its digits "
        "(label, confidence, box [left, top, right, bottom]); a single digit also has its "
        "label, probability, top and probabilities",
    )
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from handnet.images.numbers import read_number
    from handnet.images.preprocess import ImageError
    from handnet.train.modelfile import load_model
    from handnet.train.rundir import run_model
    from handnet.train.tta import check_augmented

    if args.model.suffix.lower() in IMAGE_SUFFIXES:  # predict four.png MODEL, or predict four.png
        raise ConfigError(
            f"{args.model} is an image; the model comes first: handnet predict MODEL IMAGE..."
        )
    if args.csv and args.images:
        raise ConfigError("--csv: give image files or a CSV file, not both")
    if not args.csv and not args.images:
        raise ConfigError("give one or more image files, or --csv FILE")
    if args.out and not args.csv:
        raise ConfigError("--out: only with --csv (image predictions go to standard output)")
    if args.csv and args.json:
        raise ConfigError("--json: not with --csv, whose answers are CSV")
    views, rng = tta_views(args)
    path = run_model(args.model)
    clf = load_model(path)
    if views:
        check_augmented([clf], [str(path)])  # before any image
    if args.csv:
        return predict_csv(clf, args.csv, args.out, views, rng)
    if not 1 <= args.top <= len(clf.classes):
        raise ConfigError(f"--top {args.top}: must be in [1, {len(clf.classes)}]")
    results: list[dict[str, Any]] = []
    failed = empty = 0
    for path in args.images:
        try:
            # a fresh copy per file: each file's answer does not depend on the files before it
            reading = read_number(clf, path, views=views, rng=copy.deepcopy(rng))
        except ImageError as e:
            failed += 1
            print(f"handnet predict: error: {e}", file=sys.stderr)
            results.append({"file": str(path), "error": str(e)})
            continue
        results.append(reading.to_dict(args.top))
        empty += not reading.digits
        if args.json:
            continue
        if not reading.digits:
            print(f"{path}: no digit found")
        elif len(reading.digits) == 1:
            shown = ", ".join(f"{c} {percent(p)}" for c, p in reading.top(args.top))
            print(f"{path}: {reading.number}  ({shown})")
        else:  # each digit's confidence, left to right
            shown = ", ".join(f"{d.label} {percent(d.confidence)}" for d in reading.digits)
            print(f"{path}: {reading.number}  ({shown})")
    if args.json:
        print_json(results)
    return 1 if failed else NO_DIGIT if empty else 0


def predict_csv(
    clf: Classifier, csv: Path, out: Path | None, views: int, rng: np.random.Generator
) -> int:
    """Every row of ``csv`` predicted, written as Kaggle's submission to ``out`` (or stdout)."""
    from handnet.data.csvfile import read_csv, submission_csv
    from handnet.files import atomic_write_text
    from handnet.images.predict import predict_pixels

    X = read_csv(csv, pixels=clf.net.n_in).X
    probs = predict_pixels(clf, X, views=views, rng=rng)
    text = submission_csv([clf.classes[i] for i in probs.argmax(axis=1)])
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
        print(f"{out}: {len(X)} predictions (ImageId,Label) for {csv}")
    return 0


def add_serve(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page to draw a digit or a number and watch the model answer, plus a JSON API",
        description="Serve the drawing page at / (a digit, or a number's digits side by side) "
        "and the JSON API at /api (docs at /docs). "
        f"Needs the 'serve' extra: {install_extra('serve')}.",
    )
    p.add_argument("model", type=Path, help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--max-bytes",
        type=whole_number,
        default=2_000_000,
        help="largest request body accepted, in bytes (default: 2000000)",
    )
    add_tta_flags(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from handnet.images.serve import serve

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be in [0, 65535]")
    if args.max_bytes < 1:
        raise ConfigError(f"--max-bytes {args.max_bytes}: must be >= 1")
    views, _ = tta_views(args)
    signum = serve(
        args.model,
        host=args.host,
        port=args.port,
        max_bytes=args.max_bytes,
        tta_views=views,
        tta_seed=args.tta_seed,
    )
    return 128 + signum  # stopped by SIGINT or SIGTERM, as a shell tells it
