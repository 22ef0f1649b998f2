"""Arrays become PNGs pixel for pixel; the preview puts each original above its augmented copies."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from handnet.report.preview import array_png, preview_grid


def decode(raw: bytes) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(raw)) as im:
        assert im.format == "PNG"
        return im.mode, np.asarray(im)


@pytest.mark.parametrize(("shape", "mode"), [((7, 13), "L"), ((5, 4, 3), "RGB")])
def test_png_round_trip(shape: tuple[int, ...], mode: str) -> None:
    img = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    got_mode, pixels = decode(array_png(img))
    assert got_mode == mode
    np.testing.assert_array_equal(pixels, img)


def test_grid_places_originals_above_their_augmented_rows() -> None:
    orig = np.zeros((8, 28, 28))
    aug = np.ones((8, 28, 28))
    _, grid = decode(array_png(preview_grid(orig, [aug], scale=1)))
    assert grid.shape == (2 * 30 + 2, 8 * 30 + 2)
    assert grid[2:30, 2:30].max() == 0 and grid[32:60, 2:30].min() == 255
