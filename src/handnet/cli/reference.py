"""The CLI reference of the docs, made from the parser: ``python -m handnet.cli.reference``
prints ``handnet train``'s flags as Markdown, one table per group of its --help. A training
setting's row comes from its field's `option` metadata (handnet.train.config), as its --help does,
so the two cannot drift apart."""

from __future__ import annotations

import argparse

from handnet.cli.common import FIELDS, field_default, shown
from handnet.cli.train import add_train


def flag_cell(action: argparse.Action) -> str:
    """``--lr LR``, ``--deskew``, ``--no-deskew``: the flag as typed, in code spans."""
    metavar = f" {action.metavar}" if action.metavar and action.nargs != 0 else ""
    return ", ".join(f"`{option}{metavar}`" for option in action.option_strings)


def default_cell(action: argparse.Action) -> str:
    """`1024`, off, or nothing (no default: the meaning says what then)."""
    if action.dest in FIELDS:
        default = field_default(action.dest)
    elif action.default in (None, False, argparse.SUPPRESS):
        default = None
    else:
        default = shown(action.default)
    return "" if default is None else default if default == "off" else f"`{default}`"


def meaning_cell(action: argparse.Action) -> str:
    """The help without the "(default: ...)" --help adds: the table has a column for it."""
    help_ = FIELDS[action.dest].metadata["help"] if action.dest in FIELDS else action.help
    return str(help_)


def train_reference() -> str:
    """Markdown: a heading and a table (flag, default, meaning) per group of `handnet train`."""
    parser = add_train(argparse.ArgumentParser(prog="handnet").add_subparsers())
    lines: list[str] = []
    for group in parser._action_groups:  # argparse has no public way to walk its groups
        actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        lines += [f"#### {group.title}", "", "| flag | default | meaning |", "| --- | --- | --- |"]
        for a in actions:
            cells = (flag_cell(a), default_cell(a), meaning_cell(a))
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(train_reference(), end="")
