"""Augmentation: shapes, dtypes, determinism, identities, and where a transform moves a digit."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from conftest import tiny_dataset

from handnet.data.augment import (
    Augmenter,
    AugmentSpec,
    Prefetcher,
    affine_coords,
    affine_matrices,
    augmented_copies,
    batch_source,
    elastic_displacement,
    gaussian_matrix,
    random_shifts,
    sample_bilinear,
    shift_bilinear,
)
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, fit

SPECS = {
    "rotate": AugmentSpec(rotate=15),
    "scale": AugmentSpec(scale=0.15),
    "shift": AugmentSpec(shift=2),
    "shear": AugmentSpec(shear=15),
    "elastic": AugmentSpec(elastic_alpha=34, elastic_sigma=4),
    "elastic-fine": AugmentSpec(elastic_alpha=8, elastic_sigma=1.5),
    "all": AugmentSpec(rotate=15, scale=0.15, shift=2, shear=15, elastic_alpha=34),
}


def digits(n: int = 16, seed: int = 0) -> np.ndarray:
    """Blob 'digits' (n, 784) in [0, 1]: a few Gaussian strokes around off-centre points."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28), np.float32)
    for i in range(n):
        for _ in range(3):
            y, x = rng.uniform(8, 20, 2)
            out[i] += np.exp(-((r - y) ** 2 + (c - x) ** 2) / 6.0)
    return np.clip(out, 0, 1).reshape(n, 784)


def centre_of_mass(img: np.ndarray) -> np.ndarray:
    r, c = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return np.array([(r * img).sum(), (c * img).sum()]) / img.sum()


@pytest.mark.parametrize("name", list(SPECS))
def test_every_transform_keeps_shape_dtype_and_is_deterministic(name: str) -> None:
    X = digits()
    out = [Augmenter(SPECS[name], (28, 28), np.random.default_rng(s))(X) for s in (1, 1, 2)]
    assert out[0].shape == X.shape and out[0].dtype == np.float32
    np.testing.assert_array_equal(out[0], out[1])  # same seed, same images
    assert not np.array_equal(out[0], out[2])  # another seed, other images
    assert not np.array_equal(out[0], X)
    assert np.all(np.isfinite(out[0])) and out[0].min() >= -1e-6 and out[0].max() <= 1 + 1e-6


def test_identity_parameters_give_the_identity() -> None:
    X = digits()
    np.testing.assert_array_equal(
        Augmenter(AugmentSpec(), (28, 28), np.random.default_rng(0))(X), X
    )
    A = np.repeat(np.eye(2, dtype=np.float32)[None], len(X), axis=0)
    rows, cols = affine_coords(A, np.zeros((len(X), 2), np.float32), 28, 28)
    out = sample_bilinear(X.reshape(-1, 28, 28), rows, cols, fill=0.0)
    np.testing.assert_allclose(out.reshape(X.shape), X, atol=1e-6)


def test_elastic_with_alpha_zero_is_the_identity() -> None:
    X = digits(8)
    K = gaussian_matrix(28, 4.0, step=2)
    dr, dc = elastic_displacement(8, K, 0.0, np.random.default_rng(0))
    grid = np.mgrid[0:28, 0:28].astype(np.float32)
    out = sample_bilinear(X.reshape(-1, 28, 28), grid[0] + dr, grid[1] + dc, fill=0.0)
    np.testing.assert_allclose(out.reshape(X.shape), X, atol=1e-6)
    spec = AugmentSpec(elastic_alpha=0.0, elastic_sigma=4.0)
    np.testing.assert_array_equal(Augmenter(spec, (28, 28), np.random.default_rng(0))(X), X)


def test_fill_is_used_outside_the_image() -> None:
    X = np.full((1, 784), 0.5, np.float32)
    t = np.array([[0.0, 10.0]], np.float32)  # shift right by 10 pixels
    rows, cols = affine_coords(np.eye(2, dtype=np.float32)[None], t, 28, 28)
    out = sample_bilinear(X.reshape(1, 28, 28), rows, cols, fill=-3.0)[0]
    np.testing.assert_allclose(out[:, :10], -3.0)
    np.testing.assert_allclose(out[:, 10:], 0.5)


