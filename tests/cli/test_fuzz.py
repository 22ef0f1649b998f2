"""Fuzzing the readers: random bytes and mutated valid files may only raise handnet's own errors.

Each reader (IDX, .npz, .mat, model file, checkpoint) gets random bytes and mutations of a valid
file (flipped bytes, truncation, insertion). Anything other than success or a `HandnetError` is a
bug, and so is a call that runs past its time guard (a hang). Bounded by ``max_examples`` so the
suite stays fast; raise ``HANDNET_FUZZ_EXAMPLES`` for a longer hunt.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handnet.data import read_idx
from handnet.data.formats import load_mat, load_npz
from handnet.data.split import Normalization
from handnet.errors import HandnetError
from handnet.nn.model import MLP
from handnet.train.checkpoint import checkpoint_bytes, load_checkpoint
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState
from handnet.train.modelfile import load_model, model_bytes

EXAMPLES = int(os.environ.get("HANDNET_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the time guard below catches hangs; deadlines flake on a loaded machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("CI", "").lower() in ("1", "true", "yes"),
)
GUARD_S = 10.0  # far above any reader's time on these small inputs


@contextmanager
def time_guard(seconds: float = GUARD_S) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body runs longer than ``seconds``."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"reader still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


WORK = Path(tempfile.mkdtemp(prefix="handnet-fuzz-"))


def only_handnet_errors(read: Callable[[Path], object], name: str, data: bytes) -> None:
    path = WORK / name
    path.write_bytes(data)
    with time_guard():
        try:
            read(path)
        except HandnetError as e:
            assert "\n" not in str(e), "errors are one line"


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid file with a few random edits: overwrite, truncate, insert or delete bytes."""
    b = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "truncate", "insert", "delete"]))
        if not b:
            break
        i = draw(st.integers(0, len(b) - 1))
        if op == "set":
            b[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del b[i : i + draw(st.integers(1, 8))]
    return bytes(b)


def biased_headers(valid: bytes, header_len: int) -> st.SearchStrategy[bytes]:
    """Edits concentrated in the header, where sizes and types live."""
    return st.builds(
        lambda pos, val: valid[:pos] + bytes([val]) + valid[pos + 1 :],
        st.integers(0, header_len - 1),
        st.integers(0, 255),
    )


# --- IDX -------------------------------------------------------------------------------------

IMAGES = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
IDX_RAW = (
    bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in IMAGES.shape) + IMAGES.tobytes()
)
IDX_GZ = gzip.compress(IDX_RAW, mtime=0)


@FUZZ
@given(st.binary(max_size=200))
def test_idx_random_bytes(data: bytes) -> None:
    only_handnet_errors(read_idx, "r.idx", data)


@FUZZ
@given(st.one_of(mutated(IDX_RAW), biased_headers(IDX_RAW, 16), mutated(IDX_GZ)))
def test_idx_mutated(data: bytes) -> None:
    only_handnet_errors(read_idx, "m.idx", data)


@FUZZ
@given(st.integers(1, 255), st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6))
def test_idx_huge_declared_shapes(ndim: int, dims: list[int]) -> None:
    """A header may declare any shape; the reader must not allocate it or overflow computing it."""
    dims = (dims * ndim)[:ndim]
    header = bytes([0, 0, 8, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)
    only_handnet_errors(read_idx, "h.idx", header + b"\x00" * 16)


# --- .npz ------------------------------------------------------------------------------------


NPZ_X = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)  # x_train; x_test is NPZ_X[::-1]


def _npz() -> bytes:
    buf = io.BytesIO()
    x = NPZ_X
    np.savez(buf, x_train=x, y_train=np.array([0, 1]), x_test=x[::-1], y_test=np.array([1, 0]))
    return buf.getvalue()


def _npz_compressed() -> bytes:
    buf = io.BytesIO()
    x = NPZ_X
    np.savez_compressed(
        buf, x_train=x, y_train=np.array([0, 1]), x_test=x[::-1], y_test=np.array([1, 0])
    )
    return buf.getvalue()


NPZ, NPZ_Z = _npz(), _npz_compressed()


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(NPZ), mutated(NPZ_Z)))
def test_npz(data: bytes) -> None:
    only_handnet_errors(load_npz, "d.npz", data)


@FUZZ
@given(st.integers(0, len(NPZ) - 1), st.integers(0, 255))
def test_npz_every_byte(pos: int, val: int) -> None:
    only_handnet_errors(load_npz, "b.npz", NPZ[:pos] + bytes([val]) + NPZ[pos + 1 :])


