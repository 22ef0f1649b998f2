"""The README and the documentation site say what the code does: their Python examples run,
their `handnet` command lines parse, their links lead somewhere, and the pages that the site's
build makes from the code (docs/hooks/handnet_docs.py) show the code as it is.

`make docs` (run by `make test`) builds the site with --strict, executing the tutorial notebook;
these tests cover what a build does not: that the examples' code runs and the commands parse.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import inspect
import io
import re
import runpy
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from handnet.cli import build_parser
from handnet.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```$", re.M | re.S)
SKIP = "<!-- test: skip -->"  # put on the line before a fence whose code must not run


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fences(path: Path, *langs: str) -> list[str]:
    """The code of every fenced block in ``langs``, in page order, skipping marked ones."""
    text = path.read_text()
    found = []
    for m in FENCE.finditer(text):
        if m.group(1) in langs and not text[: m.start()].rstrip().endswith(SKIP):
            found.append(m.group(2))
    return found


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "handnet_docs", DOCS / "hooks" / "handnet_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the README ---------------------------------------------------------------------------------


def test_readme_is_two_screens_with_the_two_commands_and_a_picture() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "make train" in text and "make test" in text
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert pictures and all((ROOT / p).is_file() for p in pictures)


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_lead_to_files_and_headings(page: Path) -> None:
    """mkdocs --strict checks the site's links; this checks the README's too, on GitHub's terms."""
    text = page.read_text()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{rel(page)}: {target}: no such file"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{rel(page)}: {target}: no such heading"


def anchors(page: Path) -> set[str]:
    """The ids MkDocs (and GitHub) give the headings of a page, plus explicit {#id}s; a page
    that includes another file (``--8<-- "BENCHMARKS.md"``) has that file's headings, and one
    that the build fills in (``<!-- cli -->``) the headings it gets."""
    text = page.read_text()
    for included in re.findall(r'^--8<-- "([^"]+)"$', text, re.M):
        text += "\n" + (ROOT / included).read_text()
    for kind in re.findall(r"^<!-- (cli|config-keys) -->$", text, re.M):  # made at build time
        text += "\n" + hooks().expand(kind, None)
    ids = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        explicit = re.search(r"\{#([\w-]+)\}", heading)
        if explicit:
            ids.add(explicit.group(1))
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).strip()
        ids.add(re.sub(r"\s+", "-", slug))
    return ids


# --- the examples -------------------------------------------------------------------------------


def commands(path: Path) -> list[str]:
    """Every `handnet ...` command line of the page's sh/console blocks, continuations joined."""
    lines = []
    for lang in ("sh", "bash", "console"):
        for code in fences(path, lang):
            lines += _commands(code.replace("\\\n", " "), prompt=lang == "console")
    return lines


def _commands(code: str, prompt: bool) -> list[str]:
    lines = []
    for line in code.splitlines():
        if prompt:  # a console block: commands follow "$ ", the other lines are output
            if not line.startswith("$ "):
                continue
            line = line[2:]
        for part in re.split(r";|&&|\bdo\b", line.split(" #", 1)[0]):
            part = part.strip()
            if part.startswith(("handnet ", ".venv/bin/handnet ")):
                lines.append(part)
    return lines


def shell_words(command: str) -> list[str]:
    """The command's arguments, with shell expansions ($s, $(...), $((...))) taken as 1."""
    while "$(" in command:  # a $( ... ) with its nested parentheses
        start = command.index("$(")
        depth, end = 0, start + 1
        for end in range(start + 1, len(command)):
            depth += {"(": 1, ")": -1}.get(command[end], 0)
            if depth == 0:
                break
        command = command[:start] + "1" + command[end + 1 :]
    return shlex.split(re.sub(r"\$\{?\w+\}?", "1", command))[1:]


COMMANDS = [(p, c) for p in PAGES for c in commands(p)]


