"""MkDocs hooks: what a page shows of the code is taken from the code at build time, never copied.

A page asks for it with an HTML comment on a line of its own (indented, inside an admonition,
the expansion is indented alike):

    <!-- source: handnet.nn.layers.Dense.backward -->   the object's source, from inspect
    <!-- source: tests/conftest.py:numerical_grad -->   a function of any Python file, from ast
    <!-- include: docs/snippets/gradcheck.py -->       a file of the repository, as a code block
    <!-- run: docs/snippets/gradcheck.py -->           what that script prints (Markdown), run now
    <!-- cli -->                                       the CLI reference, from build_parser()
    <!-- config-keys -->                               the recipe keys, from TrainConfig's fields
    <!-- api: handnet.nn layers losses -->             ::: blocks for every module of a package

and math written as ``$...$`` or ``$$...$$`` (pymdownx.arithmatex, generic mode) is turned into
MathML here, so the pages need no script from the network to show it.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import html
import importlib
import inspect
import io
import os
import re
import runpy
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(
    r"^([ \t]*)<!--\s*(source|include|run|cli|config-keys|api)(?::\s*([^>]*?))?\s*-->$", re.M
)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return MARKER.sub(lambda m: textwrap.indent(expand(m[2], m[3]), m[1]), markdown)


def on_page_content(html_text: str, page: Any, config: Any, files: Any) -> str:
    return math_to_mathml(html_text)


def expand(kind: str, arg: str | None) -> str:
    if kind == "source":
        return source_block(_need(kind, arg))
    if kind == "include":
        return include_block(_need(kind, arg))
    if kind == "run":
        return run_script(_need(kind, arg))
    if kind == "cli":
        return cli_reference()
    if kind == "api":
        return api_modules(*_need(kind, arg).split())
    return config_keys()


def _need(kind: str, arg: str | None) -> str:
    if not arg:
        raise ValueError(f"<!-- {kind}: ... --> needs an argument")
    return arg


# --- source and files --------------------------------------------------------------------------


def resolve(dotted: str) -> Any:
    """The object named by a dotted path: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ValueError(f"<!-- source: {dotted} -->: no such module")


def source_block(dotted: str) -> str:
    if ".py:" in dotted:  # a function of a file that is no module of the package (tests/)
        return file_source_block(*dotted.split(":", 1))
    obj = inspect.unwrap(resolve(dotted))
    lines, start = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj) or "").resolve()
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    code = textwrap.dedent("".join(lines)).rstrip()
    name = getattr(obj, "__qualname__", dotted) if not inspect.ismodule(obj) else ""
    return _fence(code, f"{where}: {name}" if name else str(where), start)


def file_source_block(path: str, qualname: str) -> str:
    """``def``/``class`` ``qualname`` (``Class.method`` too) of a Python file, found with ast."""
    text = (ROOT / path).read_text()
    body: list[ast.stmt] = ast.parse(text).body
    node: ast.stmt | None = None
    for name in qualname.split("."):
        node = next(
            (n for n in body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name),
            None,
        )
        if node is None:
            raise ValueError(f"<!-- source: {path}:{qualname} -->: no {name} there")
        body = node.body  # type: ignore[attr-defined]
    assert node is not None and node.end_lineno is not None
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    lines = text.splitlines()[start - 1 : node.end_lineno]
    return _fence(textwrap.dedent("\n".join(lines)), f"{path}: {qualname}", start)


def include_block(path: str) -> str:
    file = ROOT / path
    return _fence(file.read_text().rstrip(), path, 1, lang="python" if path.endswith(".py") else "")


def _fence(code: str, title: str, first_line: int, lang: str = "python") -> str:
    ticks = "````" if "```" in code else "```"
    return f'{ticks}{lang} title="{title}" linenums="{first_line}"\n{code}\n{ticks}\n'


def run_script(path: str) -> str:
    """Run a script of the repository in a scratch folder and return what it printed (Markdown).

    It runs in this process (handnet is imported once for the whole build). An exception stops
    the build: a page whose numbers cannot be computed must not be published with stale ones.
    """
    file = ROOT / path
    out = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(out):
        os.chdir(tmp)
        try:
            runpy.run_path(str(file), run_name="__main__")
        finally:
            os.chdir(cwd)
    return out.getvalue()


def api_modules(package: str, *first: str) -> str:
    """A mkdocstrings block (``::: module``) for every public module of ``package``: the ones
    named in ``first`` in that order, then any others alphabetically, so a new module is
    documented without anyone adding it here."""
    import pkgutil

    found = {
        m.name
        for m in pkgutil.iter_modules(importlib.import_module(package).__path__)
        if not m.name.startswith("_")
    }
    unknown = set(first) - found
    if unknown:
        raise ValueError(f"<!-- api: {package} -->: no module {', '.join(sorted(unknown))}")
    names = [*first, *sorted(found - set(first))]
    return "\n".join(f"::: {package}.{name}\n" for name in names)


# --- the CLI and the config keys ---------------------------------------------------------------


