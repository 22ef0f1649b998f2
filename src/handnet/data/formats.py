"""Readers for the file formats MNIST-style data comes in: IDX (raw or gzip), MATLAB .mat, Keras
.npz, and CSV (`handnet.data.csvfile`).

Every reader validates what it reads and raises `DatasetError` naming the file and the problem;
nothing here unpickles (``np.load(..., allow_pickle=False)``).
"""

from __future__ import annotations

import gzip
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handnet.data.csvfile import read_csv
from handnet.data.matfile import read_mat5
from handnet.data.split import held_out_test
from handnet.errors import DatasetError
from handnet.files import atomic_write_bytes

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
# IDX type codes -> big-endian NumPy dtypes (the IDX spec's table).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MAX_DECOMPRESSED = 2**31  # refuse anything that would inflate past 2 GiB


@dataclass(frozen=True)
class Splits:
    """Raw train and test arrays as a file holds them: images (N, H, W) or (N, D), labels (N,).

    The images keep the file's dtype (uint8 for IDX files, often float for .mat and .npz).

    Parameters
    ----------
    X_train : ndarray, shape (n_train, H, W)
        Training images, or flat rows ``(n_train, D)``.
    y_train : ndarray of int64, shape (n_train,)
        Training labels.
    X_test : ndarray, shape (n_test, H, W)
        Test images, or flat rows ``(n_test, D)``, of the same size as the training images.
    y_test : ndarray of int64, shape (n_test,)
        Test labels.
    """

    X_train: npt.NDArray[np.generic]
    y_train: npt.NDArray[np.int64]
    X_test: npt.NDArray[np.generic]
    y_test: npt.NDArray[np.int64]

    def every_image(self) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.int64]]:
        """Train and test images together, with their labels: a dataset a model never saw.

        Returns
        -------
        X : ndarray, shape (n_train + n_test, H, W)
            The training images, then the test images (or flat rows ``(N, D)``).
        y : ndarray of int64, shape (n_train + n_test,)
            Their labels, in the same order.
        """
        X = np.concatenate([self.X_train, self.X_test])
        return X, np.concatenate([self.y_train, self.y_test])


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from None
    if raw[:2] != b"\x1f\x8b":  # not gzip: a raw IDX file
        return raw
    try:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = d.decompress(raw, _MAX_DECOMPRESSED)
        if d.unconsumed_tail:
            raise DatasetError(f"{path}: decompresses to more than 2 GiB")
        if not d.eof:
            raise DatasetError(f"{path}: truncated gzip stream")
        return out
    except (zlib.error, gzip.BadGzipFile, EOFError) as e:
        raise DatasetError(f"{path}: corrupt gzip data ({e})") from None


