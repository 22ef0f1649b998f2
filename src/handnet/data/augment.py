"""Data augmentation: random affine maps and Simard-2003 elastic distortions, batched, float32.

Every transform is a *sampling map*: output pixel p = (row, col) takes the value of the input at a
source point s(p), read with bilinear interpolation. With c the image centre,

    affine:   s(p) = A^-1 (p - c - t) + c        A = scale * rotation * shear, t = translation
    elastic:  s(p) = p + alpha * (G * u)(p)      u ~ U[-1, 1]^(H x W x 2), G a Gaussian of std sigma

(for sigma >= 2, u is drawn on a grid of every second pixel and the blur K brings it back to
H x W with the same variance: see `gaussian_matrix`; a blur that wide keeps nothing finer.)

and both together compose as s(p) = A^-1 (p - c - t) + c + alpha (G * u)(p). Nothing loops over
images in Python: the Gaussian smoothing is a matrix product with a banded Gaussian matrix
(K u K^T), and the four bilinear corners are four gathers from a padded copy of the batch.
Translations alone (the default recipe's 1-pixel shifts) need no gathers: `shift_bilinear`
reads the same points as weighted sums of whole-pixel views.

The images handed in are standardized (``norm.apply``), so "outside the image" is not 0 but the
standardized value of a black pixel, ``fill = -mean / std``. The batch is padded with fill;
bilinear weights sum to 1, so every point outside reads exactly fill.

`Prefetcher` can compute the next augmented batch in a background thread while the network
trains on the current one (NumPy releases the GIL); whether that pays depends on free cores.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from handnet.errors import ConfigError
from handnet.nn.arrays import device, like, namespace
from handnet.nn.layers import Buffers

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of the random transforms; each parameter is drawn uniformly and independently.

    Parameters
    ----------
    rotate : float
        Degrees: the angle is drawn from [-rotate, rotate].
    scale : float
        Relative: the factor is drawn from [1 - scale, 1 + scale], for x and y independently.
    shift : float
        Pixels: the translation is drawn from [-shift, shift] per axis.
    shear : float
        Degrees: the shear angle is drawn from [-shear, shear].
    elastic_alpha : float
        Simard's alpha, pixels of displacement per unit of smoothed field; 0 turns it off.
    elastic_sigma : float
        Simard's sigma, the standard deviation of the smoothing Gaussian, in pixels.
    """

    rotate: float = 0.0
    scale: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0

    @property
    def affine(self) -> bool:
        return any(v > 0 for v in (self.rotate, self.scale, self.shift, self.shear))

    @property
    def active(self) -> bool:
        return self.affine or self.elastic_alpha > 0

    @property
    def shift_only(self) -> bool:
        """Translations alone (the default recipe's): `shift_bilinear` does them without gathers."""
        return self.shift > 0 and self == AugmentSpec(
            shift=self.shift, elastic_sigma=self.elastic_sigma
        )


def gaussian_matrix(n: int, sigma: float, step: int = 1) -> Array:
    """A Gaussian blur as a matrix, from a coarse grid of m points to n pixels.

    K[i, j] = sqrt(step) g(i - x_j), with coarse points x_j = step j + (step - 1) / 2 and g the
    Gaussian of std sigma sampled on the integers and normalized to sum 1.

    With step 1, K u K^T is the separable blur of an (n, n) field u with zero padding outside, as
    scipy.ndimage.gaussian_filter(u, sigma, mode="constant") (exactly when 4 sigma is a whole
    number: the kernel is cut at ceil(4 sigma) here, at int(4 sigma + 0.5) there). With step s,
    a field of iid values drawn on the coarse grid blurs to one with the same variance (the
    sqrt(s) per axis makes up for s^2 fewer samples) and, for sigma well above s, the same smooth
    look, from s^2 fewer draws.

    Parameters
    ----------
    n : int
        Pixels per side of the image.
    sigma : float
        Standard deviation of the Gaussian, in pixels.
    step : int
        Spacing of the coarse grid the field is drawn on.

    Returns
    -------
    K : ndarray of float32, shape (n, m)
        The blur, with m = ceil(n / step).
    """
    m = -(-n // step)
    x = step * np.arange(m) + (step - 1) / 2
    r = max(1, math.ceil(4 * sigma))
    norm = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).sum()
    d = np.arange(n)[:, None] - x[None, :]  # (n, m)
    K = np.where(np.abs(d) <= r, np.exp(-0.5 * (d / sigma) ** 2) / norm, 0.0) * math.sqrt(step)
    return K.astype(np.float32)


