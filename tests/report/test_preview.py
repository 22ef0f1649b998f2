"""Arrays become PNGs pixel for pixel; tiles are laid out in a grid; the preview puts each original
above its augmented copies."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from handnet.report.preview import array_png, mosaic, preview_grid


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
    frame = np.ones(grid.shape, dtype=bool)  # gray frames: around the grid and between digits
    for r in range(2):
        for c in range(8):
            frame[2 + 30 * r : 30 + 30 * r, 2 + 30 * c : 30 + 30 * c] = False
    assert np.all(grid[frame] == 96)


def test_mosaic_lays_tiles_out_row_by_row_with_gaps_between_only() -> None:
    tiles = np.arange(1, 4, dtype=float)[:, None, None] * np.ones((3, 2, 2))  # tiles of 1s, 2s, 3s
    n = np.nan
    expected = [
        [1, 1, n, 2, 2],
        [1, 1, n, 2, 2],
        [n, n, n, n, n],
        [3, 3, n, n, n],
        [3, 3, n, n, n],
    ]  # the fourth place is empty: filled like the gaps
    np.testing.assert_array_equal(mosaic(tiles, cols=2), expected)
    np.testing.assert_array_equal(
        mosaic(tiles[:2], cols=1, gap=2, fill=0.5)[:, 0], [1, 1, 0.5, 0.5, 2, 2]
    )


def test_a_last_row_of_fewer_than_8_keeps_each_version_under_its_original() -> None:
    """12 originals, two versions: rows of 8 originals, 8 of each version, then 4 of each,
    filled up with blank tiles (handnet augment-preview --n takes any N)."""
    orig = np.zeros((12, 28, 28))
    versions = [np.ones((12, 28, 28)), np.full((12, 28, 28), 0.5)]
    _, grid = decode(array_png(preview_grid(orig, versions, scale=1)))
    assert grid.shape == (6 * 30 + 2, 8 * 30 + 2)
    tile = lambda r, c: grid[2 + 30 * r : 30 + 30 * r, 2 + 30 * c : 30 + 30 * c]  # noqa: E731
    for r, value in ((3, 0), (4, 255), (5, 128)):  # the second block: originals 8-11, versions
        assert all(np.all(tile(r, c) == value) for c in range(4))
        assert all(np.all(tile(r, c) == 96) for c in range(4, 8))  # blank: the frame's gray
