"""A run's settings as a person reads them: only those in effect, --help's order, yes/no."""

from __future__ import annotations

import dataclasses

from handnet.report.html import run_report
from handnet.report.settings import settings_in_effect
from handnet.train.config import TrainConfig
from report.test_templates import a_run

DEFAULT = TrainConfig().to_dict()


def names(config: dict) -> list[str]:
    return [name for name, _ in settings_in_effect(config)]


def test_the_defaults_leave_out_what_is_off() -> None:
    rows = dict(settings_in_effect(DEFAULT))
    # elastic distortions, the refit and the split seed are off: their details change nothing
    assert not {"aug_elastic_sigma", "finetune_ridge", "split_seed"} & set(rows)
    assert rows["deskew"] == "no" and rows["nesterov"] == "no" and rows["finetune"] == "no"
    assert rows["hidden_sizes"] == "1024" and rows["lr"] == "0.05"
    assert names(DEFAULT)[:4] == ["dataset", "deskew", "width_normalize", "val_size"]  # data first
    assert len(rows) == len(dataclasses.fields(TrainConfig)) - 3


def test_a_setting_shows_once_what_it_depends_on_is_on() -> None:
    on = DEFAULT | {"aug_elastic_alpha": 34.0, "finetune": True, "hidden_sizes": [800, 800]}
    rows = dict(settings_in_effect(on))
    assert rows["aug_elastic_sigma"] == "4.0" and rows["finetune_ridge"] == "1.0"
    assert rows["finetune"] == "yes" and rows["hidden_sizes"] == "800, 800"
    assert "split_seed" in names(DEFAULT | {"split_seed": 3})


def test_no_augmentation_leaves_out_its_copies_and_thread() -> None:
    plain = DEFAULT | {"aug_shift": 0.0, "aug_thread": True}
    assert not {"augment_copies", "aug_thread"} & set(names(plain))
    assert {"augment_copies", "aug_thread"} <= set(names(plain | {"aug_rotate": 10.0}))


def test_a_setting_this_version_does_not_know_comes_last() -> None:
    assert names({"zeta": 1, "lr": 0.1, "alpha": 2}) == ["lr", "alpha", "zeta"]


def test_the_reports_configuration_table_shows_the_settings_in_effect() -> None:
    view = a_run()
    view.clf.meta["config"] = DEFAULT | {"deskew": True}
    page = run_report(view, {})
    assert "<td>deskew</td><td>yes</td>" in page and "<td>nesterov</td><td>no</td>" in page
    assert "<td>aug_elastic_alpha</td><td>0.0</td>" in page
    assert "aug_elastic_sigma" not in page and "finetune_ridge" not in page
    table = page[page.index("<td>dataset</td><td>mnist</td>") :]
    assert table.index("<td>hidden_sizes</td>") < table.index("<td>epochs</td>")  # --help's order
