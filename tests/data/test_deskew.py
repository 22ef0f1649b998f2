"""Deskewing: slanted strokes come out upright, upright ones unchanged (its use by datasets and
model files is tested with width normalization in test_geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from handnet.data.deskew import deskew, slant
from handnet.errors import ConfigError


def stroke(top: tuple[float, float], bottom: tuple[float, float], width: float = 1.2) -> np.ndarray:
    """A 28x28 uint8 image of a thick line segment from ``top`` to ``bottom`` (row, col)."""
    r, c = np.mgrid[0:28, 0:28].astype(np.float64)
    (r0, c0), (r1, c1) = top, bottom
    t = np.clip(
        ((r - r0) * (r1 - r0) + (c - c0) * (c1 - c0)) / ((r1 - r0) ** 2 + (c1 - c0) ** 2), 0, 1
    )
    dist = np.hypot(r - (r0 + t * (r1 - r0)), c - (c0 + t * (c1 - c0)))
    return (255 * np.clip(width + 0.5 - dist, 0, 1)).astype(np.uint8)


def unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32).reshape(-1, 28, 28) / 255


def test_slanted_stroke_comes_out_upright_about_its_centre() -> None:
    img = stroke((4, 18), (23, 9))  # leaning right: the top is further right, alpha < 0
    alpha, r_bar = slant(unit(img[None]))
    assert alpha[0] == pytest.approx(-9 / 19, abs=0.05)
    out = deskew(img[None], (28, 28))
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    after, r_after = slant(unit(out))
    assert abs(after[0]) < 0.03
    assert r_after[0] == pytest.approx(r_bar[0], abs=0.1)  # rows stay where they are
    cols = np.arange(28)
    centre = lambda x: (x.sum(0) @ cols) / x.sum()  # noqa: E731
    assert centre(unit(out)[0]) == pytest.approx(centre(unit(img[None])[0]), abs=0.2)
    assert int(out.sum()) == pytest.approx(int(img.sum()), rel=0.02)  # ink is moved, not lost


def test_upright_and_blank_images_are_unchanged() -> None:
    upright = stroke((4, 14), (23, 14))
    blank = np.zeros((28, 28), np.uint8)
    out = deskew(np.stack([upright, blank]), (28, 28))
    np.testing.assert_array_equal(out[0], upright)
    np.testing.assert_array_equal(out[1], blank)


def test_input_layouts_agree_and_batches_are_independent() -> None:
    imgs = np.stack([stroke((4, 20), (23, 8)), stroke((5, 8), (22, 17)), stroke((4, 14), (23, 12))])
    ref = deskew(imgs, (28, 28))
    np.testing.assert_array_equal(deskew(imgs.reshape(3, 784), (28, 28)), ref)  # flat rows
    np.testing.assert_array_equal(deskew(imgs.astype(np.float32) / 255, (28, 28)), ref)  # [0, 1]
    np.testing.assert_array_equal(deskew(imgs[1:2], (28, 28))[0], ref[1])  # alone or in a batch


def test_needs_two_dimensional_images() -> None:
    with pytest.raises(ConfigError, match="deskew: needs images of shape"):
        deskew(np.zeros((2, 20), np.uint8), (20,))
