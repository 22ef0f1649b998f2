"""A picture of what augmentation does: originals and augmented copies side by side, as a PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from handnet.files import atomic_write_bytes


def array_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A PNG of a (H, W) grayscale or (H, W, 3) RGB uint8 array, pixel for pixel."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def tile(images: npt.NDArray[np.floating], cols: int, pad: int = 2) -> npt.NDArray[np.uint8]:
    """Images (N, H, W) in [0, 1] as one grid, ``cols`` wide, white ink on black, gray gaps."""
    n, h, w = images.shape
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 96, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = np.clip(images[k] * 255 + 0.5, 0, 255).astype(np.uint8)
    return grid


def preview_grid(
    originals: npt.NDArray[np.floating], augmented: list[npt.NDArray[np.floating]], scale: int = 3
) -> npt.NDArray[np.uint8]:
    """Rows of 8: each original row is followed by one row per augmented version of it."""
    n = originals.shape[0]
    blocks = []
    for i in range(0, n, 8):
        blocks.append(originals[i : i + 8])
        blocks.extend(a[i : i + 8] for a in augmented)
    stacked = np.concatenate(blocks)
    grid = tile(stacked, cols=8)
    return np.kron(grid, np.ones((scale, scale), dtype=np.uint8))  # nearest-neighbour zoom


def write_preview(path: str | Path, grid: npt.NDArray[np.uint8]) -> Path:
    return atomic_write_bytes(path, array_png(grid))