# --- .mat ------------------------------------------------------------------------------------


MAT_X = np.arange(18, dtype=np.uint8).reshape(2, 9)  # trainX; testX is MAT_X[::-1]


def _mat(compress: bool) -> bytes:
    buf = io.BytesIO()
    x = MAT_X
    scipy.io.savemat(
        buf,
        {"trainX": x, "trainY": np.array([[0, 1]]), "testX": x[::-1], "testY": np.array([[1, 0]])},
        do_compression=compress,
    )
    return buf.getvalue()


MAT, MAT_Z = _mat(False), _mat(True)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(MAT), mutated(MAT_Z), biased_headers(MAT, 200)))
def test_mat(data: bytes) -> None:
    only_handnet_errors(load_mat, "d.mat", data)


# --- model files and checkpoints -------------------------------------------------------------


NET = MLP(6, (4,), 3, rng=np.random.default_rng(0))
for p in NET.parameters().values():  # weights no fresh network has, whatever its seed
    p[...] = np.linspace(-1, 1, p.size, dtype=p.dtype).reshape(p.shape)
CLF = Classifier(NET, Normalization(0.1, 0.3), ["a", "b", "c"], (2, 3))
CKPT_CFG = TrainConfig(dataset="x", hidden_sizes=(4,), epochs=2, val_size=0)
CKPT_STATE = TrainState.fresh(CKPT_CFG, 6, 3, Rngs.from_seed(0))
MODEL = model_bytes(CLF)
CKPT = checkpoint_bytes(CKPT_STATE, CKPT_CFG, {"name": "x", "n_train": 10})
MODEL_HEADER = 8 + int.from_bytes(MODEL[:8], "little")


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(MODEL), biased_headers(MODEL, MODEL_HEADER)))
def test_model_file(data: bytes) -> None:
    only_handnet_errors(load_model, "m.safetensors", data)


@FUZZ
@given(st.integers(8, MODEL_HEADER - 1), st.sampled_from(b'0123456789{}[]",:-.e ax'))
def test_model_header_characters(pos: int, char: int) -> None:
    """One character of the JSON header changed: numbers, brackets and quotes matter most."""
    only_handnet_errors(load_model, "c.safetensors", MODEL[:pos] + bytes([char]) + MODEL[pos + 1 :])


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(CKPT)))
def test_checkpoint_file(data: bytes) -> None:
    only_handnet_errors(load_checkpoint, "c.safetensors", data)


def read_back(name: str, data: bytes, read: Callable[[Path], Any]) -> Any:
    (WORK / name).write_bytes(data)
    return read(WORK / name)


def test_valid_inputs_load_as_what_was_written() -> None:
    """The seeds of the mutations are themselves valid, so the fuzzers start from real files: each
    reader gives back the arrays, labels and weights that were written."""
    for name, data in (("v.idx", IDX_RAW), ("v.idx.gz", IDX_GZ)):
        x = read_back(name, data, read_idx)
        assert x.dtype == np.uint8
        np.testing.assert_array_equal(x, IMAGES)
    for name, data, read, X in (
        ("v.npz", NPZ, load_npz, NPZ_X),
        ("z.npz", NPZ_Z, load_npz, NPZ_X),
        ("v.mat", MAT, load_mat, MAT_X),
        ("z.mat", MAT_Z, load_mat, MAT_X),
    ):
        splits = read_back(name, data, read)
        np.testing.assert_array_equal(splits.X_train.reshape(X.shape), X, err_msg=name)
        np.testing.assert_array_equal(splits.X_test.reshape(X.shape), X[::-1], err_msg=name)
        assert splits.y_train.tolist() == [0, 1] and splits.y_test.tolist() == [1, 0], name
    clf = read_back("v.safetensors", MODEL, load_model)
    assert (clf.classes, clf.image_shape, clf.norm) == (CLF.classes, CLF.image_shape, CLF.norm)
    want = CLF.net.state_dict()
    assert clf.net.state_dict().keys() == want.keys()
    for k, v in clf.net.state_dict().items():
        np.testing.assert_array_equal(v, want[k], err_msg=k)
    ck = read_back("k.safetensors", CKPT, load_checkpoint)
    assert ck.config == CKPT_CFG and ck.dataset == {"name": "x", "n_train": 10}
    for k, v in CKPT_STATE.model.state_dict().items():
        np.testing.assert_array_equal(ck.tensors[f"params.{k}"], v, err_msg=k)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    for p in WORK.iterdir():
        p.unlink()
    WORK.rmdir()
