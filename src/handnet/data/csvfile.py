"""CSV files of digits in Kaggle's Digit Recognizer layout, and its submission format.

``train.csv`` is a header ``label,pixel0,...,pixel783`` and one row per image: the label, then the
784 pixels (0-255, row by row). ``test.csv`` is the same without the label column, and a
submission is ``ImageId,Label`` with ImageId counting from 1. A header is recognised by a cell
that is not a number. Without one, the column count says whether a label leads: a square number
of columns is pixels only, one more is a label and pixels.

Every problem is one `DatasetError` naming the file and the line (the header is line 1, as in an
editor); blank lines are skipped.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from handnet.errors import DatasetError

LABEL = "label"  # the name of the label column in a header
SUBMISSION_HEADER = ("ImageId", "Label")


@dataclass(frozen=True)
class CsvDigits:
    """A CSV file's images, flat rows (N, D) uint8 (float32 if a pixel is not whole), and its
    labels (N,) or None when the file has no label column.

    Parameters
    ----------
    X : ndarray of uint8, shape (N, D)
        The pixels, row by row, in [0, 255]; float32 when a pixel is not a whole number.
    y : ndarray of int64, shape (N,), or None
        The labels, or None when the file has no label column.
    """

    X: npt.NDArray[np.generic]
    y: npt.NDArray[np.int64] | None


def read_csv(path: str | Path, pixels: int | None = None) -> CsvDigits:
    """Read a digits CSV.

    Parameters
    ----------
    path : str or Path
        The CSV file, UTF-8 (a byte-order mark is allowed).
    pixels : int, optional
        The number of pixel columns expected (a model's inputs); None accepts any square number
        (784 = 28 x 28).

    Returns
    -------
    CsvDigits
        The pixels as flat rows (N, D) and the labels (N,), or None without a label column.

    Raises
    ------
    DatasetError
        Naming the file and the line: when it is missing, empty or not text, when a row is
        ragged or holds something other than a number, a pixel is outside 0-255, a label is
        not a class number, or the number of pixel columns is wrong.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            first = next(csv.reader([f.readline()]), [])
            if not first:
                raise DatasetError(f"{path}: empty file")
            header = not all(_is_number(c) for c in first)
            names = [c.strip() for c in first] if header else []
            n = len(first)
            labelled = (
                _labelled_header(path, names) if header else _labelled_by_count(path, n, pixels)
            )
            if not header:
                f.seek(0)
            table = _parse(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from None
    if table is None or (table.size and table.shape[1] != n):
        _diagnose(path, header, n)
    assert table is not None
    if table.size == 0:
        raise DatasetError(f"{path}: no rows of data")
    n_pixels = n - labelled
    if pixels is not None and n_pixels != pixels:
        raise DatasetError(f"{path}, line 1: {n_pixels} pixel columns, the model expects {pixels}")
    if pixels is None and math.isqrt(n_pixels) ** 2 != n_pixels:
        raise DatasetError(
            f"{path}, line 1: {n_pixels} pixel columns; expected a square number such as 784 "
            "(28 x 28)"
        )
    X = table[:, labelled:]
    ok = np.isfinite(X) & (X >= 0) & (X <= 255)
    if not ok.all():
        r, c = (int(i) for i in np.argwhere(~ok)[0])
        line, cells = _locate(path, header, r)
        col = labelled + c
        name = f" ({names[col]})" if header else ""
        raise DatasetError(
            f"{path}, line {line}, column {col + 1}{name}: {cells[col].strip()} is outside 0-255"
        )
    if X.dtype.kind != "f" or np.all(X == np.round(X)):
        X = X.astype(np.uint8)
    if not labelled:
        return CsvDigits(X, None)
    labels = table[:, 0]
    bad = (labels < 0) | (labels != np.round(labels))
    if bad.any():
        line, cells = _locate(path, header, int(np.flatnonzero(bad)[0]))
        raise DatasetError(
            f"{path}, line {line}: label {cells[0].strip()} is not a class number (0, 1, 2, ...)"
        )
    return CsvDigits(X, labels.astype(np.int64))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _labelled_header(path: Path, names: list[str]) -> bool:
    """Whether the header's first column is the label; a label column elsewhere is refused."""
    lower = [c.lower() for c in names]
    if lower[0] == LABEL:
        return True
    if LABEL in lower:
        raise DatasetError(
            f"{path}, line 1: the label is column {lower.index(LABEL) + 1}; handnet reads it "
            "from the first column"
        )
    return False


def _labelled_by_count(path: Path, n: int, pixels: int | None) -> bool:
    """Without a header: a label leads when the columns are one more than the pixels."""
    if pixels is not None and n in (pixels, pixels + 1):
        return n == pixels + 1
    if pixels is None:
        if n > 1 and math.isqrt(n - 1) ** 2 == n - 1:
            return True
        if math.isqrt(n) ** 2 == n:
            return False
    want = f"{pixels}" if pixels is not None else "a square number such as 784 (28 x 28)"
    raise DatasetError(
        f"{path}, line 1: {n} columns; expected {want} pixels, with or without a label first"
    )


def _parse(f: TextIO) -> npt.NDArray[Any] | None:
    """The rows below the header as one array: integers first (six times faster to parse than
    floats), then floats; None if neither parses (`_diagnose` then finds the line)."""
    start = f.tell()
    for dtype in (np.int16, np.float32):
        f.seek(start)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                return np.loadtxt(f, delimiter=",", dtype=dtype, ndmin=2)
        except ValueError:
            continue
    return None


def _data_lines(path: Path, header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row below the header."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        for i, cells in enumerate(csv.reader(f), start=1):
            if (header and i == 1) or not any(c.strip() for c in cells):
                continue
            yield i, cells


def _locate(path: Path, header: bool, row: int) -> tuple[int, list[str]]:
    """The line number and cells of data row ``row`` (counted from 0, blank lines skipped)."""
    for k, found in enumerate(_data_lines(path, header)):
        if k == row:
            return found
    raise AssertionError(f"{path}: no data row {row}")  # pragma: no cover


def _diagnose(path: Path, header: bool, n: int) -> None:
    """Raise an error naming the first line that is not ``n`` numbers."""
    for i, cells in _data_lines(path, header):
        if len(cells) != n:
            first = "the header has" if header else "line 1 has"
            raise DatasetError(
                f"{path}, line {i}: {len(cells)} values, but {first} {n} (a ragged row)"
            )
        for j, c in enumerate(cells):
            if not _is_number(c):
                raise DatasetError(
                    f"{path}, line {i}, column {j + 1}: {c.strip()!r} is not a number"
                )
    raise DatasetError(f"{path}: no rows of data")  # pragma: no cover - loadtxt read them


def submission_csv(labels: list[str]) -> str:
    """Kaggle's submission format: ``ImageId,Label``, ImageId counting from 1.

    Parameters
    ----------
    labels : list of str
        The predicted label of each test image, in the order of the test file.

    Returns
    -------
    str
        The file's text: the header, one line per image, and a final newline.
    """
    lines = [",".join(SUBMISSION_HEADER)]
    lines += [f"{i},{label}" for i, label in enumerate(labels, start=1)]
    return "\n".join(lines) + "\n"
