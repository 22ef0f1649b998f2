"""Search spaces: the default, TOML files, bad files named in one-line errors, draws -> TrainConfig."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from handnet.errors import ConfigError
from handnet.search.space import DEFAULT_SPACE, load_space, space_from_dict
from handnet.train.config import TrainConfig


def test_default_space_covers_the_issue_parameters_with_log_where_it_matters() -> None:
    by_name = {p.name: p for p in DEFAULT_SPACE.params}
    assert set(by_name) == {
        "lr",
        "weight_decay",
        "hidden_units",
        "dropout",
        "momentum",
        "batch_size",
    }
    assert by_name["lr"].log and by_name["weight_decay"].log and by_name["hidden_units"].log
    assert by_name["hidden_units"].kind == "int" and not by_name["dropout"].log


def test_a_fixed_trial_becomes_the_matching_train_config() -> None:
    base = TrainConfig(epochs=3, seed=7)
    trial = optuna.trial.FixedTrial(
        {
            "lr": 0.01,
            "weight_decay": 1e-5,
            "hidden_units": 64,
            "dropout": 0.1,
            "momentum": 0.8,
            "batch_size": 100,
        }
    )
    cfg = DEFAULT_SPACE.config(trial, base)
    assert cfg.hidden_sizes == (64,) and cfg.lr == 0.01 and cfg.batch_size == 100
    assert cfg.epochs == 3 and cfg.seed == 7  # the base is kept where the space says nothing


def test_toml_file_with_choices_and_fixed(tmp_path: Path) -> None:
    f = tmp_path / "space.toml"
    f.write_text(
        "[params.lr]\nlow = 0.001\nhigh = 0.1\nlog = true\n"
        '[params.activation]\nchoices = ["tanh", "relu"]\n'
        "[fixed]\ndropout = 0.0\n"
    )
    space = load_space(f)
    cfg = space.config(optuna.trial.FixedTrial({"lr": 0.05, "activation": "relu"}), TrainConfig())
    assert (cfg.lr, cfg.activation, cfg.dropout) == (0.05, "relu", 0.0)
    assert space.to_dict()["params"]["activation"] == {"choices": ["tanh", "relu"]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"params": {"learning_rate": {"low": 1, "high": 2}}}, "unknown parameter 'learning_rate'"),
        ({"params": {"lr": {"low": 0.0, "high": 1.0, "log": True}}}, "log range needs low > 0"),
        ({"params": {"lr": {"low": 1.0, "high": 0.1}}}, "low <= high"),
        ({"params": {"hidden_units": {"type": "int", "low": 1.5, "high": 9}}}, "must be int"),
        ({"params": {"lr": {"high": 1.0}}}, "needs low"),
        # a whole-number setting drawn as a float would fail every trial after its draw
        ({"params": {"batch_size": {"low": 32, "high": 512}}}, 'add type = "int"'),
        ({"params": {"activation": {"choices": ["tanh", "sigmoid"]}}}, "activation='sigmoid'"),
        ({"params": {"hidden_units": {"choices": [64, "128"]}}}, "list of whole numbers"),
        ({"params": {}}, "nothing to search"),
        ({"params": {"lr": {"low": 0.1, "high": 1.0}}, "fixed": {"lr": 0.1}}, "both searched"),
        ({"params": {"lr": {"low": 0.1, "high": 1.0}}, "fixed": {"dropout": 2.0}}, "dropout"),
        ({"params": {"lr": {"low": 0.1, "high": 1.0}}, "grid": {}}, "unknown table"),
        # the data every trial shares comes from the search's flags, not from the space
        ({"params": {"seed": {"type": "int", "low": 0, "high": 9}}}, "handnet search --seed"),
        ({"params": {"width_normalize": {"choices": [0, 18]}}}, "--width-normalize"),
        ({"params": {"lr": {"low": 0.1, "high": 1.0}}, "fixed": {"deskew": True}}, "--deskew"),
        ({"params": {"lr": {"low": 0.1, "high": 1.0}}, "fixed": {"val_size": 0}}, "--val-size"),
        (
            {"params": {"lr": {"low": 0.1, "high": 1.0}}, "fixed": {"dataset": "kmnist"}},
            "--dataset",
        ),
    ],
)
def test_bad_spaces_name_the_file_and_the_problem(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        space_from_dict(doc, where="my.toml")
    assert str(e.value).startswith("my.toml")


def test_missing_space_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_space(tmp_path / "nope.toml")
