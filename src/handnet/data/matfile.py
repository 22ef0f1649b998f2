"""A strict reader for MATLAB v5 ``.mat`` files (``save -v6`` / ``-v7``): numeric arrays only.

Why our own: ``scipy.io.loadmat`` runs compiled code that crashes the interpreter (a segfault, not
an exception) on some malformed files, e.g. an unknown data type code or an over-long name; the
fuzz tests found several. This reader checks every tag against the bytes that are really there
and only ever raises `DatasetError`.

Layout: a 128-byte header (text, subsystem offset, version 0x0100, endian mark ``IM`` or ``MI``),
then data elements. An element is a tag (u32 type, u32 byte count; or the "small" form, count in
the upper and type in the lower 16 bits of one u32, with up to 4 data bytes) and its data, padded
to 8 bytes inside a matrix. A top-level element is miMATRIX or miCOMPRESSED (zlib around one
miMATRIX). A matrix holds: array flags (class in the low byte; complex/logical bits), dimensions
(miINT32), name (miINT8), then the real part, stored column-major in any numeric type. Variables
of other classes (cell, struct, char, sparse, ...) are skipped: our layouts need none of them.
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

from handnet.errors import DatasetError

MI_MATRIX, MI_COMPRESSED = 14, 15
# miXXX data types -> NumPy element types (byte order is added from the header).
MI_TYPES = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
}
# mxXXX numeric classes -> the dtype the variable has in MATLAB.
MX_CLASSES = {
    6: np.float64,
    7: np.float32,
    8: np.int8,
    9: np.uint8,
    10: np.int16,
    11: np.uint16,
    12: np.int32,
    13: np.uint32,
    14: np.int64,
    15: np.uint64,
}
_COMPLEX = 0x0800
_MAX_DECOMPRESSED = 2**31


class _Reader:
    def __init__(self, where: str, raw: bytes, order: str) -> None:
        self.where, self.raw, self.order = where, raw, order

    def fail(self, why: str) -> DatasetError:
        return DatasetError(f"{self.where}: not a valid MATLAB file ({why})")

    def u32(self, pos: int) -> int:
        return int.from_bytes(self.raw[pos : pos + 4], "little" if self.order == "<" else "big")

    def tag(self, pos: int, end: int) -> tuple[int, int, int, int]:
        """(type, data start, data length, next element) of the element at ``pos``."""
        if pos + 8 > end:
            raise self.fail(f"element tag at byte {pos} runs past the end")
        first = self.u32(pos)
        if first >> 16:  # small data element: count and type share one word, data follows
            mtype, n = first & 0xFFFF, first >> 16
            if n > 4:
                raise self.fail(f"small element at byte {pos} claims {n} bytes")
            return mtype, pos + 4, n, pos + 8
        n = self.u32(pos + 4)
        start = pos + 8
        if start + n > end:
            raise self.fail(f"element at byte {pos} claims {n} bytes, only {end - start} left")
        return first, start, n, start + n + (-n % 8)

    def array(self, mtype: int, start: int, n: int) -> npt.NDArray[np.generic]:
        if mtype not in MI_TYPES:
            raise self.fail(f"unknown data type {mtype}")
        dtype = np.dtype(self.order + MI_TYPES[mtype])
        if n % dtype.itemsize:
            raise self.fail(f"{n} bytes is not a whole number of {dtype} values")
        return np.frombuffer(self.raw, dtype=dtype, count=n // dtype.itemsize, offset=start)

    def matrix(self, start: int, end: int) -> tuple[str, npt.NDArray[np.generic] | None]:
        """(name, array) of the miMATRIX body in [start, end); array None for skipped classes."""
        t, s, n, pos = self.tag(start, end)
        flags = self.array(t, s, n)
        if t != 6 or len(flags) != 2:
            raise self.fail("array flags missing")
        cls, is_complex = int(flags[0]) & 0xFF, bool(int(flags[0]) & _COMPLEX)
        t, s, n, pos = self.tag(pos, end)
        dims = self.array(t, s, n)
        if t != 5 or len(dims) < 2 or any(int(d) < 0 for d in dims):
            raise self.fail("bad dimensions")
        t, s, n, pos = self.tag(pos, end)
        if t != 1:
            raise self.fail("variable name missing")
        try:
            name = self.raw[s : s + n].decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("variable name is not ASCII") from None
        if cls not in MX_CLASSES:
            return name, None
        if is_complex:
            raise DatasetError(f"{self.where}: '{name}' is complex; expected real numbers")
        t, s, n, pos = self.tag(pos, end)
        values = self.array(t, s, n)
        shape = tuple(int(d) for d in dims)
        count = 1
        for d in shape:
            count *= d
        if count != values.size:
            raise self.fail(f"'{name}' has dimensions {shape} but {values.size} values")
        return name, values.astype(MX_CLASSES[cls]).reshape(shape, order="F")


def read_mat5(where: str, raw: bytes) -> dict[str, npt.NDArray[np.generic]]:
    """Every numeric variable of a MATLAB v5 file, by name.

    Parameters
    ----------
    where : str
        The file's name, for error messages.
    raw : bytes
        The file's whole content.

    Returns
    -------
    dict of str to ndarray
        Each numeric variable in its MATLAB class's dtype and MATLAB's shape, at least 2-D:
        ``(rows, columns)``, or more dimensions. Variables of other classes are left out.

    Raises
    ------
    DatasetError
        When the file is not MATLAB v5/v7 (v7.3 is HDF5), is malformed or truncated, or holds
        a complex variable.
    """
    if len(raw) < 128:
        raise DatasetError(f"{where}: not a MATLAB file (only {len(raw)} bytes)")
    version, mark = raw[124:126], raw[126:128]
    if mark not in (b"IM", b"MI"):
        raise DatasetError(f"{where}: not a MATLAB v5/v7 file (no endian mark in its header)")
    order = "<" if mark == b"IM" else ">"
    v = int.from_bytes(version, "little" if order == "<" else "big")
    if v == 0x0200:
        raise DatasetError(
            f"{where}: MATLAB v7.3 (HDF5) files are not supported; re-save with save('-v7')"
        )
    if v != 0x0100:
        raise DatasetError(f"{where}: unknown MATLAB file version {v:#06x}")
    out: dict[str, npt.NDArray[np.generic]] = {}
    top = _Reader(where, raw, order)
    pos = 128
    while pos < len(raw):
        if len(raw) - pos < 8:
            break  # trailing padding
        t, s, n, _ = top.tag(pos, len(raw))
        nxt = s + n  # top-level elements are not padded
        if t == MI_COMPRESSED:
            d = zlib.decompressobj()
            try:
                body = d.decompress(raw[s : s + n], _MAX_DECOMPRESSED)
            except zlib.error as e:
                raise DatasetError(f"{where}: corrupt compressed variable ({e})") from None
            if d.unconsumed_tail:
                raise DatasetError(f"{where}: a variable decompresses to more than 2 GiB")
            inner = _Reader(where, body, order)
            t, s, n, _ = inner.tag(0, len(body))
            if t == MI_MATRIX and n:
                name, a = inner.matrix(s, s + n)
                if a is not None:
                    out[name] = a
        elif t == MI_MATRIX:
            if n:
                name, a = top.matrix(s, s + n)
                if a is not None:
                    out[name] = a
        else:
            raise top.fail(f"unexpected top-level element type {t} at byte {pos}")
        pos = nxt
    return out
