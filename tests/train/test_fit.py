"""The training loop: determinism, dtype, overfitting a tiny set, divergence, and real MNIST."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from conftest import meta_classifier, tiny_dataset

from handnet.data import Dataset
from handnet.errors import ConfigError, ModelFileError, TrainingDiverged
from handnet.train.config import Rngs, TrainConfig, load_config_file
from handnet.train.fit import TrainState, evaluate, fit
from handnet.train.runs import load_run_data


def run(cfg: TrainConfig, data: Dataset) -> TrainState:
    state = TrainState.fresh(cfg, data.n_features, data.n_classes, Rngs.from_seed(cfg.seed))
    fit(state, data, cfg, progress=False)
    return state


def test_same_seed_gives_bit_identical_weights() -> None:
    data = tiny_dataset()
    cfg = TrainConfig(hidden_sizes=(16,), epochs=3, batch_size=8, dropout=0.3, weight_decay=1e-3)
    a, b = run(cfg, data), run(cfg, data)
    for k, v in a.model.parameters().items():
        np.testing.assert_array_equal(v, b.model.parameters()[k])
    c = run(
        TrainConfig(
            hidden_sizes=(16,), epochs=3, batch_size=8, dropout=0.3, weight_decay=1e-3, seed=1
        ),
        data,
    )
    assert not np.array_equal(
        a.model.parameters()["layers.0.W"], c.model.parameters()["layers.0.W"]
    )


def test_dtype_stays_float32_through_training() -> None:
    data = tiny_dataset()
    state = run(
        TrainConfig(hidden_sizes=(8, 8), epochs=1, batch_size=16, dropout=0.2, nesterov=True), data
    )
    for arrays in (state.model.parameters(), state.model.gradients(), state.opt.velocity):
        assert {a.dtype for a in arrays.values()} == {np.dtype(np.float32)}


def test_overfits_a_tiny_subset() -> None:
    data = tiny_dataset(n=32, d=10, c=4)
    cfg = TrainConfig(
        hidden_sizes=(64,),
        epochs=300,
        batch_size=8,
        lr=0.1,
        warmup_epochs=0,
        val_size=0,
        dropout=0.0,
        weight_decay=0.0,
    )
    state = run(cfg, data)
    assert state.history[-1]["train_loss"] < 0.01
    assert evaluate(state.model, data.X_train, data.y_train).accuracy == 1.0


def test_history_records_every_epoch() -> None:
    state = run(TrainConfig(hidden_sizes=(8,), epochs=4, batch_size=10), tiny_dataset())
    assert [r["epoch"] for r in state.history] == [1, 2, 3, 4]
    assert set(state.history[0]) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
    }
    assert state.step == 4 * 7 and state.history[-1]["lr"] < 0.01  # the cosine ends near 0


def test_progress_lines_say_when_there_is_no_validation_split(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tiny_dataset()
    cfg = TrainConfig(hidden_sizes=(8,), epochs=1, batch_size=16)
    fit(TrainState.fresh(cfg, 20, 3, Rngs.from_seed(0)), data, cfg, progress=True)
    assert "val_acc" in capsys.readouterr().err
    no_val = dataclasses.replace(data, X_val=data.X_val[:0], y_val=data.y_val[:0])
    fit(TrainState.fresh(cfg, 20, 3, Rngs.from_seed(0)), no_val, cfg, progress=True)
    line = capsys.readouterr().err
    assert "no validation" in line and "nan" not in line and "val_acc" not in line


def test_divergence_raises_a_clear_error() -> None:
    data = tiny_dataset()
    data.X_train *= 1e30
    with pytest.raises(TrainingDiverged, match=r"at epoch \d+, step \d+ \(lr"):
        run(
            TrainConfig(hidden_sizes=(8,), epochs=2, lr=5.0, activation="relu", warmup_epochs=0),
            data,
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", -0.1),
        ("dropout", 1.0),
        ("batch_size", 0),
        ("hidden_sizes", (0,)),
        ("activation", "sigmoid"),
        ("epochs", 0),
        ("momentum", 1.0),
        ("weight_decay", -1.0),
        ("warmup_epochs", 99.0),
        ("split_seed", -1),
    ],
)
def test_config_rejects_out_of_range(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"hidden_sizes": "512"}, r"hidden_sizes='512': must be a list of whole numbers"),
        ({"hidden_sizes": [100.9]}, "hidden_sizes"),
        ({"hidden_sizes": 512}, "hidden_sizes"),
        ({"epochs": 2.5}, "epochs=2.5: must be a whole number"),
        ({"batch_size": 100.7}, "batch_size"),
        ({"seed": True}, "seed"),
        ({"split_seed": 1.5}, "split_seed"),
        ({"lr": "0.1"}, "lr='0.1': must be a number"),
        ({"dataset": 3}, "dataset=3: must be a string"),
    ],
)
def test_config_rejects_wrong_types_instead_of_truncating(
    setting: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(setting, where="recipe.toml")


def test_config_turns_numpy_scalars_and_ints_for_floats_into_python_numbers() -> None:
    cfg = TrainConfig(epochs=np.int64(3), lr=1, hidden_sizes=np.array([4, 5]))  # type: ignore[arg-type]
    assert (cfg.epochs, cfg.lr, cfg.hidden_sizes) == (3, 1.0, (4, 5))
    assert type(cfg.epochs) is int and type(cfg.lr) is float
    assert all(type(h) is int for h in cfg.hidden_sizes)


def test_config_dict_round_trip_and_unknown_keys() -> None:
    cfg = TrainConfig(hidden_sizes=(3, 4), lr=0.2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown setting"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_stored_in_reads_a_model_files_config() -> None:
    cfg = TrainConfig(hidden_sizes=(3,), activation="relu", seed=9)
    assert TrainConfig.stored_in(meta_classifier({"config": cfg.to_dict()})) == cfg
    with pytest.raises(ModelFileError, match="stores no training config"):
        TrainConfig.stored_in(meta_classifier({}))
    with pytest.raises(ModelFileError, match=r"^the model's stored config: unknown setting"):
        TrainConfig.stored_in(meta_classifier({"config": {"learning_rate": 0.1}}))


def test_split_seed_moves_the_split_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 4, 4)).astype(np.uint8)
    y = np.repeat(np.arange(3), 40)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:9], y_test=y[:9])
    path = str(tmp_path / "d.npz")

    def data_and_init(**kw: Any) -> tuple[np.ndarray, np.ndarray]:
        cfg = TrainConfig(dataset=path, val_size=30, **kw)
        rngs = Rngs.for_config(cfg)
        return load_run_data(cfg, rngs.split).X_val, rngs.init.random(3)

    val1, init1 = data_and_init(seed=1)
    val2, init2 = data_and_init(seed=2)
    assert not np.array_equal(val1, val2) and not np.array_equal(init1, init2)
    shared1, init1b = data_and_init(seed=1, split_seed=5)
    shared2, init2b = data_and_init(seed=2, split_seed=5)
    np.testing.assert_array_equal(shared1, shared2)  # one validation set for both
    np.testing.assert_array_equal(shared1, data_and_init(seed=5)[0])  # the split of seed 5
    np.testing.assert_array_equal(init1b, init1)  # everything else still from seed
    np.testing.assert_array_equal(init2b, init2)


def test_split_seed_is_written_only_when_set(tmp_path: Path) -> None:
    plain = TrainConfig().to_dict()
    assert "split_seed" not in plain and TrainConfig.from_dict(plain) == TrainConfig()
    shared = TrainConfig(seed=3, split_seed=7)
    assert shared.to_dict()["split_seed"] == 7
    (tmp_path / "config.toml").write_text(tomli_w.dumps(shared.to_dict()))  # as runs write it
    assert TrainConfig.from_dict(load_config_file(tmp_path / "config.toml")) == shared


@pytest.mark.slow
def test_short_run_on_real_mnist_passes_90_percent(mnist: Dataset) -> None:
    cfg = TrainConfig(hidden_sizes=(64,), epochs=1, batch_size=128, lr=0.05)
    state = run(cfg, mnist)
    assert evaluate(state.model, mnist.X_val, mnist.y_val).accuracy > 0.90
    assert evaluate(state.model, mnist.X_test, mnist.y_test).accuracy > 0.90


RECIPES = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_are_valid_configs(recipe: Path) -> None:
    from handnet.train.config import load_config_file

    values = load_config_file(recipe)
    cfg = TrainConfig.from_dict(values, where=str(recipe))  # unknown keys and bad values raise
    assert {k: getattr(cfg, k) for k in values} == {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
    }
