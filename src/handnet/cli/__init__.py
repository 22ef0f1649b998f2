"""The ``handnet`` command: subcommands that parse flags into configs and call the library.

User errors (bad flags, bad files, a diverged run) print one line on stderr and exit with 2,
without a traceback. SIGINT (Ctrl-C) or SIGTERM during training finishes the step, writes a
checkpoint, prints the resume command and exits with 130 or 143.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TextIO

from handnet.cli.common import Parser, config_values, in_flag_words
from handnet.cli.models import add_evaluate, add_info, add_predict, add_serve
from handnet.cli.reports import add_plot, add_report
from handnet.cli.search import add_search
from handnet.cli.train import add_augment_preview, add_finetune, add_train
from handnet.errors import HandnetError, RunInterrupted
from handnet.train.config import load_config_file

__all__ = ["build_parser", "load_config_file", "main"]


def build_parser() -> argparse.ArgumentParser:
    from handnet.version import __version__

    parser = Parser(prog="handnet", description="Hand-written NumPy MLPs for MNIST-style data.")
    parser.add_argument("--version", action="version", version=f"handnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train(sub)
    add_evaluate(sub)
    add_info(sub)
    add_predict(sub)
    add_serve(sub)
    add_plot(sub)
    add_report(sub)
    add_search(sub)
    add_augment_preview(sub)
    add_finetune(sub)
    return parser


@contextlib.contextmanager
def one_line_warnings(command: str, given: Mapping[str, Any]) -> Iterator[None]:
    """handnet's own warnings (the files an image folder left out, a setting that spoils a run)
    as one line on stderr, as its errors are, a setting's in the words of its flag (``given``:
    the flags' values); other warnings as Python shows them."""
    with warnings.catch_warnings():
        python_way = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if category.__module__.startswith("handnet."):
                print(
                    f"handnet {command}: warning: {in_flag_words(str(message), given)}",
                    file=sys.stderr,
                )
            else:
                python_way(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with one_line_warnings(args.command, config_values(args)):
            code = int(args.func(args))
        sys.stdout.flush()  # so that a closed pipe shows here, where it is handled
        return code
    except RunInterrupted as e:  # a checkpoint was written; the message says how to resume
        print(f"handnet {args.command}: {e}", file=sys.stderr)
        return 128 + e.signum
    except HandnetError as e:
        print(f"handnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:  # e.g. --hidden-sizes 10000000: NumPy says how much it wanted
        print(f"handnet {args.command}: error: out of memory ({e})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"handnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (handnet info M | head): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 128 + signal.SIGPIPE
