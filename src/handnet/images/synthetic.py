"""Photos of numbers made from MNIST digits, and blank pages, to measure `handnet.images.numbers`.

A number is 2 to 6 digits written left to right at one size (each digit +-10%), a little above or
below the line, with gaps from a slight overlap (neighbours that touch) to a third of the digit
height, the whole slightly rotated. The page is paper under a photographer's light: a brightness
gradient across the page (the far side at 45-75% of the near one), a soft-edged shadow on part of
it (a third to a half darker), a fibrous paper texture and sensor noise, and a slight blur. A
blank page has the same paper and light and no digit.

Only NumPy and SciPy, and every draw from the ``rng`` passed in: the same seed, the same pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Box = tuple[int, int, int, int]  # (left, top, right, bottom), right and bottom exclusive


@dataclass(frozen=True)
class Page:
    """A photo and what it shows.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W)
        The photo in grayscale, dark ink on light paper.
    labels : tuple of int
        The digits' labels, left to right; empty for a blank page.
    boxes : tuple of (int, int, int, int)
        Each digit's box (left, top, right, bottom) in the photo, right and bottom exclusive.
    """

    image: npt.NDArray[np.uint8]
    labels: tuple[int, ...]
    boxes: tuple[Box, ...]

    @property
    def number(self) -> str:
        """The labels as a string, such as "2024"; "" for a blank page."""
        return "".join(map(str, self.labels))


def _ink_crop(digit: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """An MNIST digit's ink in [0, 1], cropped to its bounding box."""
    x = digit.astype(np.float32) * np.float32(1 / 255)
    rows, cols = np.flatnonzero(x.max(axis=1) > 0.05), np.flatnonzero(x.max(axis=0) > 0.05)
    return x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _scaled(x: npt.NDArray[np.float32], height: int) -> npt.NDArray[np.float32]:
    from scipy import ndimage

    s = height / x.shape[0]
    return np.clip(ndimage.zoom(x, s, order=3, prefilter=False), 0, 1).astype(np.float32)


def write_number(
    digits: npt.ArrayLike,
    height: int,
    rng: np.random.Generator,
    gaps: tuple[float, float] = (-0.08, 0.3),
    drops: tuple[float, float] = (-0.06, 0.06),
) -> tuple[npt.NDArray[np.float32], list[Box]]:
    """MNIST digits written side by side.

    Parameters
    ----------
    digits : array_like of uint8, shape (n, 28, 28)
        The digits, white ink on black.
    height : int
        Each digit's height in pixels, +-10%.
    rng : numpy.random.Generator
        Draws every size, gap and drop.
    gaps : (float, float), default=(-0.08, 0.3)
        The range of the gap between neighbours, in heights: a negative gap is an overlap, where
        neighbours may touch.
    drops : (float, float), default=(-0.06, 0.06)
        The range of each digit's drop below the line, in heights.

    Returns
    -------
    ink : ndarray of float32, shape (H, W)
        The ink in [0, 1], 0 on paper.
    boxes : list of (int, int, int, int)
        Each digit's box (left, top, right, bottom) in ``ink``.
    """
    images = np.asarray(digits, np.uint8)
    glyphs = [_scaled(_ink_crop(d), round(height * rng.uniform(0.9, 1.1))) for d in images]
    spaces = [round(height * rng.uniform(*gaps)) for _ in glyphs[1:]]
    lows = [round(height * rng.uniform(*drops)) for _ in glyphs]
    top = max(0, -min(lows))
    H = top + max(g.shape[0] + d for g, d in zip(glyphs, lows)) + 1
    W = sum(g.shape[1] for g in glyphs) + max(0, sum(spaces)) + 1
    ink = np.zeros((H, W), np.float32)
    boxes: list[Box] = []
    x = 0
    for i, g in enumerate(glyphs):
        if i:
            x = max(0, x + spaces[i - 1])
        y = top + lows[i]
        h, w = g.shape
        np.maximum(ink[y : y + h, x : x + w], g, out=ink[y : y + h, x : x + w])
        boxes.append((x, y, x + w, y + h))
        x += w
    return ink, boxes