def smooth_fields(u: Array, K: Array) -> Array:
    """K u_b K^T for every field u_b in a stack: the separable Gaussian blur of each.

    A stacked matmul: one tiny GEMM per field, each too small for OpenBLAS to thread. Two GEMMs
    over the whole stack (reshaped to (m, B m)) would be threaded, and on a loaded 2-core machine
    a threaded GEMM this small spends most of its time waiting for the other core: 40x slower.
    Runs in ``u``'s array library (NumPy, or the library of a batch on a GPU).

    Parameters
    ----------
    u : array of float32, shape (B, m, m)
        The fields, on the coarse grid.
    K : array of float32, shape (n, m)
        The blur, from `gaussian_matrix`.

    Returns
    -------
    array of float32, shape (B, n, n)
        The smoothed fields.
    """
    xp = namespace(u)  # NumPy, or the library of a batch that lives on a GPU
    out: Array = xp.matmul(xp.matmul(K, u), K.T)  # float32 in, float32 out
    return out


def affine_matrices(
    n: int, spec: AugmentSpec, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Random forward maps (A, t) in (row, col) coordinates, one per image.

    A = diag(s_row, s_col) R(theta) Sh(phi), with R a rotation (clockwise as displayed for
    theta > 0; theta is drawn symmetrically) and Sh a horizontal shear col += tan(phi) * row.

    Parameters
    ----------
    n : int
        How many maps.
    spec : AugmentSpec
        The ranges to draw from.
    rng : numpy.random.Generator
        The augmentation stream; six uniforms are drawn per map.

    Returns
    -------
    A : ndarray of float32, shape (n, 2, 2)
        The linear parts.
    t : ndarray of float32, shape (n, 2)
        The translations (rows, cols), in pixels.
    """
    u = rng.random((n, 6), dtype=np.float32) * 2 - 1  # U[-1, 1), drawn in float32
    # theta and phi come out float64 (NumPy 2 keeps deg2rad's float64 scalar): n numbers, cast
    # with A at the end. Kept so, because the published recipe figures were drawn this way.
    theta = np.deg2rad(spec.rotate) * u[:, 0]
    phi = np.deg2rad(spec.shear) * u[:, 1]
    s_r = 1 + spec.scale * u[:, 2]
    s_c = 1 + spec.scale * u[:, 3]
    t = spec.shift * u[:, 4:6]
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(phi)
    # Rotation in (row, col) with row pointing down: (0, 1) goes to (sin, cos), clockwise on screen.
    R = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)  # (n, 2, 2)
    Sh = np.zeros_like(R)
    Sh[:, 0, 0] = 1
    Sh[:, 1, 1] = 1
    Sh[:, 1, 0] = tan
    S = np.zeros_like(R)
    S[:, 0, 0] = s_r
    S[:, 1, 1] = s_c
    return (S @ R @ Sh).astype(np.float32), t.astype(np.float32)


def sample_bilinear(
    images: Array, rows: Array, cols: Array, fill: float, work: Buffers | None = None
) -> Array:
    """Read each image bilinearly at given source points; ``fill`` outside.

    out[b, i, j] = images[b] read at (rows[b, i, j], cols[b, i, j]). With (r, c) a source point,
    r0 = floor(r), c0 = floor(c) and the fractions fr = r - r0, fc = c - c0, the read is

        out = (1 - fr) [(1 - fc) x[r0, c0] + fc x[r0, c0 + 1]] + fr [(1 - fc) x[r0 + 1, c0] + fc x[r0 + 1, c0 + 1]]

    The batch is padded by 2 pixels of ``fill`` on every side and coordinates are clipped into
    the padding, so a point outside reads fill (the weights sum to 1). The four corners are read
    by four gathers with one index array, the flat position of the top-left corner, from the
    padded batch shifted by 0, 1, Wp and Wp + 1 (right, below, below right). `sample_plain` is
    the same read in plain array-API operations.

    Parameters
    ----------
    images : ndarray of float32, shape (B, H, W)
        The batch.
    rows, cols : ndarray of float32, shape (B, H, W)
        Where each output pixel reads, in input pixel coordinates. Overwritten.
    fill : float
        The value outside the image (the standardized value of a black pixel).
    work : Buffers, optional
        Where the temporaries live between calls.

    Returns
    -------
    ndarray of float32, shape (B, H, W)
        A new array.
    """
    work = work or Buffers()
    B, H, W = images.shape
    P = 2
    Hp, Wp = H + 2 * P, W + 2 * P
    padded = _padded(work, "padded", images, P, fill)
    flat = padded.reshape(-1)
    r = np.clip(rows, -1, H, out=rows)
    c = np.clip(cols, -1, W, out=cols)
    r0 = np.floor(r, out=work.get("r0", r, r.shape, "float32"))
    c0 = np.floor(c, out=work.get("c0", c, c.shape, "float32"))
    r -= r0  # fractional parts: the weights of the lower row and of the right column
    c -= c0
    # base = b Hp Wp + (r0 + P) Wp + (c0 + P): the flat index of the top-left corner, a whole
    # number below 2^24 for batches up to 16,000 images, so exact in float32 before the cast.
    r0 *= Wp
    r0 += c0
    r0 += (P * Wp + P + np.arange(B, dtype=np.float32) * (Hp * Wp))[:, None, None]
    base = work.get("base", r, r.shape, "intp")
    base[...] = r0
    # mode="wrap": every index is inside, and take skips the check that "raise" makes
    p00, p01, p10, p11 = (
        np.take(flat[shift:], base, out=work.get(f"p{k}", r, r.shape, "float32"), mode="wrap")
        for k, shift in enumerate((0, 1, Wp, Wp + 1))
    )
    top = np.subtract(p01, p00, out=work.get("top", r, r.shape, "float32"))
    top *= c
    top += p00  # (1 - c) p00 + c p01
    out = p11 - p10
    out *= c
    out += p10  # (1 - c) p10 + c p11
    out -= top
    out *= r
    out += top  # (1 - r) top + r bottom
    return out


def _padded(work: Buffers, name: str, images: Array, P: int, fill: float) -> Array:
    """The batch (B, H, W) with P pixels of ``fill`` on every side, (B, H + 2P, W + 2P)."""
    B, H, W = images.shape
    padded: Array = work.get(name, images, (B, H + 2 * P, W + 2 * P), "float32")
    padded[:, :P] = fill  # the border (a small part of the array) is written every time
    padded[:, H + P :] = fill
    padded[:, :, :P] = fill
    padded[:, :, W + P :] = fill
    padded[:, P : H + P, P : W + P] = images
    return padded


def shift_bilinear(images: Array, t: Array, fill: float, work: Buffers | None = None) -> Array:
    """Translate each image by its own t[b] = (t_row, t_col) pixels, read bilinearly; ``fill`` outside.

    Plainly, this is ``sample_bilinear(images, i - t_row, j - t_col, fill)``: output pixel (i, j)
    reads the input at (i - t_row, j - t_col). Since a translation reads every pixel at the same
    offset a = -t, the bilinear read is a weighted sum of the image moved by whole pixels d, e,

        out[i, j] = sum_{d, e} hat(a_row - d) hat(a_col - e) x[i + d, j + e],  hat(z) = max(0, 1 - |z|)

    (the tent weights, nonzero for the two whole offsets next to a), so no gather is needed:
    d and e run over -S..S (S = the largest whole shift), outside the image x is ``fill``, and
    the sum is separable, along columns then along rows:

        cols[b, j, p] = sum_e hat(a_col[b] - e) x[b, p, j + e]        (for every padded row p)
        out[b, i, j] = sum_d hat(a_row[b] - d) cols[b, j, i + d]

    Each pass is one ``einsum`` over 2S + 1 windows of a flattened image: with the image stored
    so that the shifted axis is the outer one, moving by one pixel moves a whole row, and the
    windows are views of one array (``sliding_window_view``), read with long contiguous rows.
    That is why the batch is padded transposed, and transposed back in between.
    tests/data/test_augment.py compares the result with ``sample_bilinear``.

    Parameters
    ----------
    images : ndarray of float32, shape (B, H, W)
        The batch.
    t : ndarray of float32, shape (B, 2)
        The translations (rows, cols), in pixels.
    fill : float
        The value outside the image.
    work : Buffers, optional
        Where the temporaries live between calls.

    Returns
    -------
    ndarray of float32, shape (B, H, W)
        A new array.
    """
    work = work or Buffers()
    B, H, W = images.shape
    S = max(1, math.ceil(float(np.abs(t).max())))  # offsets -S..S cover |t| <= S
    n, Hp = 2 * S + 1, H + 2 * S
    d = np.arange(-S, S + 1, dtype=np.float32)  # (n,) the whole offsets
    # hat(a - d) for a = -t: (B, n) weights per axis, each row summing to 1
    w_row = np.maximum(1 - np.abs(-t[:, 0, None] - d), 0, dtype=np.float32)
    w_col = np.maximum(1 - np.abs(-t[:, 1, None] - d), 0, dtype=np.float32)
    xT = _padded(work, "shift padded", images.transpose(0, 2, 1), S, fill)  # (B, Wp, Hp)
    cols = work.get("shift cols", images, (B, W * Hp), "float32")  # (B, W, Hp) flattened
    np.einsum("bkl,bk->bl", _windows(xT.reshape(B, -1), Hp, n, W * Hp), w_col, out=cols)
    colsT = work.get("shift colsT", images, (B, Hp, W), "float32")
    colsT[...] = cols.reshape(B, W, Hp).transpose(0, 2, 1)  # (B, Hp, W): rows outer again
    out = np.empty((B, H * W), np.float32)
    np.einsum("bkl,bk->bl", _windows(colsT.reshape(B, -1), W, n, H * W), w_row, out=out)
    return out.reshape(B, H, W)


def _windows(flat: Array, step: int, n: int, length: int) -> Array:
    """(B, n, length) views: window k of row b is flat[b, k step : k step + length]."""
    return sliding_window_view(flat, length, axis=1)[:, : (n - 1) * step + 1 : step]


def random_shifts(n: int, spec: AugmentSpec, rng: np.random.Generator) -> Array:
    """Random translations, uniform in [-shift, shift) per axis.

    The same draw as `affine_matrices` (six uniforms per image, of which a translation uses two),
    so a seed gives the same shifts whether or not the batch goes through the affine path.

    Parameters
    ----------
    n : int
        How many translations.
    spec : AugmentSpec
        Its ``shift`` is the range.
    rng : numpy.random.Generator
        The augmentation stream.

    Returns
    -------
    t : ndarray of float32, shape (n, 2)
        (rows, cols) in pixels.
    """
    u = rng.random((n, 6), dtype=np.float32) * 2 - 1  # U[-1, 1)
    t: Array = spec.shift * u[:, 4:6]
    return t


def affine_coords(A: Array, t: Array, H: int, W: int, ref: Any = None) -> tuple[Array, Array]:
    """Source coordinates of the forward maps p -> A (p - c) + c + t.

    Output pixel p reads the input at s = A^-1 (p - c - t) + c, with c the image centre. The
    small arrays (A^-1, t, the grid) are made on the host; the (n, H, W) results are computed in
    ``ref``'s library and device when one is given (a batch on a GPU), else with NumPy.

    Parameters
    ----------
    A : ndarray of float32, shape (n, 2, 2)
        The linear parts, from `affine_matrices`.
    t : ndarray of float32, shape (n, 2)
        The translations.
    H, W : int
        The image's size.
    ref : array of any shape, optional
        An array of the library and device to compute on.

    Returns
    -------
    rows, cols : array of float32, shape (n, H, W)
        Where each output pixel reads.
    """
    c = np.float32((H - 1) / 2)
    grid = np.mgrid[0:H, 0:W].astype(np.float32) - c
    Ai = np.linalg.inv(A).astype(np.float32)  # (n, 2, 2)
    if ref is not None:
        grid, Ai, t = like(grid, ref), like(Ai, ref), like(t, ref)
    pr = grid[0, None, ...] - t[:, 0, None, None]  # (n, H, W): p - c - t
    pc = grid[1, None, ...] - t[:, 1, None, None]
    cr: Any = c if ref is None else float(c)  # a Python number for the other libraries
    rows = Ai[:, 0, 0, None, None] * pr + Ai[:, 0, 1, None, None] * pc + cr
    cols = Ai[:, 1, 0, None, None] * pr + Ai[:, 1, 1, None, None] * pc + cr
    return rows, cols


def elastic_displacement(
    n: int,
    K: Array,
    alpha: float,
    rng: np.random.Generator,
    around: Array | None = None,
    ref: Any = None,
) -> tuple[Array, Array]:
    """Simard's random displacement fields, alpha K u K^T, plus ``around`` if given.

    u ~ U[-1, 1) is drawn in float32 on K's (coarse) grid. With u = 2 v - 1, v ~ U[0, 1) as
    drawn, and k = K 1 (the row sums of K),

        alpha K u K^T = (sqrt(2 alpha) K) v (sqrt(2 alpha) K)^T - alpha k k^T

    so the field is one scaled product and one (H, W) constant, with no pass over u to map it
    to [-1, 1) and none over the result to scale it (tests/data/test_augment.py compares the
    two forms). The random numbers are drawn on the host; with ``ref`` (a batch on a GPU) they
    move to its device, and the smoothing and the sum run there.

    Parameters
    ----------
    n : int
        How many images.
    K : ndarray of float32, shape (H, m)
        The blur, from `gaussian_matrix`.
    alpha : float
        Pixels of displacement per unit of smoothed field.
    rng : numpy.random.Generator
        The augmentation stream; 2 n m^2 uniforms are drawn.
    around : ndarray of float32, shape (2, H, W), optional
        Added to the fields: the identity map's coordinates, say, so that the result is where
        each pixel reads.
    ref : array of any shape, optional
        An array of the library and device to compute on.

    Returns
    -------
    d_rows, d_cols : array of float32, shape (n, H, W)
        The displacements (plus ``around``).
    """
    m, H = K.shape[1], K.shape[0]
    v = rng.random((2 * n, m, m), dtype=np.float32)  # (2n, m, m) uniform on [0, 1)
    Ka = (K * math.sqrt(2 * alpha)).astype(np.float32)
    k = K.astype(np.float64).sum(axis=1)  # (H,)
    shift = np.zeros((2, H, H)) if around is None else around.astype(np.float64)
    shift -= alpha * np.outer(k, k)  # around - alpha k k^T                    (2, H, W)
    shift32 = shift[:, None].astype(np.float32)  # (2, 1, H, W)
    if ref is not None and namespace(ref) is not np:
        xp = namespace(ref)
        d = smooth_fields(like(v, ref), like(Ka, ref))  # (2 alpha) K v K^T     (2n, H, W)
        d = xp.reshape(d, (2, n, H, H)) + like(shift32, ref)
        return d[0, ...], d[1, ...]
    d = smooth_fields(v, Ka)  # (2 alpha) K v K^T                             (2n, H, W)
    d = d.reshape(2, n, *d.shape[1:])
    d += shift32  # alpha K (2v - 1) K^T + around
    return d[0], d[1]


class Augmenter:
    """Applies an `AugmentSpec` to batches of flattened images, drawing from one Generator.

    A batch of NumPy arrays takes the fast paths (`shift_bilinear` for translations alone,
    `sample_bilinear` otherwise); a batch of another array library (a GPU) is augmented on its
    device from the same random draws (`shift_plain`, `sample_plain`).

    Parameters
    ----------
    spec : AugmentSpec
        The transforms.
    image_shape : tuple of int
        (H, W) of the images; they must be square.
    rng : numpy.random.Generator
        The augmentation stream.
    fill : float
        The value outside the image (the standardized value of a black pixel).

    Raises
    ------
    ConfigError
        When the images are not square 2-D images.
    """

    def __init__(
        self,
        spec: AugmentSpec,
        image_shape: tuple[int, ...],
        rng: np.random.Generator,
        fill: float = 0.0,
    ) -> None:
        if len(image_shape) != 2 or image_shape[0] != image_shape[1]:
            raise ConfigError(
                f"augmentation needs square 2-D images, got shape {image_shape}; "
                "set the aug_* settings to 0 for this dataset"
            )
        self.spec, self.rng, self.fill = spec, rng, float(fill)
        self.H, self.W = int(image_shape[0]), int(image_shape[1])
        self.grid = np.mgrid[0 : self.H, 0 : self.W].astype(np.float32)  # (2, H, W)
        # Fields are drawn on a grid of step 2 when sigma >= 2 (4x fewer random numbers; see
        # gaussian_matrix), else at full resolution.
        self.field_step = 2 if spec.elastic_sigma >= 2 else 1
        self.K = gaussian_matrix(self.H, spec.elastic_sigma, self.field_step)
        self.work = Buffers()  # one Augmenter serves one thread at a time

    def source_coords(self, n: int, ref: Any = None) -> tuple[Array, Array]:
        """Random source coordinates for n output images.

        Parameters
        ----------
        n : int
            How many images.
        ref : array of any shape, optional
            An array of the library and device to compute on (the random draws are the same).

        Returns
        -------
        rows, cols : array of float32, shape (n, H, W)
            Where each output pixel reads.
        """
        alpha = self.spec.elastic_alpha
        if not self.spec.affine:  # the identity map plus the field (or the identity alone)
            if alpha > 0:
                return elastic_displacement(n, self.K, alpha, self.rng, self.grid, ref)
            if ref is None:
                return np.repeat(self.grid[0][None], n, 0), np.repeat(self.grid[1][None], n, 0)
            grid = like(self.grid, ref)
            xp = namespace(grid)
            return (
                xp.broadcast_to(grid[0, None, ...], (n, self.H, self.W)),
                xp.broadcast_to(grid[1, None, ...], (n, self.H, self.W)),
            )
        A, t = affine_matrices(n, self.spec, self.rng)
        rows, cols = affine_coords(A, t, self.H, self.W, ref)
        if alpha > 0:
            dr, dc = elastic_displacement(n, self.K, alpha, self.rng, ref=ref)
            rows += dr
            cols += dc
        return rows, cols

    def __call__(self, X: Array) -> Array:
        """Randomly transformed copies of the rows of X.

        Parameters
        ----------
        X : array of float32, shape (N, H*W)
            Standardized images, one per row, of any array library.

        Returns
        -------
        array of float32, shape (N, H*W)
            A new array, in X's library and device.
        """
        n = X.shape[0]
        if namespace(X) is not np:  # a batch on a GPU (CuPy, PyTorch): it stays there
            return self._on_device(X)
        if not self.spec.active:
            return np.array(X, dtype=np.float32)
        if self.spec.shift_only:  # no gathers: see shift_bilinear
            imgs = X.reshape(n, self.H, self.W)
            t = random_shifts(n, self.spec, self.rng)
            return shift_bilinear(imgs, t, self.fill, self.work).reshape(n, self.H * self.W)
        rows, cols = self.source_coords(n)
        imgs = X.reshape(n, self.H, self.W)
        out = sample_bilinear(imgs, rows, cols, self.fill, self.work)
        return out.reshape(n, self.H * self.W)

    def _on_device(self, X: Array) -> Array:
        """`__call__` for a batch of another array library, computed on its device from the
        same random draws (`shift_plain`, `sample_plain`)."""
        xp, n = namespace(X), X.shape[0]
        if not self.spec.active:
            return xp.asarray(X, copy=True)
        imgs = xp.reshape(X, (n, self.H, self.W))
        if self.spec.shift_only:
            out = shift_plain(imgs, random_shifts(n, self.spec, self.rng), self.fill)
        else:
            rows, cols = self.source_coords(n, ref=X)
            out = sample_plain(imgs, rows, cols, self.fill)
        return xp.reshape(out, (n, self.H * self.W))


# The same transforms on another array library. A batch on a GPU (CuPy, PyTorch tensors) stays
# there: the few random numbers per image are drawn on the host from the same Generator in the
# same order as above, moved to the device, and the per-pixel work runs there in the plain
# operations of the array API standard, which has neither out= buffers nor strided views.
# These are the plain forms the NumPy fast paths above stand for; tests/data/test_augment.py
# compares them, on NumPy and on the other libraries.


def shift_plain(images: Array, t: npt.NDArray[np.float32], fill: float) -> Array:
    """`shift_bilinear` in plain array-API operations, on ``images``' library and device.

    out[b, i, j] = sum_{d, e} hat(a_row - d) hat(a_col - e) x[b, i + d, j + e] with a = -t[b],
    as two passes of 2S + 1 weighted slices of the batch padded with ``fill`` (S = the largest
    whole shift):

        cols[b, p, j] = sum_k w_col[b, k] padded[b, p, j + k]       (k = e + S, every padded row p)
        out[b, i, j] = sum_k w_row[b, k] cols[b, i + k, j]          (k = d + S)

    Parameters
    ----------
    images : array of float32, shape (B, H, W)
        The batch, of any array library.
    t : ndarray of float32, shape (B, 2)
        The translations (rows, cols), on the host.
    fill : float
        The value outside the image.

    Returns
    -------
    array of float32, shape (B, H, W)
        In ``images``' library and device.
    """
    xp = namespace(images)
    B, H, W = images.shape
    S = max(1, math.ceil(float(np.abs(t).max())))
    d = np.arange(-S, S + 1, dtype=np.float32)
    w_row = like(np.maximum(1 - np.abs(-t[:, 0, None] - d), 0, dtype=np.float32), images)
    w_col = like(np.maximum(1 - np.abs(-t[:, 1, None] - d), 0, dtype=np.float32), images)
    padded = xp.full((B, H + 2 * S, W + 2 * S), fill, dtype=images.dtype, device=device(images))
    padded[:, S : S + H, S : S + W] = images
    cols = sum(w_col[:, k, None, None] * padded[:, :, k : k + W] for k in range(2 * S + 1))
    out: Array = sum(w_row[:, k, None, None] * cols[:, k : k + H, :] for k in range(2 * S + 1))
    return out


def sample_plain(images: Array, rows: Array, cols: Array, fill: float) -> Array:
    """`sample_bilinear` in plain array-API operations, on ``images``' library and device.

    With (r, c) a source point, clipped into a border of 2 pixels of ``fill``, r0 = floor(r),
    c0 = floor(c), fr = r - r0 and fc = c - c0:

        out = (1 - fr) [(1 - fc) x[r0, c0] + fc x[r0, c0 + 1]] + fr [(1 - fc) x[r0 + 1, c0] + fc x[r0 + 1, c0 + 1]]

    the four corners read by ``take`` from the flattened padded batch.

    Parameters
    ----------
    images : array of float32, shape (B, H, W)
        The batch.
    rows, cols : array of float32, shape (B, H, W)
        Where each output pixel reads (not modified).
    fill : float
        The value outside the image.

    Returns
    -------
    array of float32, shape (B, H, W)
        In ``images``' library and device.
    """
    xp = namespace(images)
    B, H, W = images.shape
    P = 2
    Hp, Wp = H + 2 * P, W + 2 * P
    padded = xp.full((B, Hp, Wp), fill, dtype=images.dtype, device=device(images))
    padded[:, P : P + H, P : P + W] = images
    flat = xp.reshape(padded, (-1,))
    r, c = xp.clip(rows, -1.0, float(H)), xp.clip(cols, -1.0, float(W))
    r0, c0 = xp.floor(r), xp.floor(c)
    fr, fc = r - r0, c - c0
    first = xp.arange(B, dtype=xp.int64, device=device(images)) * (Hp * Wp) + (P * Wp + P)
    base = xp.astype(r0, xp.int64) * Wp + xp.astype(c0, xp.int64) + first[:, None, None]
    base = xp.reshape(base, (-1,))  # the flat index of each top-left corner

    def corner(offset: int) -> Array:
        return xp.reshape(xp.take(flat, base + offset), r.shape)

    top = corner(0) + fc * (corner(1) - corner(0))  # (1 - fc) x[r0, c0] + fc x[r0, c0 + 1]
    bottom = corner(Wp) + fc * (corner(Wp + 1) - corner(Wp))
    out: Array = top + fr * (bottom - top)
    return out


def gather_rows(X: Array, idx: npt.NDArray[np.intp]) -> Array:
    """The rows ``X[idx]`` as a new array, on ``X``'s library and device.

    Parameters
    ----------
    X : array, shape (N, D)
        Any array library.
    idx : ndarray of intp, shape (B,)
        Row numbers, on the host.

    Returns
    -------
    array, shape (B, D)
        In X's library and device.
    """
    if namespace(X) is np:
        return np.take(X, idx, axis=0)
    return namespace(X).take(X, like(idx, X), axis=0)


def augmented_copies(X: Array, copies: int, augment: Augmenter, chunk: int = 1024) -> Array:
    """X followed by ``copies`` transformed copies of it (the seed's static augmentation).

    Parameters
    ----------
    X : ndarray of float32, shape (N, H*W)
        Standardized images.
    copies : int
        How many transformed copies of every image.
    augment : Augmenter
        The transforms and their stream.
    chunk : int
        Images transformed at a time (bounds the temporaries).

    Returns
    -------
    ndarray of float32, shape (M, H*W)
        M = (copies + 1) N rows: the originals first, then each round of copies in X's order.
    """
    out = np.empty(((copies + 1) * X.shape[0], X.shape[1]), dtype=np.float32)
    out[: X.shape[0]] = X
    for k in range(1, copies + 1):
        for i in range(0, X.shape[0], chunk):
            j = k * X.shape[0] + i
            out[j : j + min(chunk, X.shape[0] - i)] = augment(X[i : i + chunk])
    return out


def blas_threads_beside(background: bool) -> contextlib.AbstractContextManager[object]:
    """Leave one core to a background augmentation thread: BLAS gets the others while it runs.

    With every core busy in BLAS, the augmentation thread and the BLAS workers take turns and
    both wait (a 2-core machine ran 3x slower); with BLAS on cores - 1 they overlap. Measured for
    configs/fast.toml on the 2-core VM: 2.3 s per epoch inline, 2.0 s in the background beside
    one BLAS thread (see BENCHMARKS.md).

    Parameters
    ----------
    background : bool
        Whether a background thread will augment; if not, nothing changes.

    Returns
    -------
    contextlib.AbstractContextManager
        Limits BLAS's threads while it is entered.
    """
    if not background:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, (os.cpu_count() or 1) - 1), user_api="blas")


class Prefetcher:
    """Augmented batches computed one ahead in a background thread.

    Yields ``augment(X[perm[batch]])`` for consecutive batches. The order of RNG draws is that of
    the batches, so results are reproducible; `close` rewinds the augment stream to where the
    first batch not yet handed out began, so a run stopped mid-epoch saves the stream exactly as
    the inline path would (resumes are bit-exact).

    Parameters
    ----------
    X : array of float32, shape (N, H*W)
        The training images.
    perm : ndarray of intp, shape (n,)
        The rows to take, in order (n <= N).
    batch_size : int
        Rows per batch; the last batch may be shorter.
    augment : Augmenter
        The transforms and their stream.
    """

    def __init__(
        self, X: Array, perm: npt.NDArray[np.intp], batch_size: int, augment: Augmenter
    ) -> None:
        # each batch travels with the stream's state from before it was drawn
        self._q: queue.Queue[tuple[Mapping[str, Any], Array] | BaseException | None] = queue.Queue(
            maxsize=2
        )
        self._stop = threading.Event()
        self._rng = augment.rng
        self._thread = threading.Thread(
            target=self._work, args=(X, perm, batch_size, augment), daemon=True
        )
        self._thread.start()

    def _work(self, X: Array, perm: npt.NDArray[np.intp], bs: int, augment: Augmenter) -> None:
        try:
            for i in range(0, len(perm), bs):
                if self._stop.is_set():
                    return
                before = self._rng.bit_generator.state
                self._q.put((before, augment(gather_rows(X, perm[i : i + bs]))))
            self._q.put(None)
        except BaseException as e:  # handed to the consumer, re-raised there
            self._q.put(e)

    def __iter__(self) -> Iterator[Array]:
        while True:
            item = self._q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item[1]

    def close(self) -> None:
        """Stop the worker, wait for it, and rewind the augment stream past the batches it drew but
        never handed out (when training stops mid-epoch, say).
        """
        self._stop.set()
        unused: list[tuple[Mapping[str, Any], Array] | BaseException | None] = []
        while self._thread.is_alive():
            try:
                unused.append(self._q.get(timeout=0.05))
            except queue.Empty:
                pass
        self._thread.join()
        while not self._q.empty():
            unused.append(self._q.get_nowait())
        drawn = [item for item in unused if isinstance(item, tuple)]
        if drawn:
            self._rng.bit_generator.state = drawn[0][0]


def batch_source(
    augment: Augmenter, *, background: bool = False
) -> Callable[[Array, npt.NDArray[np.intp], int], Generator[Array, None, None]]:
    """A ``fit(batch_source=...)`` hook: given (X_train, perm, batch_size), an iterator of batches.

    ``background`` prepares each batch one ahead in a `Prefetcher` thread. On the 2-core VM that
    only pays when BLAS runs single-threaded and a core is idle: with two BLAS threads the third
    thread makes them wait for each other (see BENCHMARKS.md), so the default is inline.

    Parameters
    ----------
    augment : Augmenter
        The transforms and their stream.
    background : bool
        Prepare batches in a background thread.

    Returns
    -------
    callable
        (X_train (N, D), perm (n,), batch_size) -> a generator of augmented batches (B, D), in
        X_train's library and device.
    """

    def inline(
        X: Array, perm: npt.NDArray[np.intp], batch_size: int
    ) -> Generator[Array, None, None]:
        for i in range(0, len(perm), batch_size):
            yield augment(gather_rows(X, perm[i : i + batch_size]))

    def prefetched(
        X: Array, perm: npt.NDArray[np.intp], batch_size: int
    ) -> Generator[Array, None, None]:
        pf = Prefetcher(X, perm, batch_size, augment)
        try:
            yield from pf
        finally:
            pf.close()

    return prefetched if background else inline