@pytest.mark.parametrize(
    ("page", "command"), COMMANDS, ids=[f"{rel(p)}: {c[:60]}" for p, c in COMMANDS]
)
def test_command_lines_in_the_docs_parse(
    page: Path, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flag the docs show exists and takes the value shown (nothing is run). The parser
    checks that a --dataset file exists: the reader's own files are stood in for by empty ones."""
    monkeypatch.chdir(ROOT)  # configs/, examples/
    words = shell_words(command)
    for i, word in enumerate(words):
        if re.search(r"\.(csv|npz|mat)$", word) and not Path(word).exists():
            words[i] = str(tmp_path / Path(word).name)
            Path(words[i]).touch()
    try:
        build_parser().parse_args(words)
    except SystemExit as e:
        if e.code != 0:  # 0: --help
            pytest.fail(f"{rel(page)}: `{command}` does not parse (exit {e.code})")


PYTHON_PAGES = [p for p in PAGES if fences(p, "python")]


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=rel)
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's Python blocks run in order in one namespace, in a scratch folder."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__main__"}
    for i, code in enumerate(fences(page, "python")):
        try:
            exec(compile(code, f"{rel(page)}, python block {i + 1}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"{rel(page)}, python block {i + 1}: {type(e).__name__}: {e}")


def test_the_readme_example_prints_what_its_comment_says() -> None:
    """The comment after the README example's print is its output, from a run: keep them equal
    when either changes (the example itself runs in test_python_examples_run)."""
    (code,) = fences(ROOT / "README.md", "python")
    printed = re.search(r"print\(.*\)\s+# (.+)$", code, re.M)
    assert printed and re.fullmatch(r"loss \d\.\d{3}, test accuracy \d\d\.\d\d%", printed.group(1))


# --- what the build makes from the code ---------------------------------------------------------


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_cli_reference_has_every_subcommand_and_flag() -> None:
    text = hooks().cli_reference()
    for name, sub in subparsers(build_parser()).items():
        assert f"## `handnet {name}` {{#handnet-{name}}}" in text
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in text, (name, option)


def test_config_keys_list_every_field_with_its_default() -> None:
    text = hooks().config_keys()
    for field in dataclasses.fields(TrainConfig):
        assert f"| `{field.name}` |" in text
    assert "| `hidden_sizes` | list of integers | `[1024]` |" in text
    assert '| `activation` | string | `"tanh"` |' in text


def test_source_marker_shows_the_code_with_its_file_and_lines() -> None:
    from handnet.nn.layers import Dense

    text = hooks().expand("source", "handnet.nn.layers.Dense.backward")
    lines, start = inspect.getsourcelines(Dense.backward)
    assert 'title="src/handnet/nn/layers.py: Dense.backward"' in text
    assert f'linenums="{start}"' in text
    assert "def backward(self" in text and lines[-1].strip() in text


def test_source_marker_reads_a_function_of_any_file() -> None:
    """The backpropagation page shows the tests' own finite differences, from tests/conftest.py."""
    text = hooks().expand("source", "tests/conftest.py:numerical_grad")
    start = next(
        i + 1
        for i, line in enumerate((ROOT / "tests" / "conftest.py").read_text().splitlines())
        if line.startswith("def numerical_grad(")
    )
    assert f'title="tests/conftest.py: numerical_grad" linenums="{start}"' in text
    assert text.splitlines()[1].startswith("def numerical_grad(") and "return g" in text
    with pytest.raises(ValueError, match="no missing there"):
        hooks().expand("source", "tests/conftest.py:missing")


def test_api_reference_documents_every_module() -> None:
    """The API pages list their modules through ``<!-- api: ... -->``, which finds new ones; the
    command line has its own reference page."""
    import pkgutil

    import handnet

    text = "\n".join(
        hooks().on_page_markdown(page.read_text(), None, None, None)
        for page in (DOCS / "reference" / "api").glob("*.md")
    )
    for module in pkgutil.walk_packages(handnet.__path__, "handnet."):
        name = module.name
        if module.ispkg or name.startswith(("handnet.cli", "handnet.version")) or "._" in name:
            continue
        assert f"::: {name}\n" in text, name


def test_markers_inside_an_admonition_keep_its_indentation() -> None:
    page = '??? example "x"\n\n    <!-- source: handnet.nn.schedules.warmup_cosine -->\n'
    text = hooks().on_page_markdown(page, None, None, None)
    body = text.split("\n\n", 1)[1]
    assert body.startswith('    ```python title="src/handnet/nn/schedules.py: warmup_cosine"')
    assert all(line.startswith("    ") for line in body.splitlines() if line)


def test_math_becomes_mathml() -> None:
    pytest.importorskip("latex2mathml")
    html = '<p><span class="arithmatex">\\(dW = X^\\top G\\)</span></p>'
    out = hooks().math_to_mathml(html)
    assert "arithmatex" not in out and '<math xmlns="http://www.w3.org/1998/Math/MathML"' in out


@pytest.mark.parametrize("script", ["gradcheck.py", "shapes.py"])
def test_build_time_scripts_print_their_tables(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the backpropagation page shows: the gradient check passes (it asserts its own
    tolerance) and prints one row per gradient; the shape table names every layer."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(DOCS / "snippets" / script), run_name="__main__")
    table = [line for line in out.getvalue().splitlines() if line.startswith("| ")]
    if script == "gradcheck.py":
        assert len(table) == 2 + 14  # header and rule, then 8 layer gradients and 6 MLP parameters
        assert all(float(row.split(" | ")[2]) < 1e-6 for row in table[2:])
    else:
        assert [row.split(" | ")[1] for row in table[3:7]] == [
            "`Dense(784, 1024)`",
            "`Tanh()`",
            "`Dropout(p=0.2)`",
            "`Dense(1024, 10)`",
        ]
