"""Flat rows are images: a row of 784 pixels is a 28x28 image in every loader, so the default
recipe, augmentation included, trains on the .mat layouts people download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from handnet.data import load_splits
from handnet.data.formats import as_images
from handnet.errors import ConfigError
from handnet.train.config import TrainConfig
from handnet.train.modelfile import load_model
from handnet.train.runs import train_run

SMALL: dict[str, Any] = {"batch_size": 16, "warmup_epochs": 0.0}  # a few dozen images

RNG = np.random.default_rng(0)
IMGS = RNG.integers(0, 256, (60, 28, 28), dtype=np.uint8)
LABELS = np.arange(60) % 3


def test_square_rows_become_images_row_by_row_and_others_stay_flat() -> None:
    flat = IMGS.reshape(60, 784)
    np.testing.assert_array_equal(as_images(flat), IMGS)
    assert as_images(flat[:, :30]).shape == (60, 30)  # not a square
    assert as_images(flat[:, :1]).shape == (60, 1)  # 1 = 1 x 1 is no image
    assert as_images(IMGS) is IMGS


def roweis(path: Path) -> Path:
    """Roweis' mnist_all.mat: train0..train9 and test0..test9, flat uint8 rows."""
    flat = IMGS.reshape(60, 784)
    d = {f"train{k}": flat[6 * k : 6 * k + 5] for k in range(10)}
    d |= {f"test{k}": flat[6 * k + 5 : 6 * k + 6] for k in range(10)}
    scipy.io.savemat(path, d)
    return path


def train_x(path: Path) -> Path:
    """mnist.mat: trainX/trainY/testX/testY, flat rows and labels as a (1, N) row."""
    flat = IMGS.reshape(60, 784)
    scipy.io.savemat(
        path,
        {
            "trainX": flat[:48],
            "trainY": LABELS[None, :48],
            "testX": flat[48:],
            "testY": LABELS[48:],
        },
    )
    return path


@pytest.mark.parametrize("write", [roweis, train_x], ids=["mnist_all.mat", "mnist.mat"])
def test_the_default_recipe_with_augmentation_trains_on_both_mat_layouts(
    write, tmp_path: Path
) -> None:
    path = write(tmp_path / "digits.mat")
    splits, _ = load_splits(str(path))
    assert splits.X_train.shape[1:] == (28, 28)
    cfg = TrainConfig(dataset=str(path), hidden_sizes=(8,), epochs=1, val_size=5, **SMALL)
    assert cfg.augment_spec().active  # the default recipe shifts every batch
    result = train_run(cfg, out=tmp_path / "runs", progress=False)
    assert load_model(result.model_path).image_shape == (28, 28)


def test_rows_that_are_not_square_name_the_dataset_and_shape_when_augmented(
    tmp_path: Path,
) -> None:
    path = tmp_path / "features.npz"
    x = IMGS.reshape(60, 784)[:, :30]
    np.savez(path, x_train=x[:48], y_train=LABELS[:48], x_test=x[48:], y_test=LABELS[48:])
    cfg = TrainConfig(dataset=str(path), hidden_sizes=(8,), epochs=1, val_size=5, **SMALL)
    with pytest.raises(ConfigError, match=r"features\.npz: augmentation needs square .*\(30,\)"):
        train_run(cfg, out=tmp_path / "runs", progress=False)
    plain = TrainConfig(
        dataset=str(path), hidden_sizes=(8,), epochs=1, val_size=5, aug_shift=0.0, **SMALL
    )  # without augmentation the same rows train as features
    result = train_run(plain, out=tmp_path / "runs", progress=False)
    assert load_model(result.model_path).image_shape == (30,)