def read_idx(path: str | Path, expect_magic: int | None = None) -> npt.NDArray[np.generic]:
    """Read one IDX file (optionally gzip-compressed) into an array of its declared shape.

    Layout: 2 zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
    dimension, then the data.

    Parameters
    ----------
    path : str or Path
        The IDX file, raw or gzip-compressed (recognised by its first bytes, not its name).
    expect_magic : int, optional
        The magic number the file must have: 2051 for images, 2049 for labels; None accepts any.

    Returns
    -------
    ndarray, shape (N, H, W)
        The data in its declared dtype (uint8 for MNIST) and shape, ``(N, H, W)`` for an
        images file and ``(N,)`` for a labels file, in native byte order.

    Raises
    ------
    DatasetError
        When the file is missing, not IDX, truncated, has trailing bytes, has another magic
        number, or is corrupt gzip or would decompress past 2 GiB.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DatasetError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DatasetError(f"{path}: not an IDX file (magic {magic})")
    if expect_magic is not None and magic != expect_magic:
        raise DatasetError(f"{path}: IDX magic is {magic}, expected {expect_magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DatasetError(f"{path}: {kind}: {len(raw)} bytes, header {dims} needs {expected}")
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def read_idx_pair(
    images: str | Path, labels: str | Path
) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.int64]]:
    """Read an images file (magic 2051) and its labels file (magic 2049); their counts must agree.

    Parameters
    ----------
    images : str or Path
        The IDX images file, such as ``train-images-idx3-ubyte.gz``.
    labels : str or Path
        The IDX labels file, such as ``train-labels-idx1-ubyte.gz``.

    Returns
    -------
    X : ndarray, shape (N, H, W)
        The images, uint8 for MNIST.
    y : ndarray of int64, shape (N,)
        Their labels.

    Raises
    ------
    DatasetError
        When a file is unreadable (`read_idx`) or the counts differ.
    """
    X = read_idx(images, IDX_IMAGES_MAGIC)
    y = read_idx(labels, IDX_LABELS_MAGIC)
    if X.shape[0] != y.shape[0]:
        raise DatasetError(f"{images}: {X.shape[0]} images but {labels} has {y.shape[0]} labels")
    return X, y.astype(np.int64)


def write_idx(path: str | Path, array: npt.NDArray[np.uint8]) -> None:
    """Write a uint8 array as IDX (gzip when the name ends in .gz). Used by tests and tools.

    Parameters
    ----------
    path : str or Path
        The file to write, atomically; a name ending in ``.gz`` is gzip-compressed.
    array : ndarray of uint8, shape (N, H, W)
        The data, of any shape (``(N,)`` for labels); other dtypes are cast to uint8.
    """
    path = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    data = header + a.tobytes()
    atomic_write_bytes(path, gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


def _labels_vector(path: Path, key: str, labels: object) -> npt.NDArray[np.int64]:
    y: np.ndarray = np.asarray(labels)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    elif y.ndim == 2:  # one-hot rows
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise DatasetError(f"{path}: '{key}' has shape {y.shape}, expected a vector of labels")
    if (
        not np.issubdtype(y.dtype, np.number)
        or not np.all(np.isfinite(y))
        or np.any(y != np.round(y))
    ):
        raise DatasetError(f"{path}: '{key}' must hold whole-number labels")
    return y.astype(np.int64)


def load_mat(path: str | Path) -> Splits:
    """Load MNIST from a MATLAB .mat file in one of the layouts people download.

    - Roweis' ``mnist_all.mat``: ``train0``..``train9`` and ``test0``..``test9``, each (N, 784)
      uint8;
    - ``trainX``/``trainY``/``testX``/``testY``: images (N, 784), labels (N,), (N, 1) or one-hot;
    - mldata's ``mnist-original.mat``: ``data`` (784, 70000) and ``label`` (1, 70000), where the
      first 60,000 columns are the training set.

    Parameters
    ----------
    path : str or Path
        The ``.mat`` file (MATLAB v5 or v7, not v7.3).

    Returns
    -------
    Splits
        The training and test images, flat rows of a square length as square images
        (`as_images`), and their int64 labels.

    Raises
    ------
    DatasetError
        When the file is missing, not a readable MATLAB file, or in none of these layouts.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from None
    # Our own strict reader, not scipy.io.loadmat: scipy's compiled reader segfaults on some
    # malformed files (see handnet.data.matfile).
    mat = read_mat5(str(path), raw)
    keys = sorted(k for k in mat if not k.startswith("__"))
    try:
        if all(f"train{d}" in mat and f"test{d}" in mat for d in range(10)):
            parts = {s: [np.asarray(mat[f"{s}{d}"]) for d in range(10)] for s in ("train", "test")}
            X_tr, X_te = (np.concatenate(parts[s]) for s in ("train", "test"))
            y_tr, y_te = (
                np.concatenate([np.full(len(p), d, np.int64) for d, p in enumerate(parts[s])])
                for s in ("train", "test")
            )
        elif {"trainX", "trainY", "testX", "testY"} <= set(mat):
            X_tr, X_te = np.asarray(mat["trainX"]), np.asarray(mat["testX"])
            y_tr = _labels_vector(path, "trainY", mat["trainY"])
            y_te = _labels_vector(path, "testY", mat["testY"])
        elif {"data", "label"} <= set(mat):
            data = np.asarray(mat["data"]).T  # (784, N) -> (N, 784)
            y = _labels_vector(path, "label", mat["label"])
            if data.shape[0] != 70000:
                raise DatasetError(
                    f"{path}: mldata layout expects 70000 columns (60000 train + 10000 test), "
                    f"found {data.shape[0]}"
                )
            X_tr, X_te, y_tr, y_te = data[:60000], data[60000:], y[:60000], y[60000:]
        else:
            raise DatasetError(
                f"{path}: unknown .mat layout; found keys {keys}, expected train0..train9/test0..test9, "
                "trainX/trainY/testX/testY, or data/label"
            )
    except ValueError as e:  # ragged concatenation
        raise DatasetError(f"{path}: inconsistent arrays ({e})") from None
    return checked_splits(path, Splits(X_tr, y_tr, X_te, y_te))


def load_npz(path: str | Path) -> Splits:
    """Load the Keras layout: an .npz with ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Labels may be a vector, a column (N, 1) or one-hot rows (N, C).

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file; it is read without unpickling.

    Returns
    -------
    Splits
        The training and test images as stored, flat rows of a square length as square images
        (`as_images`), and their int64 labels.

    Raises
    ------
    DatasetError
        When the file is missing, not a readable ``.npz``, lacks one of the four arrays, holds
        Python objects, or declares more data than it holds.
    """
    path = Path(path)
    needed = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise DatasetError(f"{path}: a single .npy array, not an .npz archive")
            missing = [k for k in needed if k not in z.files]
            if missing:
                raise DatasetError(f"{path}: missing arrays {missing}; found {sorted(z.files)}")
            for k in needed:
                _check_npy_size(path, z.zip, k)  # type: ignore[arg-type]
            arrays = {k: z[k] for k in needed}
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except DatasetError:
        raise
    except Exception as e:  # zipfile and numpy raise many types on bad bytes (fuzzing found 9)
        raise DatasetError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    y_tr = _labels_vector(path, "y_train", arrays["y_train"])
    y_te = _labels_vector(path, "y_test", arrays["y_test"])
    return checked_splits(path, Splits(arrays["x_train"], y_tr, arrays["x_test"], y_te))