@pytest.mark.parametrize(
    ("theta_deg", "shift"),
    [(0.0, (2.0, -3.0)), (0.0, (0.5, 1.25)), (20.0, (0, 0)), (-35.0, (1, 2))],
)
def test_a_moved_digit_keeps_its_centre_of_mass_where_the_transform_says(
    theta_deg: float, shift: tuple[float, float]
) -> None:
    img = np.zeros((28, 28), np.float32)
    r, c = np.mgrid[0:28, 0:28]
    img += np.exp(-((r - 10.0) ** 2 + (c - 16.0) ** 2) / 4.0)  # a blob off the centre
    th = np.deg2rad(theta_deg)
    A = np.array([[[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]], np.float32)
    t = np.array([shift], np.float32)
    rows, cols = affine_coords(A, t, 28, 28)
    out = sample_bilinear(img[None], rows, cols, fill=0.0)[0]
    ctr = np.array([13.5, 13.5])
    expected = A[0] @ (centre_of_mass(img) - ctr) + ctr + t[0]
    np.testing.assert_allclose(centre_of_mass(out), expected, atol=0.05)
    assert out.sum() == pytest.approx(img.sum(), rel=0.02)  # a rotation/shift keeps the ink


@pytest.mark.parametrize("shift", [0.5, 1.0, 2.0, 3.7])
def test_shifts_without_gathers_are_the_bilinear_read_of_the_shifted_grid(shift: float) -> None:
    """The fast path (weighted sums of whole-pixel views) against the plain one: the general
    sampler at rows = i - t_row, cols = j - t_col, with the same random shifts from one seed."""
    X = (digits(32).reshape(-1, 28, 28) * 2 - 0.5).astype(np.float32)
    spec = AugmentSpec(shift=shift)
    t = random_shifts(32, spec, np.random.default_rng(3))
    A, t_affine = affine_matrices(32, spec, np.random.default_rng(3))
    np.testing.assert_array_equal(t, t_affine)  # the same draw as the affine path
    np.testing.assert_array_equal(A, np.repeat(np.eye(2, dtype=np.float32)[None], 32, axis=0))
    grid = np.mgrid[0:28, 0:28].astype(np.float32)
    rows = grid[0][None] - t[:, 0, None, None]
    cols = grid[1][None] - t[:, 1, None, None]
    plain = sample_bilinear(X, rows, cols, fill=-0.4)
    fast = shift_bilinear(X, t, fill=-0.4)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=2e-6)
    assert fast.dtype == np.float32 and fast.shape == X.shape


def test_the_augmenter_takes_the_shift_path_for_shifts_alone() -> None:
    X = digits(8)
    out = Augmenter(AugmentSpec(shift=1.0), (28, 28), np.random.default_rng(4), fill=-0.4)(X)
    t = random_shifts(8, AugmentSpec(shift=1.0), np.random.default_rng(4))
    np.testing.assert_array_equal(
        out, shift_bilinear(X.reshape(-1, 28, 28), t, -0.4).reshape(8, -1)
    )
    assert AugmentSpec(shift=1.0).shift_only and not AugmentSpec(shift=1.0, rotate=5).shift_only


def test_elastic_fields_are_alpha_K_u_K_transposed_from_the_same_draw() -> None:
    """The folded form against the plain one: u = 2 v - 1 from the same uniforms v, then
    alpha K u K^T; and ``around`` is added to both fields."""
    K, alpha = gaussian_matrix(28, 6.0, step=2), 36.0
    v = np.random.default_rng(7).random((2 * 5, 14, 14), dtype=np.float32)
    plain = alpha * np.matmul(np.matmul(K.astype(np.float64), 2.0 * v - 1), K.T.astype(np.float64))
    dr, dc = elastic_displacement(5, K, alpha, np.random.default_rng(7))
    np.testing.assert_allclose(np.concatenate([dr, dc]), plain, rtol=0, atol=2e-5)
    assert dr.dtype == np.float32 and 0.5 < plain.std() < 2.0  # about a pixel (sigma 6 is smooth)
    grid = np.mgrid[0:28, 0:28].astype(np.float32)
    rows, cols = elastic_displacement(5, K, alpha, np.random.default_rng(7), around=grid)
    np.testing.assert_allclose(rows, plain[:5] + grid[0], rtol=0, atol=2e-5)
    np.testing.assert_allclose(cols, plain[5:] + grid[1], rtol=0, atol=2e-5)


