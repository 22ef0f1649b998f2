"""What every subcommand shares: the one-line-error parser, flag types, JSON output, TOML."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from handnet.errors import ConfigError
from handnet.train import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


DEFAULTS = TrainConfig()


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``handnet train: --lr: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    return v


def sizes(s: str) -> tuple[int, ...]:
    """'1024' or '800,800' -> (1024,) or (800, 800)."""
    try:
        return tuple(int(p) for p in s.replace(" ", "").split(",") if p)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 1024 or 800,800, got {s!r}"
        ) from None


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


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def add_deskew_flag(p: argparse.ArgumentParser, help_: str) -> None:
    """--deskew / --no-deskew, absent unless given (a recipe's setting then stands)."""
    p.add_argument(
        "--deskew",
        dest="deskew",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help=f"{help_} (default: off)",
    )
