"""Deskewing: shear each digit so that its slant is gone, as in LeCun et al.'s "deskewed" MNIST.

With the pixel intensities x(r, c) as weights, the ink has a centre (r_bar, c_bar) and the
second moments var_r = E[(r - r_bar)^2] and cov = E[(r - r_bar)(c - c_bar)]. A digit slanted by
alpha = cov / var_r columns per row is made upright by the horizontal shear

    out(r, c) = x(r, c + alpha (r - r_bar))

after which cov is about 0. Rows and the centre of mass stay where they are. The images are
read bilinearly (`handnet.data.augment.sample_bilinear`, batched, no loop over images) and rounded
back to 8 bits, like the dataset they come from, so a deskewed dataset is again a uint8 dataset
and everything downstream (splits, normalization, augmentation, model files) is unchanged.

A model trained on deskewed digits records it (``Classifier.geometry``, `handnet.data.geometry`) and
deskews every input it is given, so evaluation, prediction and committees see what it was
trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from handnet.data.augment import sample_bilinear
from handnet.data.split import to_unit
from handnet.errors import ConfigError

CHUNK = 4096  # images per batch: bounds the float32 temporaries to about 10 MB each


def slant(x: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(alpha, r_bar) per image of a float batch (N, H, W): slant = cov(r, c) / var(r), centre row.

    Parameters
    ----------
    x : ndarray of float32, shape (N, H, W)
        Images, ink bright, intensities in [0, 1] as the weights.

    Returns
    -------
    alpha : ndarray of float32, shape (N,)
        Each image's slant, in columns per row; 0 for a blank image.
    r_bar : ndarray of float32, shape (N,)
        The row of each image's centre of mass.
    """
    _, H, W = x.shape
    r = np.arange(H, dtype=np.float32)
    c = np.arange(W, dtype=np.float32)
    mass = x.sum((1, 2)) + np.float32(1e-6)  # a blank image gets alpha 0, not 0 / 0
    r_bar = (x.sum(2) @ r) / mass
    c_bar = (x.sum(1) @ c) / mass
    dr = r[None, :] - r_bar[:, None]
    dc = c[None, :] - c_bar[:, None]
    var_r = np.einsum("nij,ni->n", x, dr**2) / mass
    cov = np.einsum("nij,ni,nj->n", x, dr, dc) / mass
    return cov / np.maximum(var_r, np.float32(1e-6)), r_bar


def _deskew_unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Deskewed float batch (N, H, W) in [0, 1]; see the module docstring."""
    N, H, W = x.shape
    alpha, r_bar = slant(x)
    r = np.arange(H, dtype=np.float32)
    rows = np.broadcast_to(r[None, :, None], (N, H, W)).copy()
    # c_src = c + alpha (r - r_bar)
    cols = np.arange(W, dtype=np.float32) + alpha[:, None, None] * (
        r[None, :, None] - r_bar[:, None, None]
    )
    return sample_bilinear(x, rows, cols, 0.0)


def deskew(images: npt.NDArray[np.generic], image_shape: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    """Deskew raw images (uint8 in [0, 255] or floats in [0, 1]), shaped (N, H, W) or (N, H * W).

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Raw images, or flat rows ``(N, H * W)``.
    image_shape : tuple of int
        ``(H, W)``, the shape of one image.

    Returns
    -------
    ndarray of uint8, shape (N, H, W)
        Each image sheared upright and rounded to 8 bits.

    Raises
    ------
    ConfigError
        When ``image_shape`` is not ``(H, W)``.
    DatasetError
        When the images hold NaN, inf or values outside [0, 255].
    """
    # x / 255 rather than to_unit's x * (1/255): the recipes' reported runs used it
    return map_unit_images(images, image_shape, _deskew_unit, "deskew", divide=True)


def map_unit_images(
    images: npt.NDArray[np.generic],
    image_shape: tuple[int, ...],
    f: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]],
    what: str,
    divide: bool = False,
) -> npt.NDArray[np.uint8]:
    """``f`` applied to raw images as floats in [0, 1], CHUNK images at a time, rounded to uint8.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Raw images, uint8 or floats in [0, 1], or flat rows ``(N, H * W)``.
    image_shape : tuple of int
        ``(H, W)``, the shape of one image.
    f : callable
        Maps a float32 batch ``(n, H, W)`` in [0, 1] (n at most CHUNK) to one of the same shape
        in [0, 1].
    what : str
        The step's name, for the error message.
    divide : bool, default=False
        Scale uint8 as x / 255 instead of x * (1/255) (they differ in the last bit).

    Returns
    -------
    ndarray of uint8, shape (N, H, W)
        ``f``'s output, times 255, rounded and clipped to [0, 255].

    Raises
    ------
    ConfigError
        When ``image_shape`` is not ``(H, W)``.
    DatasetError
        When the images hold NaN, inf or values outside [0, 255] (`handnet.data.split.to_unit`).
    """
    if len(image_shape) != 2:
        raise ConfigError(f"{what}: needs images of shape (H, W), not {image_shape}")
    H, W = image_shape
    images = np.asarray(images)
    out = np.empty((len(images), H, W), np.uint8)
    for i in range(0, len(images), CHUNK):
        part = images[i : i + CHUNK]
        if divide and part.dtype == np.uint8:
            x = part.reshape(-1, H, W).astype(np.float32) / np.float32(255)
        else:  # the checks and scaling of every input
            x = to_unit(part, "input").reshape(-1, H, W)
        out[i : i + CHUNK] = np.clip(np.rint(f(x) * np.float32(255)), 0, 255)
    return out
