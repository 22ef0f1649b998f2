"""Data augmentation: random affine maps and Simard-2003 elastic distortions, batched, float32.

Every transform is a *sampling map*: output pixel p = (row, col) takes the value of the input at a
source point s(p), read with bilinear interpolation. With c the image centre,

    affine:   s(p) = A^-1 (p - c - t) + c        A = scale * rotation * shear, t = translation
    elastic:  s(p) = p + alpha * (G * u)(p)      u ~ U[-1, 1]^(H x W x 2), G a Gaussian of std sigma

(for sigma >= 2, u is drawn on a grid of every second pixel and the blur K brings it back to
H x W with the same variance: see `gaussian_matrix`; a blur that wide keeps nothing finer.)

and both together compose as s(p) = A^-1 (p - c - t) + c + alpha (G * u)(p). Nothing loops over
images in Python: the Gaussian smoothing is a matrix product with a banded Gaussian matrix (K u K^T), and the
four bilinear corners are four gathers from a zero-padded copy of the batch.

The images handed in are standardized (``norm.apply``), so "outside the image" is not 0 but the
standardized value of a black pixel, ``fill = -mean / std``. Bilinear weights sum to 1, so
sampling (x - fill) with zero padding and adding fill back gives exactly that fill outside.

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

from handnet.errors import ConfigError
from handnet.nn.layers import Buffers

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of the random transforms; each parameter is drawn uniformly and independently.

    rotate: degrees, angle in [-rotate, rotate]; scale: relative, factor in [1 - scale, 1 + scale]
    (x and y scaled independently); shift: pixels, translation in [-shift, shift] per axis;
    shear: degrees, shear angle in [-shear, shear]; elastic_alpha / elastic_sigma: Simard's
    alpha (pixels of displacement per unit of smoothed field) and sigma (pixels); alpha 0 is off.
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


def gaussian_matrix(n: int, sigma: float, step: int = 1) -> Array:
    """K (n, m) with K[i, j] = sqrt(step) g(i - x_j): a Gaussian blur from m = ceil(n / step)
    coarse points x_j = step j + (step - 1) / 2 to n pixels, g the Gaussian of std sigma sampled on
    the integers and normalized to sum 1.

    With step 1, K u K^T is the separable blur of an (n, n) field u with zero padding outside, as
    scipy.ndimage.gaussian_filter(u, sigma, mode="constant") (exactly when 4 sigma is a whole
    number: the kernel is cut at ceil(4 sigma) here, at int(4 sigma + 0.5) there). With step s,
    a field of iid values drawn on the coarse grid blurs to one with the same variance (the
    sqrt(s) per axis makes up for s^2 fewer samples) and, for sigma well above s, the same smooth
    look, from s^2 fewer draws.
    """
    m = -(-n // step)
    x = step * np.arange(m) + (step - 1) / 2
    r = max(1, math.ceil(4 * sigma))
    norm = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).sum()
    d = np.arange(n)[:, None] - x[None, :]  # (n, m)
    K = np.where(np.abs(d) <= r, np.exp(-0.5 * (d / sigma) ** 2) / norm, 0.0) * math.sqrt(step)
    return K.astype(np.float32)


def smooth_fields(u: Array, K: Array) -> Array:
    """K u_b K^T for every field u_b in a stack (B, m, m), K (n, m) -> (B, n, n).

    A stacked matmul: one tiny GEMM per field, each too small for OpenBLAS to thread. Two GEMMs
    over the whole stack (reshaped to (m, B m)) would be threaded, and on a loaded 2-core machine
    a threaded GEMM this small spends most of its time waiting for the other core: 40x slower.
    """
    out: Array = np.matmul(np.matmul(K, u), K.T)  # float32 in, float32 out
    return out


def affine_matrices(
    n: int, spec: AugmentSpec, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Random forward maps (A (n, 2, 2), t (n, 2)) in (row, col) coordinates.

    A = diag(s_row, s_col) R(theta) Sh(phi), with R a rotation (clockwise as displayed for
    theta > 0; theta is drawn symmetrically) and Sh a horizontal shear col += tan(phi) * row.
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
    """out[b, i, j] = images[b] read bilinearly at (rows[b, i, j], cols[b, i, j]); fill outside.

    The batch is padded by 2 pixels of (x - fill) = 0 on every side and coordinates are clipped
    into the padding. Each output pixel's four corners are read by four gathers with one index
    array, the flat position of its top-left corner, from the padded batch shifted by 0, 1, Wp and
    Wp + 1 (right, below, below right). ``rows`` and ``cols`` are overwritten. The result is a new
    array; temporaries live in ``work``.
    """
    work = work or Buffers()
    B, H, W = images.shape
    P = 2
    Hp, Wp = H + 2 * P, W + 2 * P
    padded = work.get("padded", images, (B, Hp, Wp), "float32", zeros=True)  # the border stays 0
    np.subtract(images, np.float32(fill), out=padded[:, P : P + H, P : P + W])
    flat = padded.reshape(-1)
    r = np.clip(rows, -1, H, out=rows)
    c = np.clip(cols, -1, W, out=cols)
    r0 = np.floor(r, out=work.get("r0", r, r.shape, "float32"))
    c0 = np.floor(c, out=work.get("c0", c, c.shape, "float32"))
    r -= r0  # fractional parts: the weights of the lower row and of the right column
    c -= c0
    # base = b Hp Wp + (r0 + P) Wp + (c0 + P): the flat index of the top-left corner.
    # r0 Wp + c0 is a small integer, exact in float32; the rest is added as integers.
    r0 *= Wp
    r0 += c0
    base = work.get("base", r, r.shape, "intp")
    base[...] = r0
    base += (P * Wp + P + np.arange(B, dtype=np.intp) * (Hp * Wp))[:, None, None]
    p00, p01, p10, p11 = (
        np.take(flat[shift:], base, out=work.get(f"p{k}", r, r.shape, "float32"))
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
    out += np.float32(fill)
    return out


def affine_coords(A: Array, t: Array, H: int, W: int) -> tuple[Array, Array]:
    """Source coordinates (rows, cols), each (n, H, W), of the forward maps p -> A (p - c) + c + t.

    Output pixel p reads the input at s = A^-1 (p - c - t) + c, with c the image centre.
    """
    c = np.float32((H - 1) / 2)
    grid = np.mgrid[0:H, 0:W].astype(np.float32) - c
    Ai = np.linalg.inv(A).astype(np.float32)  # (n, 2, 2)
    pr = grid[0][None] - t[:, 0, None, None]  # (n, H, W): p - c - t
    pc = grid[1][None] - t[:, 1, None, None]
    rows = Ai[:, 0, 0, None, None] * pr + Ai[:, 0, 1, None, None] * pc + c
    cols = Ai[:, 1, 0, None, None] * pr + Ai[:, 1, 1, None, None] * pc + c
    return rows, cols


def elastic_displacement(
    n: int, K: Array, alpha: float, rng: np.random.Generator
) -> tuple[Array, Array]:
    """Simard's random displacement fields (d_rows, d_cols), each (n, H, W): alpha K u K^T with
    u ~ U[-1, 1) drawn in float32 on K's (coarse) grid."""
    m = K.shape[1]
    u = rng.random((2 * n, m, m), dtype=np.float32)
    u *= 2
    u -= 1
    d = smooth_fields(u, K)
    d *= np.float32(alpha)
    return d[:n], d[n:]


