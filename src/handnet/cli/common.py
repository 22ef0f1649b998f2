"""What every subcommand shares: the one-line-error parser, flag types, JSON output, TOML."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, NoReturn

import numpy as np

from handnet.errors import ConfigError, install_extra
from handnet.train.config import TrainConfig

DEFAULTS = TrainConfig()


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each flag's default, except where it has none (its help says what then) and
    for on/off switches, which are off unless given."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def needs_search_extra(e: ImportError) -> ConfigError:
    """The error of a command that needs Optuna (the search extra) without it."""
    return ConfigError(f"needs the search extra: {install_extra('search')} ({e})")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``handnet train: --lr: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
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


GEOMETRY_FLAGS = ("deskew", "width_normalize")  # the TrainConfig names of the flags below


def add_geometry_flags(p: argparse.ArgumentParser, then: str) -> None:
    """--deskew / --no-deskew and --width-normalize PX (handnet.data.geometry), absent unless given (a
    recipe's settings then stand). ``then``: what follows from them, for the help text."""
    p.add_argument(
        "--deskew",
        dest="deskew",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help=f"shear every digit upright first; {then} (default: off)",
    )
    p.add_argument(
        "--width-normalize",
        dest="width_normalize",
        type=whole_number,
        metavar="PX",
        default=argparse.SUPPRESS,
        help="scale every digit horizontally to PX pixels of ink, after deskewing (Meier et al. "
        f"2011 used 10 to 20 for committee members); {then} (default: 0, off)",
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
        raise ConfigError(f"--tta-seed {args.tta_seed}: must be >= 0")
    return args.tta, np.random.default_rng(args.tta_seed)