def test_coarse_fields_have_the_variance_of_full_resolution_ones() -> None:
    rng = np.random.default_rng(0)
    fine = elastic_displacement(400, gaussian_matrix(28, 4.0, 1), 34.0, rng)[0]
    coarse = elastic_displacement(400, gaussian_matrix(28, 4.0, 2), 34.0, rng)[0]
    inner = (slice(None), slice(8, 20), slice(8, 20))  # away from the zero-padded border
    ratio = coarse[inner].std() / fine[inner].std()
    assert 0.9 < ratio < 1.1
    assert 1.0 < fine[inner].std() < 2.0  # Simard's alpha 34, sigma 4: about 1.4 pixels


def test_augmented_copies_keep_the_originals_first() -> None:
    X = digits(10)
    aug = Augmenter(SPECS["shift"], (28, 28), np.random.default_rng(0))
    out = augmented_copies(X, 2, aug, chunk=4)
    assert out.shape == (30, 784) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:10], X)
    assert not np.array_equal(out[10:20], X) and not np.array_equal(out[10:20], out[20:])


def test_prefetcher_yields_what_sequential_augmentation_gives() -> None:
    X = digits(50)
    perm = np.random.default_rng(0).permutation(50)
    ahead = list(
        Prefetcher(X, perm, 16, Augmenter(SPECS["all"], (28, 28), np.random.default_rng(3)))
    )
    seq = Augmenter(SPECS["all"], (28, 28), np.random.default_rng(3))
    expected = [seq(X[perm[i : i + 16]]) for i in range(0, 50, 16)]
    assert [b.shape[0] for b in ahead] == [16, 16, 16, 2]
    for a, e in zip(ahead, expected):
        np.testing.assert_array_equal(a, e)


def test_prefetcher_hands_worker_errors_to_the_consumer() -> None:
    class Broken(Augmenter):
        def __call__(self, X: np.ndarray) -> np.ndarray:
            raise RuntimeError("augmentation failed")

    broken = Broken(AugmentSpec(shift=1.0), (28, 28), np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="augmentation failed"):
        list(Prefetcher(digits(4), np.arange(4), 2, broken))


def test_closing_a_prefetcher_rewinds_the_stream_to_the_first_batch_not_handed_out() -> None:
    X, spec = digits(32), AugmentSpec(rotate=10.0, elastic_alpha=8.0)
    inline = Augmenter(spec, (28, 28), np.random.default_rng(0))
    first = inline(X[:4])
    after_one_batch = inline.rng.bit_generator.state
    ahead = Augmenter(spec, (28, 28), np.random.default_rng(0))
    pf = Prefetcher(X, np.arange(32), 4, ahead)
    batches = iter(pf)
    np.testing.assert_array_equal(next(batches), first)
    for _ in range(1000):  # wait until the worker has drawn ahead: two batches queued
        if pf._q.full():
            break
        time.sleep(0.01)
    assert pf._q.full()
    pf.close()
    assert ahead.rng.bit_generator.state == after_one_batch


def test_fit_with_augmented_batches_is_reproducible() -> None:
    data = tiny_dataset(n=96, d=64, c=3)
    data.image_shape = (8, 8)
    cfg = TrainConfig(hidden_sizes=(16,), epochs=2, batch_size=32, aug_shift=1.0, dropout=0.0)

    def run() -> np.ndarray:
        rngs = Rngs.from_seed(0)
        state = TrainState.fresh(cfg, 64, 3, rngs)
        aug = Augmenter(cfg.augment_spec(), (8, 8), rngs.augment)
        fit(state, data, cfg, progress=False, batch_source=batch_source(aug, background=True))
        return state.model.parameters()["layers.0.W"].copy()

    np.testing.assert_array_equal(run(), run())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("aug_rotate", -1.0),
        ("aug_scale", 1.0),
        ("aug_shift", 20.0),
        ("aug_shear", 90.0),
        ("aug_elastic_alpha", -1.0),
        ("aug_elastic_sigma", 0.0),
        ("augment_copies", -1),
    ],
)
def test_config_rejects_bad_augmentation(field: str, value: Any) -> None:
    from handnet.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_augment_copies_needs_a_transform() -> None:
    from handnet.errors import ConfigError

    with pytest.raises(ConfigError, match="augment_copies"):
        TrainConfig(augment_copies=2, aug_shift=0.0)


def test_inline_and_background_sources_give_the_same_batches() -> None:
    X = digits(40)
    perm = np.random.default_rng(1).permutation(40)
    out = []
    for background in (False, True):
        aug = Augmenter(SPECS["all"], (28, 28), np.random.default_rng(5))
        out.append(list(batch_source(aug, background=background)(X, perm, 16)))
    assert len(out[0]) == len(out[1]) == 3
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
