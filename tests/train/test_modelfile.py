"""Model files: a bit-exact round trip, and a clean ModelFileError for every bad file."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as st_save

from handnet.data.geometry import PLAIN
from handnet.data.split import Normalization
from handnet.errors import DatasetError, HandnetError, ModelFileError
from handnet.files import atomic_write_bytes
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.modelfile import load_model, model_bytes, read_metadata, save_model


def make_clf(dropout: float = 0.0) -> Classifier:
    net = MLP(784, (16,), 10, dropout=dropout, rng=np.random.default_rng(0))
    return Classifier(
        net, Normalization(0.13, 0.31), [str(i) for i in range(10)], (28, 28), {"dataset": "mnist"}
    )


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    clf = make_clf(dropout=0.2)
    p = save_model(clf, tmp_path / "m.safetensors")
    back = load_model(p)
    for k, v in clf.net.parameters().items():
        np.testing.assert_array_equal(back.net.parameters()[k], v)
        assert back.net.parameters()[k].dtype == np.float32
    assert back.norm == clf.norm and back.classes == clf.classes and back.image_shape == (28, 28)
    assert back.net.dropout == 0.2 and back.meta["dataset"] == "mnist"
    assert read_metadata(p)["format_version"] == 1
    assert [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def _rewrite(raw: bytes, edit) -> bytes:
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["handnet"])
    edit(header, meta)
    header["__metadata__"]["handnet"] = json.dumps(meta)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + raw[8 + n :]


def _tensors_with(
    extra: dict[str, np.ndarray] | None = None, drop: str | None = None, reshape: bool = False
) -> bytes:
    clf = make_clf()
    t = {k: np.ascontiguousarray(v) for k, v in clf.net.parameters().items()}
    if drop:
        del t[drop]
    if reshape:
        t["layers.2.W"] = np.zeros((10, 16), np.float32)  # transposed: same size, wrong shape
    t.update(extra or {})
    raw = model_bytes(clf)
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8 : 8 + n])["__metadata__"]
    return st_save(t, metadata=meta)


GOOD = model_bytes(make_clf())

BAD_FILES = {
    "pickle": (pickle.dumps({"W": [1, 2, 3]}), "is a pickle"),
    "torch zip": (b"PK\x03\x04" + bytes(100), "zip archive"),
    "empty": (b"", "only 0 bytes"),
    "truncated header": (GOOD[:50], "truncated"),
    "truncated data": (GOOD[: len(GOOD) - 100], "corrupt tensor data"),
    "header not json": (GOOD[:8] + b"\xff" * 20 + GOOD[28:], "no JSON header"),
    "plain safetensors": (st_save({"W": np.zeros(2, np.float32)}), "not a handnet model"),
    "future version": (
        _rewrite(GOOD, lambda h, m: m.update(format_version=99)),
        "version 99 is not supported",
    ),
    "tampered architecture": (
        _rewrite(GOOD, lambda h, m: m["architecture"].update(hidden_sizes=[10**6])),
        "needs",
    ),
    "missing metadata key": (
        _rewrite(GOOD, lambda h, m: m.pop("normalization")),
        "metadata is incomplete",
    ),
    "deskew not a boolean": (
        _rewrite(GOOD, lambda h, m: m["normalization"].update(deskew="yes")),
        r"normalization: deskew='yes': must be true or false",
    ),
    "pixels not a boolean": (
        _rewrite(GOOD, lambda h, m: m["normalization"].update(pixels="no")),
        r"normalization: pixels='no': must be true or false",
    ),
    "width out of range": (
        _rewrite(GOOD, lambda h, m: m["normalization"].update(width=40)),
        r"normalization: width_normalize=40: must be 0 \(off\) or 2 to 28",
    ),
    "zero std": (
        _rewrite(GOOD, lambda h, m: m["normalization"].update(std=0.0)),
        "the std must be a positive number",
    ),
    "image shape not the input size": (
        _rewrite(GOOD, lambda h, m: m.update(image_shape=[10, 10])),
        r"image_shape \[10, 10\] does not hold the 784 inputs",
    ),
    "config not an object": (
        _rewrite(GOOD, lambda h, m: m.update(config=None)),
        "metadata 'config' is not an object",
    ),
    "config value out of range": (
        _rewrite(GOOD, lambda h, m: m.update(config={"lr": float("nan")})),
        "stored config: lr=nan: must be a positive number",
    ),
    "history not records": (
        _rewrite(GOOD, lambda h, m: m.update(history="oops")),
        "'history' is not a list of records of numbers",
    ),
    "history value not a number": (
        _rewrite(GOOD, lambda h, m: m.update(history=[{"train_loss": "x"}])),
        "'history' is not a list of records of numbers",
    ),
    "metric not a number": (
        _rewrite(GOOD, lambda h, m: m.update(metrics={"val_accuracy": "x"})),
        "metrics 'val_accuracy' is 'x', not a number",
    ),
    "missing tensor": (_tensors_with(drop="layers.0.b"), "needs"),
    "extra tensor": (_tensors_with(extra={"layers.9.W": np.zeros(0, np.float32)}), "extra"),
    "wrong shape": (_tensors_with(reshape=True), "has shape"),
    "wrong dtype": (_tensors_with(extra={"layers.0.b": np.zeros(16, np.float64)}), "dtype"),
    "nan weights": (_tensors_with(extra={"layers.0.b": np.full(16, np.nan, np.float32)}), "NaN"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_model_files(tmp_path: Path, case: str) -> None:
    data, message = BAD_FILES[case]
    p = tmp_path / "bad.safetensors"
    p.write_bytes(data)
    with pytest.raises(ModelFileError, match=message) as e:
        load_model(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_files_from_before_shape_normalization_load_without_it(tmp_path: Path) -> None:
    def as_before(h: dict, m: dict) -> None:
        del m["normalization"]["deskew"], m["normalization"]["width"]  # 0.2.0 had neither

    p = tmp_path / "old.safetensors"
    p.write_bytes(_rewrite(GOOD, as_before))
    assert load_model(p).geometry == PLAIN


def test_run_record_of_an_older_version_loads(tmp_path: Path) -> None:
    """Settings this version does not know (a setting since removed) and a run without validation
    (NaN losses, null accuracy) are not errors."""

    def older(h: dict, m: dict) -> None:
        m["config"] = {"lr": 0.1, "some_old_setting": 3}
        m["history"] = [{"train_loss": 0.5, "val_loss": float("nan")}]
        m["metrics"] = {"val_accuracy": None, "test_accuracy": 0.9, "finetune": None}

    p = tmp_path / "old.safetensors"
    p.write_bytes(_rewrite(GOOD, older))
    assert load_model(p).meta["config"]["some_old_setting"] == 3


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(ModelFileError, match="directory"):
        load_model(tmp_path)


def test_refuses_to_save_nan(tmp_path: Path) -> None:
    clf = make_clf()
    clf.net.parameters()["layers.0.W"][0, 0] = np.nan
    with pytest.raises(HandnetError, match="non-finite"):
        save_model(clf, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full_disk)
    with pytest.raises(HandnetError, match="No space left"):
        atomic_write_bytes(p, b"new contents")
    assert p.read_bytes() == b"old" and [f.name for f in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_gives_the_permissions_of_a_new_file(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        (tmp_path / "plain").write_bytes(b"x")  # what open() gives under this umask
        atomic_write_bytes(tmp_path / "atomic", b"x")
    finally:
        os.umask(old)
    plain, atomic = ((tmp_path / n).stat().st_mode & 0o777 for n in ("plain", "atomic"))
    assert atomic == plain == 0o640


def test_atomic_write_makes_missing_directories_but_not_over_a_file(tmp_path: Path) -> None:
    assert atomic_write_bytes(tmp_path / "a" / "b" / "f.png", b"x").read_bytes() == b"x"
    (tmp_path / "file").write_bytes(b"keep")
    with pytest.raises(HandnetError, match="file: is a file, not a directory"):
        atomic_write_bytes(tmp_path / "file" / "f.png", b"x")
    assert (tmp_path / "file").read_bytes() == b"keep"


def test_atomic_write_read_only_directory(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        if (d / "probe").exists() or _writable(d):
            pytest.skip("running as a user that ignores directory permissions")
        with pytest.raises(HandnetError, match="cannot write"):
            atomic_write_bytes(d / "m.safetensors", b"x")
    finally:
        d.chmod(0o700)


def _writable(d: Path) -> bool:
    try:
        (d / "probe").write_bytes(b"")
    except OSError:
        return False
    (d / "probe").unlink()
    return True


def test_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path: Path) -> None:
    # The first byte of a safetensors file is the low byte of its header length; 0x80 is also the
    # first byte of a pickle. The resume test found this: a valid file must still load.
    clf = make_clf()
    for pad in range(256):
        clf.meta["pad"] = "x" * pad
        raw = model_bytes(clf)
        if raw[0] == 0x80:
            break
    assert raw[0] == 0x80
    (tmp_path / "m.safetensors").write_bytes(raw)
    assert load_model(tmp_path / "m.safetensors").meta["pad"] == clf.meta["pad"]


def test_one_image_instead_of_a_batch_is_named() -> None:
    clf = make_clf()
    with pytest.raises(DatasetError, match=r"one item of shape \(28, 28\); pass a batch"):
        clf.predict(np.zeros((28, 28), np.uint8))
    with pytest.raises(DatasetError, match=r"shape \(3, 20, 20\) has 400 features per row"):
        clf.predict(np.zeros((3, 20, 20), np.uint8))
