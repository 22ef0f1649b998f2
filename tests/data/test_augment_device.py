"""Augmentation on another array library (issue 26): a batch on a GPU is augmented where it
lives, from the same random draws as on NumPy, by the plain forms of the NumPy fast paths.

Run here on array-api-strict (the standard's strict reference, which refuses anything
NumPy-only) and PyTorch CPU tensors; on CuPy where a GPU is present."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from backends import backend_params, converter
from conftest import tiny_dataset

from handnet.data.augment import (
    Augmenter,
    AugmentSpec,
    batch_source,
    random_shifts,
    sample_bilinear,
    sample_plain,
    shift_bilinear,
    shift_plain,
)
from handnet.nn.arrays import namespace, to_numpy
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, fit

from .test_augment import SPECS, digits

FILL = -0.4


@pytest.mark.parametrize("shift", [0.5, 1.0, 2.0, 3.7])
def test_plain_shifts_are_the_fast_ones_on_numpy(shift: float) -> None:
    X = (digits(16).reshape(-1, 28, 28) * 2 - 0.5).astype(np.float32)
    t = random_shifts(16, AugmentSpec(shift=shift), np.random.default_rng(3))
    np.testing.assert_allclose(
        shift_plain(X, t, FILL), shift_bilinear(X, t, FILL), rtol=0, atol=2e-6
    )


def test_the_plain_sampler_is_the_fast_one_on_numpy() -> None:
    X = (digits(16).reshape(-1, 28, 28) * 2 - 0.5).astype(np.float32)
    rng = np.random.default_rng(5)
    rows = (rng.uniform(-4, 32, (16, 28, 28))).astype(np.float32)  # inside and outside
    cols = (rng.uniform(-4, 32, (16, 28, 28))).astype(np.float32)
    plain = sample_plain(X, rows, cols, FILL)
    fast = sample_bilinear(X, rows.copy(), cols.copy(), FILL)  # it overwrites rows and cols
    np.testing.assert_allclose(plain, fast, rtol=0, atol=2e-6)


@pytest.mark.parametrize("device", backend_params())
@pytest.mark.parametrize("name", list(SPECS))
def test_each_library_augments_as_numpy_does_from_the_same_seed(device: str, name: str) -> None:
    X = digits(16)
    move = converter(device)
    on_numpy = Augmenter(SPECS[name], (28, 28), np.random.default_rng(7), fill=FILL)
    there = Augmenter(SPECS[name], (28, 28), np.random.default_rng(7), fill=FILL)
    for _ in range(2):  # and the streams stay in step
        ref = on_numpy(X)
        out = there(move(X))
        assert type(out) is type(move(X)) and namespace(out) is namespace(move(X))
        got = to_numpy(out)
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("device", backend_params())
def test_batches_are_gathered_and_augmented_on_the_device(device: str) -> None:
    move = converter(device)
    X = move(digits(24))
    aug = Augmenter(AugmentSpec(shift=1.0), (28, 28), np.random.default_rng(1), fill=FILL)
    batches = list(batch_source(aug)(X, np.arange(24)[::-1].copy(), 10))
    assert [b.shape[0] for b in batches] == [10, 10, 4]
    assert all(namespace(b) is namespace(X) for b in batches)


@pytest.mark.parametrize("device", backend_params())
def test_fit_with_shifts_on_each_library_agrees_with_numpy(device: str) -> None:
    """The default recipe's shifts, run on the device: the same weights as on NumPy, within
    float32 rounding, because every random draw is the same."""
    data = tiny_dataset(n=96, d=64, c=3)
    data.image_shape = (8, 8)
    cfg = TrainConfig(hidden_sizes=(16,), epochs=2, batch_size=32, aug_shift=1.0, dropout=0.2)

    def run(cfg: TrainConfig) -> TrainState:
        rngs = Rngs.from_seed(0)
        state = TrainState.fresh(cfg, 64, 3, rngs)
        aug = Augmenter(cfg.augment_spec(), (8, 8), rngs.augment, fill=data.norm.black)
        fit(state, data, cfg, progress=False, batch_source=batch_source(aug))
        return state

    ref = run(cfg)
    got = run(dataclasses.replace(cfg, device=device))
    for k, p in got.model.parameters().items():
        np.testing.assert_allclose(p, ref.model.parameters()[k], rtol=0, atol=1e-5)