def _check_npy_size(path: Path, archive: zipfile.ZipFile, key: str) -> None:
    """Refuse an array whose header declares more data than its archive member holds.

    ``np.load`` allocates the declared shape before reading, so a tampered header could ask for
    terabytes; the member's own size bounds what can really be there.
    """
    try:
        info = archive.getinfo(f"{key}.npy")
    except KeyError:
        info = archive.getinfo(key)
    with archive.open(info) as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(f)
    if dtype.hasobject:
        raise DatasetError(f"{path}: '{key}' holds Python objects; handnet never unpickles")
    needed = dtype.itemsize
    for d in shape:
        needed *= int(d)
    if needed > info.file_size:
        raise DatasetError(
            f"{path}: '{key}' declares shape {shape} ({needed} bytes) but holds {info.file_size}"
        )


def as_images(X: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Flat rows whose length is a square, side 2 or more, as square images.

    For MNIST, (N, 784) -> (N, 28, 28).

    The .mat, CSV and many .npz files store each image as one row, row by row (784 = 28 x 28);
    read as images, they train with the augmentation and shape normalization that need a height
    and a width. Other arrays are returned as they are.

    Parameters
    ----------
    X : ndarray, shape (N, D)
        Flat rows, or images already ``(N, H, W)``.

    Returns
    -------
    ndarray, shape (N, side, side)
        ``X`` reshaped to square images when ``D = side * side`` with ``side >= 2``, else
        ``X`` itself.
    """
    if X.ndim != 2:
        return X
    side = math.isqrt(X.shape[1])
    return X.reshape(len(X), side, side) if side >= 2 and side * side == X.shape[1] else X


def checked_splits(path: Path, s: Splits) -> Splits:
    """Common checks: numeric images, one label per image, the same image size in train and test.

    Flat rows of a square length come back as square images (`as_images`).

    Parameters
    ----------
    path : Path
        The file or folder the splits came from, for the error message.
    s : Splits
        The splits as read.

    Returns
    -------
    Splits
        The same arrays, flat rows of a square length reshaped to square images.

    Raises
    ------
    DatasetError
        When the images are not numbers, not at least 2-D, empty, not one per label, or of
        another size in the test split than in the training split.
    """
    for name, X, y in (("train", s.X_train, s.y_train), ("test", s.X_test, s.y_test)):
        if X.dtype.kind not in "uif":
            raise DatasetError(f"{path}: {name} images have dtype {X.dtype}, expected numbers")
        if X.ndim < 2:
            raise DatasetError(f"{path}: {name} images have shape {X.shape}")
        if X.shape[0] == 0:
            raise DatasetError(f"{path}: no {name} images")
        if X.shape[0] != y.shape[0]:
            raise DatasetError(f"{path}: {X.shape[0]} {name} images but {y.shape[0]} labels")
    if s.X_train.shape[1:] != s.X_test.shape[1:]:
        raise DatasetError(
            f"{path}: train images are {s.X_train.shape[1:]} but test images are {s.X_test.shape[1:]}"
        )
    return Splits(as_images(s.X_train), s.y_train, as_images(s.X_test), s.y_test)


def load_csv(path: str | Path) -> Splits:
    """A labelled digits CSV (Kaggle's ``train.csv``), its test split held out (`held_out_test`).

    Parameters
    ----------
    path : str or Path
        The CSV file, the label in its first column (`handnet.data.csvfile`).

    Returns
    -------
    Splits
        Square images (N, side, side) of the file's pixels and their labels, one seventh of
        them held out as the test split.

    Raises
    ------
    DatasetError
        When the file cannot be read as digits or has no label column.
    """
    path = Path(path)
    digits = read_csv(path)
    if digits.y is None:
        raise DatasetError(
            f"{path}, line 1: no label column; a dataset needs the label first "
            "(label,pixel0,...), as in Kaggle's train.csv"
        )
    return labelled_splits(path, digits.X, digits.y)


def labelled_splits(path: Path, X: npt.NDArray[np.generic], y: npt.NDArray[np.int64]) -> Splits:
    """Train and test splits of one labelled set, the test images held out (`held_out_test`).

    Parameters
    ----------
    path : Path
        Where the set came from; names it in error messages.
    X : ndarray, shape (N, H, W)
        The images, or flat rows ``(N, D)``.
    y : ndarray of int64, shape (N,)
        Their labels.

    Returns
    -------
    Splits
        The checked splits (`checked_splits`); the same images are held out every time.

    Raises
    ------
    DatasetError
        When the set is too small to hold out a test split or fails `checked_splits`.
    """
    tr, te = held_out_test(y, str(path))
    return checked_splits(path, Splits(X[tr], y[tr], X[te], y[te]))
