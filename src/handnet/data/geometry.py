"""Shape normalization: what is done to every digit before training and before each prediction.

Two optional steps, in this order:

1. deskewing (`handnet.data.deskew`): shear the digit upright;
2. width normalization: stretch or squeeze the digit horizontally so that its ink is ``width``
   pixels wide. With c_bar the column of the centre of mass and w the ink's width (`ink_width`),
   the horizontal scale is s = width / w and

       out(r, c) = x(r, c_bar + (c - c_bar) / s)

   so the centre of mass stays where MNIST put it and rows are untouched. Meier et al. (2011)
   trained the members of their 99.61% MLP committee on digits normalized to widths of 10 to
   20 pixels: each member sees the digits differently, so their mistakes differ more than those
   of members trained on the same images.

Both read the images bilinearly (`handnet.data.augment.sample_bilinear`) and round back to uint8,
so a normalized dataset is again a uint8 dataset. A model records its `Geometry` and applies it
to every input, so evaluation, prediction and committees see digits made the way it was trained
on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from handnet.data.augment import sample_bilinear
from handnet.data.deskew import deskew, map_unit_images
from handnet.errors import ConfigError

INK = 0.5  # the ink's edge: where the column profile crosses half intensity
MAX_WIDTH = 28  # widths are in pixels of a 28x28 MNIST field


def ink_width(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Width of each image's ink (N, H, W) -> (N,), in pixels, 0 for a blank image.

    The column profile p(c) = max_r x(r, c) is read as a piecewise-linear function of c (as the
    bilinear sampler reads it), and the width is the distance between its outermost crossings of
    INK. So a 1-pixel stroke is about 1 pixel wide, not as wide as the count of its grey columns,
    and scaling the image by s scales this width by s.

    Parameters
    ----------
    x : ndarray of float32, shape (N, H, W)
        Images, ink bright, in [0, 1].

    Returns
    -------
    ndarray of float32, shape (N,)
        Each image's ink width in pixels; 0 for a blank image.
    """
    N, _, W = x.shape
    p = np.zeros((N, W + 2), np.float32)  # zero columns on both sides: every crossing is inside
    p[:, 1:-1] = x.max(axis=1)
    inked = p >= INK
    left = inked.argmax(axis=1)  # first inked column; p[left - 1] < INK <= p[left]
    right = W + 1 - inked[:, ::-1].argmax(axis=1)  # last inked column
    n = np.arange(N)
    pl, pr = p[n, left], p[n, right]
    # the crossings, interpolated between the last column below INK and the first at or above
    # it (the floor on the step only matters for a blank image, whose width is 0 anyway)
    tiny = np.float32(1e-6)
    x_left = left - (pl - INK) / np.maximum(pl - p[n, left - 1], tiny)
    x_right = right + (pr - INK) / np.maximum(pr - p[n, np.minimum(right + 1, W + 1)], tiny)
    return np.where(inked.any(axis=1), x_right - x_left, 0).astype(np.float32)


def _normalize_width_unit(x: npt.NDArray[np.float32], width: int) -> npt.NDArray[np.float32]:
    """Width-normalized float batch (N, H, W) in [0, 1]; see the module docstring."""
    N, H, W = x.shape
    c = np.arange(W, dtype=np.float32)
    w = ink_width(x)
    s = np.where(w > 0, np.float32(width) / np.maximum(w, np.float32(0.5)), np.float32(1.0))
    col_mass = x.sum(axis=1)  # (N, W)
    c_bar = (col_mass @ c) / (col_mass.sum(axis=1) + np.float32(1e-6))
    rows = np.broadcast_to(np.arange(H, dtype=np.float32)[None, :, None], (N, H, W)).copy()
    # c_src = c_bar + (c - c_bar) / s
    src = c_bar[:, None] + (c[None, :] - c_bar[:, None]) / s[:, None]
    cols = np.broadcast_to(src[:, None, :], (N, H, W)).copy()
    return sample_bilinear(x, rows, cols, 0.0)


def normalize_width(
    images: npt.NDArray[np.generic], image_shape: tuple[int, ...], width: int
) -> npt.NDArray[np.uint8]:
    """Raw images with each digit's ink scaled horizontally to ``width`` pixels.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Raw images, uint8 or floats in [0, 1], or flat rows ``(N, H * W)``.
    image_shape : tuple of int
        ``(H, W)``, the shape of one image.
    width : int
        The ink width to scale to, in pixels.

    Returns
    -------
    ndarray of uint8, shape (N, H, W)
        The width-normalized images; a blank image stays blank.

    Raises
    ------
    ConfigError
        When ``image_shape`` is not ``(H, W)``.
    DatasetError
        When the images hold NaN, inf or values outside [0, 255].
    """
    return map_unit_images(
        images, image_shape, lambda x: _normalize_width_unit(x, width), "width normalization"
    )


@dataclass(frozen=True)
class Geometry:
    """The shape normalization of a dataset or model: deskew, then normalize widths (0: keep).

    A Geometry is false when it has no step (`PLAIN`).

    Parameters
    ----------
    deskew : bool, default=False
        Shear each digit upright (`handnet.data.deskew`).
    width : int, default=0
        Scale each digit's ink to this many pixels wide, 2 to MAX_WIDTH; 0 keeps the widths.

    Raises
    ------
    ConfigError
        When ``deskew`` is not a bool or ``width`` is not 0 or a whole number in
        [2, MAX_WIDTH].
    """

    deskew: bool = False
    width: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.deskew, bool):
            raise ConfigError(f"deskew={self.deskew!r}: must be true or false")
        if isinstance(self.width, bool) or not isinstance(self.width, int):
            raise ConfigError(f"width_normalize={self.width!r}: must be a whole number of pixels")
        if not (self.width == 0 or 2 <= self.width <= MAX_WIDTH):
            raise ConfigError(
                f"width_normalize={self.width}: must be 0 (off) or 2 to {MAX_WIDTH} pixels"
            )

    def __bool__(self) -> bool:
        return self.deskew or self.width > 0

    def apply(
        self, images: npt.NDArray[np.generic], image_shape: tuple[int, ...]
    ) -> npt.NDArray[np.generic]:
        """The images with every step applied (uint8 (N, H, W)); unchanged if there is none.

        Parameters
        ----------
        images : ndarray, shape (N, H, W)
            Raw images, uint8 or floats in [0, 1], or flat rows ``(N, H * W)``.
        image_shape : tuple of int
            ``(H, W)``, the shape of one image.

        Returns
        -------
        ndarray, shape (N, H, W)
            The normalized images, uint8; ``images`` itself when there is no step.

        Raises
        ------
        ConfigError
            When there is a step and ``image_shape`` is not ``(H, W)``.
        """
        if self.deskew:
            images = deskew(images, image_shape)
        if self.width:
            images = normalize_width(images, image_shape, self.width)
        return images

    def describe(self) -> str:
        """For people: e.g. "deskewed, width 14 px"; "" when there is no step.

        Returns
        -------
        str
            The steps, joined by commas.
        """
        parts = ["deskewed"] * self.deskew + [f"width {self.width} px"] * (self.width > 0)
        return ", ".join(parts)


PLAIN = Geometry()  # no shape normalization: the digits as the dataset has them
