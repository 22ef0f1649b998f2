"""Finding a model's validation images again from the config in its file."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import meta_classifier

from handnet.data import load_splits
from handnet.data.geometry import Geometry
from handnet.errors import ConfigError, ModelFileError
from handnet.train.config import Rngs, TrainConfig
from handnet.train.heldout import held_out_images, held_out_rows, run_config
from handnet.train.runs import load_run_data


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An .npz of 1,000 random 28x28 training images in 10 classes (and 100 test images): the
    split does not care what the images show, and MNIST takes seconds to load."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    X = rng.integers(0, 256, (1100, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 1100)
    np.savez(path, x_train=X[:1000], y_train=y[:1000], x_test=X[1000:], y_test=y[1000:])
    return str(path)


@pytest.mark.parametrize("split_seed", [None, 7])
def test_held_out_rows_are_the_rows_the_run_validated_on(
    digits: str, split_seed: int | None
) -> None:
    cfg = TrainConfig(dataset=digits, seed=3, split_seed=split_seed, val_size=200)
    data = load_run_data(cfg, Rngs.for_config(cfg).split)
    splits, _ = load_splits(digits)
    rows = held_out_rows(cfg, splits.y_train)
    assert len(rows) == 200
    np.testing.assert_array_equal(splits.y_train[rows], data.y_val)
    raw = splits.X_train[rows].reshape(200, -1).astype(np.float32) / np.float32(255)
    np.testing.assert_allclose(data.norm.apply(raw), data.X_val, atol=1e-6)
    # the split seed alone decides the rows: another run seed holds out the same ones
    other = TrainConfig(
        dataset=digits, seed=4, split_seed=split_seed if split_seed is not None else 3, val_size=200
    )
    np.testing.assert_array_equal(held_out_rows(other, splits.y_train), rows)
    another_split = TrainConfig(dataset=digits, seed=3, split_seed=8, val_size=200)
    assert not np.array_equal(held_out_rows(another_split, splits.y_train), rows)


def test_run_config_takes_data_and_preparation_from_the_file() -> None:
    stored = TrainConfig(dataset="mnist", seed=9).to_dict()
    clf = meta_classifier({"config": stored, "dataset": "kmnist"}, Geometry(deskew=True, width=16))
    cfg = run_config(clf, "m.safetensors")
    assert (cfg.dataset, cfg.deskew, cfg.width_normalize, cfg.seed) == ("kmnist", True, 16, 9)


def test_run_config_needs_a_stored_config() -> None:
    with pytest.raises(
        ModelFileError, match=r"m\.safetensors: the model file stores no training config"
    ):
        run_config(meta_classifier({}), "m.safetensors")
    broken = {"config": TrainConfig().to_dict() | {"val_size": -1}}
    with pytest.raises(
        ModelFileError, match=r"^m\.safetensors: the model's stored config: val_size"
    ):
        run_config(meta_classifier(broken), "m.safetensors")


def test_committee_members_must_share_the_dataset() -> None:
    mnist = meta_classifier({"config": TrainConfig(dataset="mnist").to_dict(), "dataset": "mnist"})
    kmnist = meta_classifier(
        {"config": TrainConfig(dataset="kmnist").to_dict(), "dataset": "kmnist"}
    )
    with pytest.raises(ConfigError, match=r"^b: trained on kmnist, a on mnist$"):
        held_out_images([mnist, kmnist], ["a", "b"])
