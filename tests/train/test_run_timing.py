"""Where a run's wall time went: the parts a finished run records in its metrics, and the line
``handnet train`` prints from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_dataset

from handnet.train.config import TrainConfig
from handnet.train.runs import time_line, train_run

PARTS = ("data loading", "augmentation", "steps", "evaluation", "finetune", "saving")


def test_a_run_records_where_its_time_went(tmp_path: Path) -> None:
    published: list[Any] = []

    def publish(*run: Any) -> None:
        published.append(run)

    cfg = TrainConfig(hidden_sizes=(8,), epochs=2, batch_size=16, aug_shift=0.0)
    res = train_run(cfg, out=tmp_path, data=tiny_dataset(), progress=False, publish=publish)
    assert len(published) == 1
    t = res.metrics["time"]
    assert set(t) == {*PARTS, "report", "wall"}
    assert all(v >= 0.0 for v in t.values())
    assert t["steps"] > 0.0 and t["evaluation"] > 0.0
    # the parts are disjoint stretches of the run, so together they fit in its wall time
    assert sum(v for k, v in t.items() if k != "wall") <= t["wall"]
    assert t["steps"] + t["augmentation"] <= res.metrics["train_seconds"]
    on_disk = json.loads((res.run_dir / "metrics.json").read_text())["time"]
    assert set(on_disk) == set(PARTS)  # the report and the wall end come after the file
    assert on_disk["steps"] == pytest.approx(t["steps"])


def test_time_line_names_every_part_and_the_rest() -> None:
    t = {"data loading": 0.61, "augmentation": 1.2, "steps": 15.0, "evaluation": 0.8}
    t |= {"finetune": 0.0, "saving": 0.1, "report": 1.4, "wall": 19.6}
    assert time_line({"time": t}) == (
        "time:   19.6 s = data loading 0.6 + augmentation 1.2 + steps 15.0 + evaluation 0.8 "
        "+ saving 0.1 + report 1.4 + other 0.5"
    )  # the finetune that did not run is left out


def test_the_last_progress_line_says_where_the_time_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = TrainConfig(hidden_sizes=(8,), epochs=2, batch_size=16, aug_shift=0.0)
    res = train_run(cfg, out=tmp_path, data=tiny_dataset(), progress=True)
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == time_line(res.metrics) and last.startswith("time: ")
