"""What every subcommand shares: the one-line-error parser, flag types, JSON output, TOML."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from handnet.errors import ConfigError, DatasetError, install_extra
from handnet.train.config import TrainConfig

DEFAULTS = TrainConfig()
# Each setting's flag, help, metavar and --help group come from its field's `option` metadata.
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, except where it has none (its help says what then) and
    for on/off switches of the command, which are off unless given (a training setting's switch
    says "default: off", since a recipe may turn it on)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


# The model argument of every command that loads one: a file, a run directory, or the newest run.
MODEL_HELP = (
    "a .safetensors model file, or a run directory; RUNS/latest is the newest finished run "
    "under RUNS (e.g. runs/latest)"
)


def needs_search_extra(e: ImportError) -> ConfigError:
    """The error of a command that needs Optuna (the search extra) without it."""
    return ConfigError(f"needs the search extra: {install_extra('search')} ({e})")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``handnet train: --lr: ...``, without argparse's
    "argument" before the flag) and exit 2."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument (\S+): ", r"\1: ", message)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def whole_number(s: str) -> int:
    """An int flag; its range is checked where it is used, with the flag's name in the error."""
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None


def sizes(s: str) -> tuple[int, ...]:
    """'1024' or '800,800' -> (1024,) or (800, 800)."""
    try:
        return tuple(int(p) for p in s.replace(" ", "").split(",") if p)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 1024 or 800,800, got {s!r}"
        ) from None


def dataset_name(s: str) -> str:
    """A --dataset: a dataset's name or an existing path; else one line with the nearest name
    (``mnits``: did you mean mnist?)."""
    from handnet.data.registry import DATASETS

    if s in DATASETS or Path(s).exists():
        return s
    near = difflib.get_close_matches(s.lower(), DATASETS, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}?" if near else f"the names are {', '.join(sorted(DATASETS))}"
    raise argparse.ArgumentTypeError(f"{s} is neither a file nor a dataset name; {hint}")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and inf (e.g. the validation loss of a run without validation) as null:
    bare NaN is not JSON, and other tools' parsers refuse it."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    print(json.dumps(json_safe(obj), indent=2, allow_nan=False))


def percent(p: float) -> str:
    """A probability with the digits that tell it from its neighbours, from 0 and from 1:
    45.3%, 99.98%, 0.018%, <0.01%, >99.99%. (The draw page's app.js has the same rule.)"""
    pct = 100 * p
    if pct < 0.01:
        return "<0.01%"
    if pct > 99.99:
        return ">99.99%"
    if pct < 0.995:  # two significant digits: 0.018%, 0.42% (0.996 would round to "1")
        return f"{pct:.2g}%"
    return f"{pct:.2f}%" if pct > 99 else f"{pct:.1f}%"


def flag(name: str) -> str:
    """The flag of a TrainConfig field: ``aug_rotate`` -> ``--aug-rotate``."""
    return "--" + name.replace("_", "-")


def shown(value: object) -> str:
    """A default as the user would type it: (800, 800) -> 800,800; False -> off."""
    if value is False:
        return "off"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def field_default(name: str) -> str | None:
    """The default of a TrainConfig setting as --help shows it; None where the help says."""
    default = FIELDS[name].default
    return None if default is None else shown(default)


# The argparse type of each kind of field; the range is checked by TrainConfig, naming the field.
_FLAG_TYPES = {
    "str": str,
    "int": whole_number,
    "int | None": whole_number,
    "float": float,
    "tuple[int, ...]": sizes,
}


def add_config_flags(p: Any, names: Iterable[str], *, defaults: bool = True) -> None:
    """A flag for each named TrainConfig field, made from its metadata (see `option`).

    A flag is absent from the namespace unless given, so a recipe's setting stands; read them
    back with `config_values`. A bool field is an on/off switch (``--no-`` too if negatable).
    ``defaults``: end each help with the field's default, where there is one to show.
    """
    for name in names:
        f = FIELDS[name]
        help_, default = f.metadata["help"], field_default(name)
        kind: dict[str, Any]
        if f.type == "bool":
            negatable = f.metadata["negatable"]
            kind = {"action": argparse.BooleanOptionalAction if negatable else "store_true"}
        else:
            kind = {"type": _FLAG_TYPES[str(f.type)], "metavar": f.metadata["metavar"]}
            if name == "dataset":
                kind["type"] = dataset_name
        if defaults and default is not None:
            help_ = f"{help_} (default: {default})"
        p.add_argument(flag(name), dest=name, default=argparse.SUPPRESS, help=help_, **kind)


