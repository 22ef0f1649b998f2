"""A picture of what augmentation does: originals and augmented copies side by side, as a PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from handnet.files import atomic_write_bytes

_FRAME = 96  # the gray between and around the digits


def array_png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A PNG of a (H, W) grayscale or (H, W, 3) RGB uint8 array, pixel for pixel.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W) or (H, W, 3)
        Grayscale or RGB pixels.

    Returns
    -------
    bytes
        The PNG file's bytes.
    """
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def mosaic(
    tiles: npt.NDArray[np.floating], cols: int, gap: int = 1, fill: float = math.nan
) -> npt.NDArray[np.float64]:
    """Tiles (N, H, W) as one image, ``cols`` wide, row by row.

    ``gap`` pixels of ``fill`` go between the tiles (none around them), and a last row that
    is not full is filled with ``fill`` too. The preview's digits and the first layer's weights
    (`handnet.report.model_plots.plot_first_layer`, NaN gaps drawn as background) are laid out
    so.

    Parameters
    ----------
    tiles : ndarray of floating, shape (N, H, W)
        The tiles, in reading order.
    cols : int
        Tiles per row.
    gap : int, default=1
        Pixels between neighbouring tiles.
    fill : float, default=NaN
        The value of the gaps and of the empty places.

    Returns
    -------
    ndarray of float64, shape (Hm, Wm)
        The mosaic: ``Hm = rows * (H + gap) - gap`` and ``Wm = cols * (W + gap) - gap``, with
        ``rows = ceil(N / cols)``.
    """
    n, h, w = tiles.shape
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), fill)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * (h + gap), c * (w + gap)
        out[y : y + h, x : x + w] = tiles[k]
    return out


def preview_grid(
    originals: npt.NDArray[np.floating], augmented: list[npt.NDArray[np.floating]], scale: int = 3
) -> npt.NDArray[np.uint8]:
    """Rows of 8: each original row is followed by one row per augmented version of it.

    White ink on black, in gray frames 2 px wide. When N is not a multiple of 8, the last row of
    originals and each of its versions are filled up with blank (gray) tiles, so that every
    version stays under its original.

    Parameters
    ----------
    originals : ndarray of floating, shape (N, H, W)
        The original images, pixels in [0, 1].
    augmented : list of ndarray, each of shape (N, H, W)
        Augmented versions of ``originals``, image for image, pixels in [0, 1].
    scale : int, default=3
        The zoom: each pixel becomes a ``scale`` x ``scale`` square (nearest neighbour).

    Returns
    -------
    ndarray of uint8, shape (Hg, Wg)
        The grayscale picture, for `array_png`: ``Hg = scale * (R * (H + 2) + 2)`` and
        ``Wg = scale * (8 * (W + 2) + 2)``, with ``R = ceil(N / 8) * (1 + len(augmented))``
        rows of images.
    """
    n = originals.shape[0]
    gray = _FRAME / 255
    blocks = []
    for i in range(0, n, 8):
        for images in (originals, *augmented):
            row = images[i : i + 8]
            blank = np.full((8 - len(row), *row.shape[1:]), gray, dtype=row.dtype)
            blocks.append(np.concatenate([row, blank]))  # a whole row of 8 tiles
    grid = np.pad(mosaic(np.concatenate(blocks), cols=8, gap=2, fill=gray), 2, constant_values=gray)
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.kron(pixels, np.ones((scale, scale), dtype=np.uint8))  # nearest-neighbour zoom


def write_preview(path: str | Path, grid: npt.NDArray[np.uint8]) -> Path:
    """Write a picture (as `preview_grid` makes it) to ``path`` as a PNG, atomically.

    Parameters
    ----------
    path : str or Path
        Where the PNG goes.
    grid : ndarray of uint8, shape (H, W) or (H, W, 3)
        The pixels, grayscale or RGB.

    Returns
    -------
    Path
        The file written.
    """
    return atomic_write_bytes(path, array_png(grid))
