"""The minimal PNG writer produces a file whose pixels decode back exactly."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from handnet.report.preview import png_bytes, preview_grid


def decode_gray_png(raw: bytes) -> np.ndarray:
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(raw):
        (n,) = struct.unpack(">I", raw[pos : pos + 4])
        kind, data = raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", raw[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(kind + data)
        chunks[kind] = data
        pos += 12 + n
    w, h, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 0) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, w + 1)
    assert np.all(rows[:, 0] == 0)
    return rows[:, 1:]


def test_png_round_trip() -> None:
    img = np.random.default_rng(0).integers(0, 256, (7, 13)).astype(np.uint8)
    np.testing.assert_array_equal(decode_gray_png(png_bytes(img)), img)


def test_grid_places_originals_above_their_augmented_rows() -> None:
    orig = np.zeros((8, 28, 28))
    aug = np.ones((8, 28, 28))
    grid = decode_gray_png(png_bytes(preview_grid(orig, [aug], scale=1)))
    assert grid.shape == (2 * 30 + 2, 8 * 30 + 2)
    assert grid[2:30, 2:30].max() == 0 and grid[32:60, 2:30].min() == 255