# A library's error about a setting: "[where: ]name=value: why" (TrainConfig, the data split).
_SETTING_ERROR = re.compile(r"(?:(?P<where>.+?): )?(?P<name>[a-z_]+)=(?P<value>.+?): (?P<why>.+)")
# A setting's name in a message, but not a count ("in [0, epochs]", not "2 epochs").
_NAMES = re.compile(r"(?<!\d )\b(" + "|".join(sorted(FIELDS, key=len, reverse=True)) + r")\b")


def plain_words(why: str, flags: bool = True) -> str:
    """``must be >= 1`` as "must be at least 1"; with ``flags``, setting names as flags too
    (``must be in [0, lr]`` as ``must be in [0, --lr]``)."""
    why = why.replace(">= ", "at least ").replace("<= ", "at most ").replace(" > ", " above ")
    return _NAMES.sub(lambda m: flag(m.group(1)), why) if flags else why


def in_flag_words(message: str, given: Mapping[str, Any]) -> str:
    """A setting's error or warning as the person typed it: ``flags: epochs=-3: must be >= 1``
    becomes ``--epochs -3: must be at least 1`` (``given``: the flags' values, from
    `config_values`). A recipe's setting keeps the recipe's file and key, in plain words."""
    m = _SETTING_ERROR.fullmatch(message)
    if m is None or m["name"] not in FIELDS:
        return message
    name, why = m["name"], m["why"]
    if name in given:
        typed = "" if isinstance(given[name], bool) else shown(given[name])  # a switch: no value
    elif m["where"]:
        return f"{m['where']}: {name}={m['value']}: {plain_words(why, flags=False)}"
    else:  # a default, or a value known only to the library (a warning about a run)
        typed = "" if m["value"] in ("True", "False") else m["value"]
    return f"{flag(name)}{' ' + typed if typed else ''}: {plain_words(why)}"


@contextlib.contextmanager
def flag_errors(given: Mapping[str, Any]) -> Iterator[None]:
    """Re-raise a setting's `ConfigError` or `DatasetError` (``val_size`` larger than the
    training set) `in_flag_words`."""
    try:
        yield
    except (ConfigError, DatasetError) as e:
        raise type(e)(in_flag_words(str(e), given)) from None


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig settings given as flags (made by `add_config_flags`)."""
    return {name: value for name, value in vars(args).items() if name in FIELDS}


def config_flags_given(args: argparse.Namespace) -> list[str]:
    """The settings' flags on the command line, as typed and in their order: argparse sets a
    suppressed default's attribute only when its flag comes, so the namespace keeps that order."""
    return [
        "--no-" + flag(name)[2:] if value is False else flag(name)
        for name, value in config_values(args).items()
    ]


def add_data_source_flags(p: Any) -> None:
    """--data-dir and --mirror, where a named dataset is found (handnet.data.registry)."""
    p.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where to look for named datasets first"
    )
    p.add_argument(
        "--mirror",
        metavar="URL",
        help="base URL to download named datasets from, instead of upstream",
    )


def add_tta_flags(p: argparse.ArgumentParser) -> None:
    """--tta K and --tta-seed S (handnet.train.tta); read them back with `tta_views`."""
    p.add_argument(
        "--tta",
        type=whole_number,
        default=0,
        metavar="K",
        help="test-time augmentation: average each model's probabilities over the image and K "
        "copies transformed as in the model's training (default: 0, off)",
    )
    p.add_argument(
        "--tta-seed",
        type=whole_number,
        default=0,
        metavar="S",
        help="seed of the --tta transforms; the same seed gives the same answer (default: 0)",
    )


def tta_views(args: argparse.Namespace) -> tuple[int, np.random.Generator]:
    """The checked --tta view count and a Generator seeded by --tta-seed."""
    if not 0 <= args.tta <= 1000:
        raise ConfigError(f"--tta {args.tta}: must be in [0, 1000]")
    if args.tta_seed < 0:
        raise ConfigError(f"--tta-seed {args.tta_seed}: must be at least 0")
    return args.tta, np.random.default_rng(args.tta_seed)
