"""The API reference's docstrings: one style (numpydoc), every parameter and return documented,
and a shape for every array.

The site's reference is made from the docstrings by mkdocstrings, which parses them with griffe's
numpy parser; this test parses them with the same parser, so what it checks is what the site
shows. It covers every public function, method and class of every public module (handnet.cli is
documented as a command line instead, generated from its parser).

The rules, for each public callable:

- it has a docstring;
- every parameter of its signature (``self`` and ``cls`` aside) is in a ``Parameters`` section
  (a class documents its ``__init__``'s parameters in the class docstring), and the section names
  no parameter the signature lacks;
- a function that returns something other than None has a ``Returns`` (or ``Yields``) section;
  properties are described by their summary line;
- a parameter or a return whose type is an array (``Array``, ``NDArray``, ``ndarray``, an
  ``array``) gives its shape, as ``(n, 784)``, ``(B, H, W)`` or ``(n,)``: a parenthesis with at
  least one comma, in its type or its description (or says "any shape" where that is so).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

griffe = pytest.importorskip("griffe", reason="griffe (griffelib) comes with the test extra")

SRC = Path(__file__).resolve().parents[2] / "src"
SHAPE = re.compile(r"\((?:[^(),]+,)+[^(),]*\)|any shape")  # (n, 784), (B, H, W), (n,)
ARRAY = re.compile(r"\b(Array|NDArray|ndarray|arrays?)\b")
SKIP_PARAMS = {"self", "cls"}


def _package() -> Any:
    return griffe.load(
        "handnet",
        search_paths=[str(SRC)],
        docstring_parser=griffe.Parser.numpy,
        allow_inspection=False,
    )


def _modules(module: Any) -> Iterator[Any]:
    yield module
    for member in module.members.values():
        if member.is_alias or not member.is_module:
            continue
        if member.name.startswith("_") or member.path.startswith("handnet.cli"):
            continue
        yield from _modules(member)


PACKAGE = _package()
MODULES = {m.path: m for m in _modules(PACKAGE)}


def _public(module: Any) -> Iterator[Any]:
    """The module's own public functions and classes, and the classes' public methods."""
    for member in module.members.values():
        if member.is_alias or member.name.startswith("_"):
            continue
        if member.is_function:
            yield member
        elif member.is_class:
            yield member
            for method in member.members.values():
                if method.is_alias or not method.is_function or method.name.startswith("_"):
                    continue
                yield method


def _sections(obj: Any, *kinds: str) -> list[object]:
    """The items of ``obj``'s docstring sections of the given kinds."""
    if obj.docstring is None:
        return []
    items: list[object] = []
    for section in obj.docstring.parsed:
        if section.kind.value in kinds and isinstance(section.value, list):
            items.extend(section.value)
    return items


def _shape_problems(where: str, items: list[object], annotations: dict[str, str]) -> list[str]:
    problems = []
    for item in items:
        name = getattr(item, "name", "") or "return value"
        kind = str(getattr(item, "annotation", "") or "") or annotations.get(name, "")
        text = f"{kind} {getattr(item, 'description', '')}"
        if ARRAY.search(kind) and not SHAPE.search(text):
            problems.append(f"{where}: {name} is an array; give its shape, as (n, 784)")
    return problems


def _problems(obj: Any) -> list[str]:
    where = obj.path
    if not obj.docstring or not obj.docstring.value.strip():
        return [f"{where}: no docstring"]
    problems: list[str] = []
    function: Any | None = None
    if obj.is_function:
        function = obj
    elif obj.is_class and "__init__" in obj.members and not obj.members["__init__"].is_alias:
        init = obj.members["__init__"]
        if init.is_function and init.parent is obj:
            function = init
    if function is None or "property" in function.labels:
        return problems
    names = [p.name for p in function.parameters if p.name not in SKIP_PARAMS]
    documented = _sections(obj, "parameters", "other parameters")
    if function is not obj and function.docstring:  # a class may document them in __init__
        documented += _sections(function, "parameters", "other parameters")
    doc_names = {str(getattr(p, "name", "")).lstrip("*") for p in documented}
    missing = [n for n in names if n.lstrip("*") not in doc_names]
    extra = sorted(doc_names - {n.lstrip("*") for n in names})
    if missing:
        problems.append(f"{where}: parameters not in a Parameters section: {', '.join(missing)}")
    if extra:
        problems.append(f"{where}: the Parameters section names unknown {', '.join(extra)}")
    annotations = {p.name.lstrip("*"): str(p.annotation or "") for p in function.parameters}
    problems += _shape_problems(where, documented, annotations)
    if function is obj:
        returns = str(function.returns) if function.returns is not None else "None"
        got = _sections(obj, "returns", "yields")
        if returns != "None" and not got:
            problems.append(f"{where}: returns {returns} but has no Returns section")
        problems += _shape_problems(where, got, {"return value": returns})
    return problems


@pytest.mark.parametrize("path", sorted(MODULES))
def test_module_docstrings_are_numpydoc_with_shapes(path: str) -> None:
    module = MODULES[path]
    problems = [] if module.docstring else [f"{path}: no module docstring"]
    for obj in _public(module):
        problems += _problems(obj)
    assert not problems, f"{len(problems)} docstring problems:\n" + "\n".join(problems)


def test_the_checker_finds_what_it_should() -> None:
    """The rules on a small module of right and wrong docstrings."""
    code = '''
"""A module."""
def good(x, k=1):
    """Sum.

    Parameters
    ----------
    x : Array
        Inputs, (n, 784).
    k : int
        How many.

    Returns
    -------
    Array
        The sums, (n,).
    """
def bad(x, k=1) -> int:
    """No sections."""
def no_shape(x):
    """Shape missing.

    Parameters
    ----------
    x : NDArray
        Inputs.
    """
'''
    module = griffe.visit(
        "m", filepath=Path("m.py"), code=code, docstring_parser=griffe.Parser.numpy
    )
    found = {obj.name: _problems(obj) for obj in _public(module)}
    assert found["good"] == []
    assert any("parameters not in a Parameters section: x, k" in p for p in found["bad"])
    assert any("no Returns section" in p for p in found["bad"])
    assert found["no_shape"] == ["m.no_shape: x is an array; give its shape, as (n, 784)"]


def test_train_config_documents_every_setting_with_its_default() -> None:
    """TrainConfig's Parameters section (the API reference's list of settings) names every
    field in order with the field's real default, so a changed default cannot leave it behind."""
    import dataclasses

    from handnet.train.config import TrainConfig

    documented = _sections(PACKAGE["train.config.TrainConfig"], "parameters")
    fields = dataclasses.fields(TrainConfig)
    assert [getattr(p, "name", "") for p in documented] == [f.name for f in fields]
    for item, f in zip(documented, fields):
        import ast

        written = ast.literal_eval(str(getattr(item, "default", "")))  # the text after default=
        real = f.default if f.default is not dataclasses.MISSING else None
        assert written == real, f"{f.name}: the docstring says default={written!r}, it is {real!r}"
