"""From raw arrays to training inputs: a stratified validation split, scaling, standardization.

The scaling puts pixels in [0, 1]; the standardization is one scalar mean and std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from handnet.errors import DatasetError


def stratified_split(
    y: npt.NDArray[np.int64], val_size: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices (train, val) with ``val_size`` validation items spread over classes in proportion.

    Each class contributes ``round(val_size * n_c / N)`` items (largest remainders fix the total),
    drawn without replacement by ``rng``. Both index arrays come back sorted.

    Parameters
    ----------
    y : ndarray of int64, shape (N,)
        The labels of the items to split.
    val_size : int
        Validation items, in ``[0, N)``.
    rng : numpy.random.Generator
        Draws the validation items.

    Returns
    -------
    train : ndarray of intp, shape (N - val_size,)
        Sorted indices of the training items.
    val : ndarray of intp, shape (val_size,)
        Sorted indices of the validation items.

    Raises
    ------
    DatasetError
        When ``val_size`` is not in ``[0, N)``.
    """
    n = len(y)
    if not 0 <= val_size < n:
        # A small dataset (a folder of one's own photos) meets the default of 5,000: say what fits.
        hint = f"; try val_size {max(1, n // 10)}, a tenth of them" if val_size >= n >= 10 else ""
        raise DatasetError(f"val_size={val_size}: must be in [0, {n}), the training images{hint}")
    classes, counts = np.unique(y, return_counts=True)
    exact = val_size * counts / n
    take = np.floor(exact).astype(np.int64)
    short = val_size - int(take.sum())
    take[np.argsort(exact - take, kind="stable")[::-1][:short]] += 1  # largest remainders
    val = [rng.choice(np.flatnonzero(y == c), size=k, replace=False) for c, k in zip(classes, take)]
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, np.intp)
    mask = np.ones(n, bool)
    mask[val_idx] = False
    return np.flatnonzero(mask), val_idx


TEST_FRACTION = 1 / 7  # MNIST's own share: 10,000 test images of 70,000
TEST_SPLIT_SEED = 0  # one fixed draw, so that training and `evaluate` hold out the same images


def held_out_test(
    y: npt.NDArray[np.int64], what: str
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices (train, test) for a labelled set that comes without a test split.

    Such a set is a CSV file or an image folder. The test split is TEST_FRACTION of it,
    stratified, drawn with TEST_SPLIT_SEED whatever the run's seed, so that every command holds
    out the same images.

    Parameters
    ----------
    y : ndarray of int64, shape (N,)
        The labels of the whole set.
    what : str
        The set's name (its path), for the error message.

    Returns
    -------
    train : ndarray of intp, shape (N - n_test,)
        Sorted indices of the training images.
    test : ndarray of intp, shape (n_test,)
        Sorted indices of the test images, ``n_test = round(N / 7)``.

    Raises
    ------
    DatasetError
        When the set is too small to hold out one image.
    """
    n_test = round(len(y) * TEST_FRACTION)
    if n_test == 0:
        raise DatasetError(f"{what}: {len(y)} images are too few to hold out a test split")
    return stratified_split(y, n_test, np.random.default_rng(TEST_SPLIT_SEED))


def finite_rows(X: npt.NDArray[np.generic], what: str) -> npt.NDArray[np.float32]:
    """``X`` as float32 rows (N, D), (0, D) too; NaN or inf is an error: "{what} contain NaN".

    Parameters
    ----------
    X : ndarray, shape (N, ...)
        Numeric inputs of any dtype; each item is flattened to one row of D values.
    what : str
        What ``X`` holds, for the error message (e.g. "input: features").

    Returns
    -------
    ndarray of float32, shape (N, D)
        A new array; ``X`` is not modified.

    Raises
    ------
    DatasetError
        When ``X`` holds NaN or inf.
    """
    Xf = np.asarray(X).reshape(len(X), math.prod(X.shape[1:])).astype(np.float32)
    if not np.all(np.isfinite(Xf)):
        raise DatasetError(f"{what} contain NaN or inf")
    return Xf


def to_unit(X: npt.NDArray[np.generic], what: str) -> npt.NDArray[np.float32]:
    """Pixels as float32 in [0, 1], flattened to (N, D).

    Integers are divided by 255; floats already in [0, 1] are kept, floats in [0, 255] are
    divided by 255.

    Parameters
    ----------
    X : ndarray, shape (N, H, W)
        Pixels, integers in [0, 255] or floats in [0, 1] or [0, 255]; any shape ``(N, ...)``,
        ``(N, D)`` included.
    what : str
        What ``X`` holds, for the error message (e.g. "mnist (train)").

    Returns
    -------
    ndarray of float32, shape (N, D)
        A new array of the pixels in [0, 1]; ``X`` is not modified.

    Raises
    ------
    DatasetError
        When a pixel is NaN, inf or outside [0, 255].
    """
    Xf = finite_rows(X, f"{what}: images")
    lo, hi = (float(Xf.min()), float(Xf.max())) if Xf.size else (0.0, 0.0)
    if lo < 0 or hi > 255:
        raise DatasetError(f"{what}: pixel values span [{lo}, {hi}], expected [0, 255] or [0, 1]")
    if X.dtype.kind in "ui" or hi > 1.0:
        Xf *= np.float32(1 / 255)
    return Xf


@dataclass(frozen=True)
class Normalization:
    """x' = (x - mean) / std with one scalar mean and std from the training split.

    Scalars rather than per-pixel statistics: border pixels of MNIST are always 0, so a per-pixel
    std would divide by zero, and one scalar keeps prediction on new images simple.

    Parameters
    ----------
    mean : float
        The mean of every value of the training inputs.
    std : float
        Their standard deviation (1 when it is 0, so that a constant input stays finite).
    """

    mean: float
    std: float

    @classmethod
    def fit(cls, X: npt.NDArray[np.float32]) -> Normalization:
        """The scalar mean and std of all values of ``X``, summed in float64.

        Parameters
        ----------
        X : ndarray of float32, shape (N, D)
            Training inputs, in [0, 1] for images.

        Returns
        -------
        Normalization
            Its mean and std; a std of 0 (constant inputs) becomes 1.
        """
        std = float(X.std(dtype=np.float64))
        return cls(float(X.mean(dtype=np.float64)), std if std > 0 else 1.0)

    def apply(self, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """In place on a float32 array in [0, 1]; returns it.

        Parameters
        ----------
        X : ndarray of float32, shape (N, D)
            Inputs to standardize, overwritten; any shape works, the statistics are scalars.

        Returns
        -------
        ndarray of float32, shape (N, D)
            ``X`` itself, now (X - mean) / std.
        """
        X -= np.float32(self.mean)
        X *= np.float32(1 / self.std)
        return X

    @property
    def black(self) -> float:
        """The standardized value of a black (0) pixel: what fills in from outside an image."""
        return float(self.apply(np.zeros(1, np.float32))[0])
