"""handnet.train.rundir: a run folder's name, its history file, and the model a path names (the
command line's side of it is in tests/cli/test_habits.py)."""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from handnet.errors import ModelFileError
from handnet.train.checkpoint import CHECKPOINT_NAME
from handnet.train.rundir import HISTORY_FIELDS, history_csv, run_model, run_name


def test_run_names_sort_by_time_and_do_not_collide() -> None:
    at = datetime(2026, 12, 5, 9, 7, 3)
    names = {run_name(at) for _ in range(50)}
    assert len(names) == 50  # six random hex digits: two runs in one second differ
    assert all(re.fullmatch(r"model-20261205-090703-[0-9a-f]{6}", n) for n in names)
    assert run_name(datetime(2026, 12, 5, 10, 0, 0)) > max(names)


def test_history_csv_has_a_header_and_a_row_per_epoch() -> None:
    rows = [{k: float(i) for k in HISTORY_FIELDS} | {"epoch": i, "extra": 9.0} for i in (1, 2)]
    read = list(csv.DictReader(io.StringIO(history_csv(rows))))
    assert [list(r) for r in read] == [list(HISTORY_FIELDS)] * 2  # extra keys are left out
    assert [r["epoch"] for r in read] == ["1", "2"]


def _run(runs: Path, name: str, finished: bool = True) -> Path:
    d = runs / name
    d.mkdir(parents=True)
    (d / (f"{name}.safetensors" if finished else CHECKPOINT_NAME)).write_bytes(b"x")
    return d


def test_a_file_is_itself_and_a_run_directory_its_model(tmp_path: Path) -> None:
    d = _run(tmp_path, "model-20261205-090000-aaaaaa")
    model = d / f"{d.name}.safetensors"
    assert run_model(model) == model
    assert run_model(d) == model
    assert run_model(tmp_path / "missing.safetensors") == tmp_path / "missing.safetensors"
    renamed = tmp_path / "mine"
    d.rename(renamed)  # a run folder renamed by hand: its one model file
    assert run_model(renamed) == renamed / f"{d.name}.safetensors"


def test_latest_is_the_newest_finished_run(tmp_path: Path) -> None:
    old = _run(tmp_path, "model-20261205-090000-aaaaaa")
    new = _run(tmp_path, "model-20261205-100000-bbbbbb")
    _run(tmp_path, "model-20261205-110000-cccccc", finished=False)  # newer, but unfinished
    assert run_model(tmp_path / "latest") == new / f"{new.name}.safetensors"
    os.utime(old / f"{old.name}.safetensors", (0, 0))  # the start time in the name decides
    assert run_model(tmp_path / "latest").parent == new


def test_what_names_no_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no finished run in"):
        run_model(tmp_path / "latest")
    unfinished = _run(tmp_path, "model-20261205-110000-cccccc", finished=False)
    with pytest.raises(ModelFileError, match=r"an unfinished run.*--resume"):
        run_model(unfinished)
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.safetensors").write_bytes(b"x")
    (two / "b.safetensors").write_bytes(b"x")
    with pytest.raises(ModelFileError, match=r"2 \.safetensors files"):
        run_model(two)
