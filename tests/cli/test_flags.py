"""`handnet train`'s flags are made from TrainConfig's field metadata: every setting has one help
text, one flag, one --help group, and the docs' reference shows the same text."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest

from handnet.cli import build_parser, main
from handnet.cli.common import config_values, flag
from handnet.cli.reference import train_reference
from handnet.train.config import GROUPS, TrainConfig

FIELDS = dataclasses.fields(TrainConfig)
pytestmark = pytest.mark.usefixtures("unrendered_plots")  # files and output, not pixels


def help_of(command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps at the terminal width: no wrapping
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    return str(capsys.readouterr().out)


def sections(text: str) -> dict[str, list[str]]:
    """The option entries of each group of a --help, whitespace collapsed, in order."""
    groups: dict[str, list[str]] = {}
    entries: list[str] = []
    for line in text.splitlines():
        if re.fullmatch(r"\S.*:", line):  # a group's title
            entries = groups.setdefault(line[:-1], [])
        elif line.startswith("  -"):  # an option's first line
            entries.append(line.strip())
        elif line.startswith("   ") and entries:  # its help, on the next line
            entries[-1] += " " + line.strip()
    return {title: [" ".join(e.split()) for e in es] for title, es in groups.items()}


def expected_help(f: dataclasses.Field) -> str:
    """The metadata's help, plus the default --help adds (none where the help says what then)."""
    help_ = f.metadata["help"]
    if f.default is None:
        return help_
    shown = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
    return f"{help_} (default: {'off' if f.default is False else shown})"


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_every_setting_has_its_help_and_group(f: dataclasses.Field) -> None:
    assert isinstance(f.metadata.get("help"), str) and len(f.metadata["help"]) > 10
    assert f.metadata["group"] in GROUPS
    assert "%" not in f.metadata["help"]  # argparse would read it as a format


def sample(f: dataclasses.Field) -> tuple[list[str], object]:
    """A command line that sets ``f`` to something other than its default, and that value."""
    kind = str(f.type)
    if kind == "bool":
        return [flag(f.name)], True
    if kind == "tuple[int, ...]":
        return [flag(f.name), "16,8"], (16, 8)
    if kind == "str":  # a dataset is a name (or a file): it is checked as the flag is read
        text = "kmnist" if f.name == "dataset" else "other"
        return [flag(f.name), text], text
    value = 3 if kind.startswith("int") else 0.375
    assert value != f.default
    return [flag(f.name), str(value)], value


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_every_setting_is_reachable_from_its_flag(f: dataclasses.Field) -> None:
    argv, value = sample(f)
    args = build_parser().parse_args(["train", *argv])
    assert config_values(args) == {f.name: value}


def test_a_negatable_switch_turns_a_recipe_setting_off() -> None:
    args = build_parser().parse_args(["train", "--no-deskew"])
    assert config_values(args) == {"deskew": False}


def test_help_shows_the_metadata_in_its_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    text = help_of("train", monkeypatch, capsys)
    assert text.splitlines()[0] == "usage: handnet train [options]"
    found = sections(text)
    assert list(found) == ["options", *GROUPS]
    for f in FIELDS:
        group = found[f.metadata["group"]]
        (entry,) = [e for e in group if re.match(rf"{flag(f.name)}\b(?!-)", e)]
        assert entry.endswith(" " + " ".join(expected_help(f).split())), entry
    assert any(e.startswith("--activation {tanh,relu} ") for e in found["model"])


def test_related_flags_sit_together(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    found = sections(help_of("train", monkeypatch, capsys))
    flags = [e.split()[0].rstrip(",") for e in found["optimizer and schedule"]]
    assert flags[flags.index("--momentum") + 1] == "--nesterov"
    assert flags[flags.index("--finetune") + 1] == "--finetune-ridge"
    runs = [e.split()[0] for e in found["output and runs"]]
    assert runs[runs.index("--seed") + 1] == "--split-seed"


def test_subcommands_that_share_settings_show_the_same_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    by_name = {f.name: f for f in FIELDS}
    for command, names in [
        ("search", ("dataset", "val_size", "seed", "deskew", "width_normalize")),
        ("augment-preview", ("dataset", "seed", "aug_rotate", "aug_elastic_sigma")),
    ]:
        entries = [e for es in sections(help_of(command, monkeypatch, capsys)).values() for e in es]
        for name in names:
            help_ = " ".join(by_name[name].metadata["help"].split())
            assert any(e.startswith(flag(name)) and help_ in e for e in entries), (command, name)


def test_the_docs_reference_is_made_from_the_same_metadata() -> None:
    text = train_reference()
    titles = re.findall(r"^#### (.+)$", text, flags=re.M)
    assert titles == list(GROUPS)
    for f in FIELDS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{flag(f.name)}"))
        assert row.endswith(" | " + f.metadata["help"].replace("|", "\\|") + " |"), row


# --- --quiet and the progress bar ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 255, (300, 28, 28), dtype=np.uint8),
        y_train=np.arange(300) % 3,
        x_test=rng.integers(0, 255, (60, 28, 28), dtype=np.uint8),
        y_test=np.arange(60) % 3,
    )
    return path


def train_argv(data: Path, out: Path) -> list[str]:
    return [
        *("train", "--dataset", str(data), "--hidden-sizes", "8", "--epochs", "2"),
        *("--val-size", "30", "--out", str(out), "--finetune"),
    ]


def test_quiet_leaves_stderr_empty(
    tiny_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(train_argv(tiny_npz, tmp_path)) == 0
    err = capsys.readouterr().err
    assert re.search(r"^epoch +2/2 +loss", err, flags=re.M)  # a line per epoch
    assert "\r" not in err  # stderr is no terminal here: no bar
    assert main([*train_argv(tiny_npz, tmp_path), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("test accuracy")


def on_a_terminal(argv: list[str]) -> str:
    """What `handnet ARGV` writes on stderr when stderr is a terminal (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, and tqdm would draw its bar in none of them.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "handnet.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        try:
            chunk = os.read(leader, 4096) if ready else b""
        except OSError:  # the process closed the terminal (EIO on Linux)
            chunk = b""
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert p.wait(timeout=120) == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow  # two real processes on a pseudo-terminal, each training and drawing its plots
def test_the_progress_bar_shows_on_a_terminal_and_quiet_hides_it(
    tiny_npz: Path, tmp_path: Path
) -> None:
    shown = on_a_terminal(train_argv(tiny_npz, tmp_path))
    assert re.search(r"epoch 1/2: +\d+%\|.*batch", shown), shown  # tqdm's bar
    assert on_a_terminal([*train_argv(tiny_npz, tmp_path), "--quiet"]) == ""