class Augmenter:
    """Applies an `AugmentSpec` to batches of flattened images (N, H*W), drawing from one Generator."""

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

    def source_coords(self, n: int) -> tuple[Array, Array]:
        """Random source coordinates (rows, cols), each (n, H, W), for n output images."""
        if self.spec.affine:
            A, t = affine_matrices(n, self.spec, self.rng)
            rows, cols = affine_coords(A, t, self.H, self.W)
        else:
            rows = np.repeat(self.grid[0][None], n, axis=0)
            cols = np.repeat(self.grid[1][None], n, axis=0)
        if self.spec.elastic_alpha > 0:
            dr, dc = elastic_displacement(n, self.K, self.spec.elastic_alpha, self.rng)
            rows += dr
            cols += dc
        return rows, cols

    def __call__(self, X: Array) -> Array:
        """A new (N, H*W) float32 array of randomly transformed copies of the rows of X."""
        n = X.shape[0]
        if not self.spec.active:
            return np.array(X, dtype=np.float32)
        rows, cols = self.source_coords(n)
        imgs = X.reshape(n, self.H, self.W)
        out = sample_bilinear(imgs, rows, cols, self.fill, self.work)
        return out.reshape(n, self.H * self.W)


def augmented_copies(X: Array, copies: int, augment: Augmenter, chunk: int = 1024) -> Array:
    """X followed by ``copies`` transformed copies of it (the seed's static augmentation)."""
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
    """
    if not background:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, (os.cpu_count() or 1) - 1), user_api="blas")


class Prefetcher:
    """Yields ``augment(X[perm[batch]])`` for consecutive batches, computed ahead in a background
    thread. The order of RNG draws is that of the batches, so results are reproducible; `close`
    rewinds the augment stream to where the first batch not yet handed out began, so a run
    stopped mid-epoch saves the stream exactly as the inline path would (resumes are bit-exact).
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
                self._q.put((before, augment(np.take(X, perm[i : i + bs], axis=0))))
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
        """Stop the worker early (e.g. when training stops mid-epoch), wait for it, and rewind
        the augment stream past the batches it drew but never handed out."""
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
    """

    def inline(
        X: Array, perm: npt.NDArray[np.intp], batch_size: int
    ) -> Generator[Array, None, None]:
        for i in range(0, len(perm), batch_size):
            yield augment(np.take(X, perm[i : i + batch_size], axis=0))

    def prefetched(
        X: Array, perm: npt.NDArray[np.intp], batch_size: int
    ) -> Generator[Array, None, None]:
        pf = Prefetcher(X, perm, batch_size, augment)
        try:
            yield from pf
        finally:
            pf.close()

    return prefetched if background else inline
