"""Our MATLAB v5 reader against scipy's writer, and the malformed files scipy's reader crashed on."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.io

from handnet.data.matfile import read_mat5
from handnet.errors import DatasetError


def saved(variables: dict[str, object], compress: bool) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, do_compression=compress)
    return buf.getvalue()


@pytest.mark.parametrize("compress", [False, True])
def test_reads_every_numeric_class_and_skips_the_rest(compress: bool) -> None:
    rng = np.random.default_rng(0)
    numeric = {
        f"a_{t}": (rng.random((3, 5)) * 100).astype(t)
        for t in ("f8", "f4", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8")
    }
    extra = {"note": "a string", "cells": np.array([1, "x"], dtype=object), "s": {"k": 1.0}}
    got = read_mat5("t.mat", saved({**numeric, **extra}, compress))
    assert sorted(got) == sorted(numeric)
    for k, v in numeric.items():
        assert got[k].dtype == v.dtype
        np.testing.assert_array_equal(got[k], v)
    assert read_mat5("e.mat", saved({"empty": np.zeros((0, 3))}, compress))["empty"].shape == (0, 3)


X = np.zeros((2, 9), np.uint8)
VALID = saved({"trainX": X, "trainY": np.array([[0, 1]])}, False)


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (184, 149, "unknown data type 149"),  # data type code of trainX: scipy segfaulted
        (172, 224, "claims 224 bytes"),  # name length of trainX: scipy segfaulted
        (132, 200, "claims 200 bytes"),  # the matrix' own length
        (160, 3, "has dimensions"),  # dims (3, 9) for 18 values
        (126, ord("X"), "no endian mark"),
        (124, 7, "unknown MATLAB file version"),
    ],
)
def test_malformed_files_raise_dataset_error(offset: int, value: int, message: str) -> None:
    assert VALID[176:182] == b"trainX"  # the offsets above are for this layout
    bad = bytearray(VALID)
    bad[offset] = value
    with pytest.raises(DatasetError, match=message):
        read_mat5("bad.mat", bytes(bad))