def _paper(shape: tuple[int, int], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Lit paper in [0, 1]: a base brightness times a gradient, a shadow and a fibrous texture."""
    from scipy import ndimage

    H, W = shape
    rr, cc = np.mgrid[0:H, 0:W].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * cc / W + np.sin(angle) * rr / H  # in about [-1.4, 1.4]
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    light = 1 - (1 - rng.uniform(0.45, 0.75)) * along  # the far side at 45-75%
    if rng.random() < 0.7:  # a shadow with a soft edge over part of the page
        a = rng.uniform(0, 2 * np.pi)
        edge = np.cos(a) * (cc - rng.uniform(0.2, 0.8) * W) + np.sin(a) * (
            rr - rng.uniform(0.2, 0.8) * H
        )
        soft = max(1.0, rng.uniform(0.005, 0.05) * max(H, W))
        light *= 1 - rng.uniform(0.3, 0.5) / (1 + np.exp(-edge / soft))
    fibres = ndimage.gaussian_filter(rng.standard_normal((H, W)).astype(np.float32), (0.7, 3.0))
    fibres *= rng.uniform(0.01, 0.03) / max(float(fibres.std()), 1e-6)
    return (rng.uniform(0.72, 0.95) * light * (1 + fibres)).astype(np.float32)


def photograph(
    ink: npt.NDArray[np.float32], rng: np.random.Generator, margin: tuple[float, float] = (0.3, 1.5)
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """Ink written dark on lit paper, blurred and noisy.

    Parameters
    ----------
    ink : ndarray of float32, shape (h, w)
        The ink in [0, 1], 0 on paper.
    rng : numpy.random.Generator
        Draws the margins, the paper, the light, the blur and the noise.
    margin : (float, float), default=(0.3, 1.5)
        The range of each margin, in ``h``.

    Returns
    -------
    image : ndarray of uint8, shape (H, W)
        The photo in grayscale.
    corner : (int, int)
        Where the ink's top-left corner landed, (top, left).
    """
    from scipy import ndimage

    h, w = ink.shape
    top, bottom, left, right = (round(h * rng.uniform(*margin)) for _ in range(4))
    H, W = top + h + bottom, left + w + right
    alpha = np.zeros((H, W), np.float32)
    alpha[top : top + h, left : left + w] = ink
    paper = _paper((H, W), rng)
    page = paper * (1 - alpha * (1 - rng.uniform(0.05, 0.3)))  # the ink is lit like the paper
    page = ndimage.gaussian_filter(page, rng.uniform(0.3, 1.2))
    page += rng.normal(0, rng.uniform(0.005, 0.03), page.shape).astype(np.float32)
    return np.round(np.clip(page, 0, 1) * 255).astype(np.uint8), (top, left)


def number_page(
    digits: npt.ArrayLike,
    labels: npt.ArrayLike,
    rng: np.random.Generator,
    height: tuple[int, int] = (28, 90),
) -> Page:
    """A photo of the number that MNIST digits spell, slightly rotated, on lit paper.

    Parameters
    ----------
    digits : array_like of uint8, shape (n, 28, 28)
        The digits, white ink on black.
    labels : array_like of int, shape (n,)
        Their labels.
    rng : numpy.random.Generator
        Draws everything: the same seed, the same page.
    height : (int, int), default=(28, 90)
        The range of the digits' height, in pixels.

    Returns
    -------
    Page
        The photo, the labels and each digit's box in it.
    """
    from scipy import ndimage

    ink, boxes = write_number(digits, int(rng.integers(*height)), rng)
    degrees = rng.uniform(-4, 4)
    pad = ink.shape[0] // 2
    padded = np.pad(ink, pad)
    turned = np.clip(ndimage.rotate(padded, degrees, reshape=False, order=1), 0, 1)
    image, (top, left) = photograph(turned, rng)
    boxes = [_turned_box(b, pad, degrees, padded.shape, top, left) for b in boxes]
    return Page(image, tuple(int(c) for c in np.asarray(labels)), tuple(boxes))


def _turned_box(
    box: Box, pad: int, degrees: float, shape: tuple[int, ...], top: int, left: int
) -> Box:
    """A box's corners rotated as `ndimage.rotate` turns the image about its centre, then moved."""
    x0, y0, x1, y1 = (c + pad for c in box)
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    t = np.deg2rad(degrees)
    xs, ys = [], []
    for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
        # ndimage.rotate turns the picture counter-clockwise as seen (rows grow downwards)
        xs.append(cx + (x - cx) * np.cos(t) + (y - cy) * np.sin(t))
        ys.append(cy - (x - cx) * np.sin(t) + (y - cy) * np.cos(t))
    return (
        left + int(min(xs)),
        top + int(min(ys)),
        left + int(np.ceil(max(xs))),
        top + int(np.ceil(max(ys))),
    )


def blank_page(rng: np.random.Generator, size: tuple[int, int] = (100, 700)) -> Page:
    """Paper under the same light as `number_page`'s, with no digit.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the size, the paper and the light.
    size : (int, int), default=(100, 700)
        The range of the page's height and width, in pixels, each drawn apart.

    Returns
    -------
    Page
        The photo, with no labels and no boxes.
    """
    h = int(rng.integers(*size))
    w = int(rng.integers(*size))
    image, _ = photograph(np.zeros((h // 3, w // 3), np.float32), rng, margin=(1.0, 1.0))
    return Page(image, (), ())