def _cell(text: object) -> str:
    """Table-cell text: one line, pipes escaped, flags and values as code where they stand alone."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(action: argparse.Action) -> str:
    d = action.default
    if d is None or d is argparse.SUPPRESS:
        return ""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        return "off" if d is False else "on"
    if isinstance(action, argparse.BooleanOptionalAction):
        return "on" if d else "off"
    if isinstance(d, list | tuple):
        d = ",".join(map(str, d))
    return f"`{_cell(d)}`"


def _help(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:
        params = {**vars(action), "prog": prog}
        if params.get("choices") is not None:
            params["choices"] = ", ".join(map(str, params["choices"]))
        text = text % params
    return _cell(text)


def _flag(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest.upper()}`"
    metavar = ""
    if action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction):
        metavar = " " + str(action.metavar or action.dest.upper())
    return ", ".join(f"`{s}{metavar}`" for s in action.option_strings)


def _row(action: argparse.Action, prog: str) -> str:
    default, meaning = _default(action), _help(action, prog)
    if default:  # the table has a column for what --help appends
        meaning = re.sub(r"\s*\(default: [^()]*\)$", "", meaning)
    return f"| {_flag(action)} | {default} | {meaning} |"


def _subcommands(parser: argparse.ArgumentParser) -> tuple[Any, dict[str, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return action, helps
    raise ValueError("the handnet parser has no subcommands")


def cli_reference() -> str:
    """One section per subcommand: what --help says, with every flag in a table."""
    from handnet.cli import build_parser

    try:  # handnet train's tables, as handnet's own test of its flags checks them
        from handnet.cli.reference import train_reference
    except ImportError:
        train_reference = None

    parser = build_parser()
    sub, helps = _subcommands(parser)
    out = ["| command | what it does |", "| --- | --- |"]
    out += [
        f"| [`handnet {name}`](#handnet-{name}) | {_cell(helps[name])} |" for name in sub.choices
    ]
    for name, p in sub.choices.items():
        out += ["", f"## `handnet {name}` {{#handnet-{name}}}", ""]
        if p.description:
            out += [_cell(p.description), ""]
        usage = p.format_usage().removeprefix("usage: ").strip()
        out += ["```text", usage, "```", ""]
        if name == "train" and train_reference is not None:
            out += [train_reference()]  # the same tables, from TrainConfig's field metadata
            continue
        for group in p._action_groups:
            actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
            if not actions:
                continue
            title = "positional arguments" if group.title == "positionals" else group.title
            out += [f"**{title}**", "", "| flag | default | meaning |", "| --- | --- | --- |"]
            out += [_row(a, p.prog) for a in actions]
            out.append("")
        if p.epilog:
            out += [_cell(p.epilog), ""]
    # Inside a code span a table's pipe needs no escape (Python-Markdown keeps the backslash).
    return re.sub(r"`[^`\n]*`", lambda m: m[0].replace("\\|", "|"), "\n".join(out) + "\n")


def config_keys() -> str:
    """The keys of a recipe file: TrainConfig's fields, each with its default and its meaning."""
    from handnet.cli import build_parser
    from handnet.train import config as config_module
    from handnet.train.config import TrainConfig

    sub, _ = _subcommands(build_parser())
    train = sub.choices["train"]
    flag_help = {a.dest: _help(a, train.prog) for a in train._actions if a.help}
    rows: dict[str, list[str]] = {}
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        meaning = _cell(f.metadata["help"]) if "help" in f.metadata else flag_help.get(f.name, "")
        group = f.metadata.get("group", "settings")
        rows.setdefault(group, []).append(
            f"| `{f.name}` | {_cell(_toml_type(f.type))} | {_toml(default)} | {meaning} |"
        )
    order = getattr(config_module, "GROUPS", ())  # the groups of `handnet train --help`
    out: list[str] = []
    for group, lines in sorted(rows.items(), key=lambda kv: _index(order, kv[0])):
        out += [f"### {group.capitalize()}", "", "| key | type | default | meaning |"]
        out += ["| --- | --- | --- | --- |", *lines, ""]
    return "\n".join(out)


def _index(order: tuple[str, ...], group: str) -> int:
    return order.index(group) if group in order else len(order)


def _toml_type(t: Any) -> str:
    t = str(t)
    return {
        "str": "string",
        "bool": "boolean",
        "int": "integer",
        "float": "number",
        "tuple[int, ...]": "list of integers",
        "int | None": "integer (optional)",
    }.get(t, t)


def _toml(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple | list):
        return f"`[{', '.join(map(str, value))}]`"
    return f"`{value}`"


# --- math --------------------------------------------------------------------------------------

_MATH = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\([)\]])\s*</\1>', re.S)


def math_to_mathml(text: str) -> str:
    """Replace arithmatex's generic spans (``\\(...\\)``, ``\\[...\\]``) with MathML."""
    if "arithmatex" not in text:
        return text
    from latex2mathml.converter import convert

    def one(m: re.Match[str]) -> str:
        tex = html.unescape(m.group(3))
        display = "block" if m.group(2) == "[" else "inline"
        return convert(tex, display=display)

    return _MATH.sub(one, text)
