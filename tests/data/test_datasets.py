"""IDX, .mat and .npz readers, named datasets and the downloader, the split and normalization."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from handnet.data import (
    dataset_from_arrays,
    load_dataset,
    load_splits,
    read_idx,
    read_idx_pair,
    registry,
    stratified_split,
    write_idx,
)
from handnet.data.formats import load_mat, load_npz
from handnet.data.split import Normalization, to_unit
from handnet.errors import DatasetError
from handnet.files import new_file_mode

RNG = np.random.default_rng(0)
IMGS = RNG.integers(0, 256, (12, 28, 28), dtype=np.uint8)
LABELS = RNG.integers(0, 10, 12).astype(np.uint8)


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_round_trip(tmp_path: Path, name: str) -> None:
    write_idx(tmp_path / name, IMGS)
    write_idx(tmp_path / ("y" + name), LABELS)
    X, y = read_idx_pair(tmp_path / name, tmp_path / ("y" + name))
    np.testing.assert_array_equal(X, IMGS)
    np.testing.assert_array_equal(y, LABELS)


def _idx_bytes(arr: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 8, arr.ndim])
        + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        + arr.tobytes()
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b + b"\0\0", "trailing bytes"),
        (lambda b: b[:2], "too short"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x42" + b[3:], "not an IDX file"),
        (lambda b: b[:8], "truncated IDX header"),
        (lambda b: b"", "too short"),
    ],
)
def test_idx_malformed(tmp_path: Path, mutate, message: str) -> None:
    p = tmp_path / "bad.idx"
    p.write_bytes(mutate(_idx_bytes(IMGS)))
    with pytest.raises(DatasetError, match=message) as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_idx_wrong_magic_and_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", IMGS)
    write_idx(tmp_path / "y.gz", LABELS[:5])
    with pytest.raises(DatasetError, match="expected 2049"):
        read_idx_pair(tmp_path / "x.gz", tmp_path / "x.gz")
    with pytest.raises(DatasetError, match="12 images but"):
        read_idx_pair(tmp_path / "x.gz", tmp_path / "y.gz")


def test_idx_directory_without_training_images_is_a_dataset_error(tmp_path: Path) -> None:
    for name, array in zip(registry.IDX_FILES, (IMGS[:0], LABELS[:0], IMGS[:4], LABELS[:4])):
        write_idx(tmp_path / name, array)
    with pytest.raises(DatasetError, match="no train images"):
        load_splits(str(tmp_path))


def test_idx_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(_idx_bytes(IMGS))
    (tmp_path / "t.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated gzip"):
        read_idx(tmp_path / "t.gz")
    (tmp_path / "c.gz").write_bytes(data[:20] + bytes(50) + data[70:])
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(tmp_path / "c.gz")
    with pytest.raises(DatasetError, match="not found"):
        read_idx(tmp_path / "missing.gz")


# --- .mat and .npz -------------------------------------------------------------------------------

FLAT = IMGS.reshape(12, 784)


def test_mat_roweis_layout(tmp_path: Path) -> None:
    d = {f"train{k}": FLAT[k : k + 1] for k in range(10)} | {
        f"test{k}": FLAT[k : k + 2] for k in range(10)
    }
    scipy.io.savemat(tmp_path / "mnist_all.mat", d)
    s = load_mat(tmp_path / "mnist_all.mat")
    assert s.X_train.shape == (10, 28, 28) and s.X_test.shape == (20, 28, 28)  # rows as images
    np.testing.assert_array_equal(s.y_train, np.arange(10))
    np.testing.assert_array_equal(s.y_test, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(s.X_train[3], IMGS[3])


def test_mat_trainX_layout(tmp_path: Path) -> None:
    scipy.io.savemat(
        tmp_path / "m.mat",
        {
            "trainX": FLAT[:8],
            "trainY": LABELS[:8].reshape(1, -1),
            "testX": FLAT[8:],
            "testY": LABELS[8:, None],
        },
    )
    s = load_mat(tmp_path / "m.mat")
    np.testing.assert_array_equal(s.X_train, IMGS[:8])
    np.testing.assert_array_equal(s.y_test, LABELS[8:])


def test_mat_mldata_layout(tmp_path: Path) -> None:
    data = np.zeros((784, 70000), np.uint8)
    data[0, :] = np.arange(70000) % 251
    label = (np.arange(70000) % 10).astype(np.float64).reshape(1, -1)
    scipy.io.savemat(
        tmp_path / "mnist-original.mat", {"data": data, "label": label}, do_compression=True
    )
    s = load_mat(tmp_path / "mnist-original.mat")
    assert s.X_train.shape == (60000, 28, 28) and s.X_test.shape == (10000, 28, 28)
    assert s.y_test[0] == 0 and s.X_test[1, 0, 0] == 60001 % 251


def test_mat_unknown_keys_and_v73(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "u.mat", {"images": FLAT, "digits": LABELS})
    with pytest.raises(DatasetError, match=r"found keys \['digits', 'images'\]"):
        load_mat(tmp_path / "u.mat")
    # A v7.3 file is HDF5 with a 512-byte MATLAB text header.
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    (tmp_path / "v73.mat").write_bytes(
        header.ljust(116, b" ") + bytes(8) + b"\x00\x02IM" + bytes(400)
    )
    with pytest.raises(DatasetError, match=r"v7\.3"):
        load_mat(tmp_path / "v73.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DatasetError, match=r"junk\.mat"):
        load_mat(tmp_path / "junk.mat")


def test_npz_keras_layout(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "k.npz", x_train=IMGS[:8], y_train=LABELS[:8], x_test=IMGS[8:], y_test=LABELS[8:]
    )
    s = load_npz(tmp_path / "k.npz")
    np.testing.assert_array_equal(s.X_test, IMGS[8:])


def test_labels_from_1_are_refused_with_the_fix(tmp_path: Path) -> None:
    y = np.arange(12) % 10 + 1  # 1 to 10, as MATLAB numbers classes
    np.savez(tmp_path / "m.npz", x_train=IMGS, y_train=y, x_test=IMGS[:4], y_test=y[:4])
    with pytest.raises(DatasetError, match=r"labels run from 1 to 10, .*subtract 1"):
        load_splits(str(tmp_path / "m.npz"))
    np.savez(tmp_path / "z.npz", x_train=IMGS, y_train=y - 1, x_test=IMGS[:4], y_test=y[:4] - 1)
    assert load_splits(str(tmp_path / "z.npz"))[1] == [str(c) for c in range(10)]


def test_npz_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", x_train=IMGS)
    with pytest.raises(DatasetError, match="missing arrays"):
        load_npz(tmp_path / "m.npz")
    np.savez(
        tmp_path / "o.npz",
        x_train=np.array([{"a": 1}], dtype=object),
        y_train=LABELS,
        x_test=IMGS,
        y_test=LABELS,
    )
    with pytest.raises(DatasetError, match=r"o\.npz"):
        load_npz(tmp_path / "o.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DatasetError, match="not a readable"):
        load_npz(tmp_path / "bad.npz")
    np.savez(
        tmp_path / "n.npz", x_train=IMGS[:8], y_train=LABELS[:9], x_test=IMGS[8:], y_test=LABELS[8:]
    )
    with pytest.raises(DatasetError, match="8 train images but 9 labels"):
        load_npz(tmp_path / "n.npz")


def test_user_file_nan_and_label_checks(tmp_path: Path) -> None:
    x = IMGS.astype(np.float32) / 255
    x[0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=LABELS, x_test=x, y_test=LABELS)
    with pytest.raises(DatasetError, match="NaN"):
        load_dataset(str(tmp_path / "nan.npz"), rng=RNG, val_size=2)
    np.savez(
        tmp_path / "neg.npz",
        x_train=IMGS,
        y_train=LABELS.astype(int) - 5,
        x_test=IMGS,
        y_test=LABELS,
    )
    with pytest.raises(DatasetError, match="labels span"):
        load_splits(str(tmp_path / "neg.npz"))
    with pytest.raises(DatasetError, match="no such file"):
        load_splits(str(tmp_path / "nothing.npz"))


# --- named datasets ------------------------------------------------------------------------------


def test_bundled_mnist(mnist) -> None:
    assert mnist.X_train.shape == (55000, 784) and mnist.X_val.shape == (5000, 784)
    assert mnist.X_test.shape == (10000, 784)
    assert mnist.X_train.dtype == np.float32
    assert np.bincount(mnist.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert abs(mnist.X_train.mean()) < 1e-3 and abs(mnist.X_train.std() - 1) < 1e-3
    assert 0.12 < mnist.norm.mean < 0.14 and 0.30 < mnist.norm.std < 0.32


def test_bundled_mnist_checksum_is_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = registry.bundled_mnist_dir()
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / registry.IDX_FILES[1]).write_bytes(b"tampered")
    monkeypatch.setattr(registry, "bundled_mnist_dir", lambda: tmp_path)
    with pytest.raises(DatasetError, match="SHA-256 mismatch"):
        registry.load_bundled_mnist()


def _fake_idx_dir(d: Path, n: int = 10) -> dict[str, str]:
    """Write tiny IDX files in `d` and return their MD5s."""
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / registry.IDX_FILES[0], IMGS[:n])
    write_idx(d / registry.IDX_FILES[1], LABELS[:n])
    write_idx(d / registry.IDX_FILES[2], IMGS[:4])
    write_idx(d / registry.IDX_FILES[3], LABELS[:4])
    return {f: hashlib.md5((d / f).read_bytes()).hexdigest() for f in registry.IDX_FILES}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a temp folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def test_download_from_local_mirror(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = server
    md5 = _fake_idx_dir(root)
    monkeypatch.setenv("HANDNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "DEBIAN_DIR", tmp_path / "no-debian")
    spec = registry.DATASETS["kmnist"]
    monkeypatch.setitem(
        registry.DATASETS, "kmnist", registry.NamedDataset(spec.name, spec.classes, url, md5)
    )
    s = registry.load_named("kmnist")
    np.testing.assert_array_equal(s.X_train, IMGS[:10])
    assert sorted(p.name for p in (tmp_path / "cache" / "kmnist").iterdir()) == sorted(
        registry.IDX_FILES
    )
    for p in (tmp_path / "cache" / "kmnist").iterdir():  # readable like any new file, not 0600
        assert p.stat().st_mode & 0o777 == new_file_mode()
    # Served from the cache the second time, even with the server's files gone.
    for f in root.iterdir():
        f.unlink()
    assert registry.load_named("kmnist").X_train.shape == (10, 28, 28)


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path: Path) -> None:
    url, root = server
    (root / "f.gz").write_bytes(b"some bytes")
    dest = tmp_path / "cache" / "f.gz"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        registry.download(url + "f.gz", dest, "0" * 32)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    with pytest.raises(DatasetError, match="download failed"):
        registry.download(url + "missing.gz", dest, "0" * 32)
    assert list(dest.parent.iterdir()) == []


def test_named_dataset_found_in_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_idx_dir(tmp_path / "fashion-mnist")
    monkeypatch.setenv("HANDNET_CACHE", str(tmp_path / "empty-cache"))
    splits, classes = load_splits("fashion-mnist", data_dir=tmp_path)
    assert classes[0] == "T-shirt/top" and splits.X_train.shape == (10, 28, 28)
    with pytest.raises(DatasetError, match="unknown dataset"):
        registry.load_named("cifar")


# --- split and normalization ---------------------------------------------------------------------


def test_stratified_split_is_seeded_and_proportional() -> None:
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    tr, va = stratified_split(y, 100, np.random.default_rng(5))
    _, va2 = stratified_split(y, 100, np.random.default_rng(5))
    np.testing.assert_array_equal(va, va2)
    assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va)
    assert np.bincount(y[va]).tolist() == [10, 20, 30, 40]
    with pytest.raises(DatasetError):
        stratified_split(y, 1000, np.random.default_rng(0))


def test_to_unit_and_normalization() -> None:
    assert to_unit(np.array([[0, 255]], np.uint8), "x").tolist() == [[0.0, 1.0]]
    assert to_unit(np.array([[0.0, 0.5]]), "x").tolist() == [[0.0, 0.5]]
    assert to_unit(np.array([[0.0, 127.5]]), "x").tolist() == [[0.0, 0.5]]
    with pytest.raises(DatasetError, match="span"):
        to_unit(np.array([[-1.0, 2.0]]), "x")
    X = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    norm = Normalization.fit(X)
    assert norm == Normalization(0.5, 0.5)
    assert norm.apply(X.copy()).tolist() == [[-1.0, 1.0], [1.0, -1.0]]


def test_dataset_from_arrays_splits_and_standardizes_without_touching_X() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, (100, 6))
    y = np.repeat(np.arange(2), [40, 60]).astype(np.int64)
    X_before = X.copy()
    data = dataset_from_arrays(X, y, ["a", "b"], val_size=10, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(X, X_before)
    assert data.X_train.dtype == np.float32 and data.X_train.shape == (90, 6)
    assert np.bincount(data.y_val).tolist() == [4, 6] and data.X_test.shape == (0, 6)
    assert abs(float(data.X_train.mean())) < 1e-5 and abs(float(data.X_train.std()) - 1) < 1e-5
    # a given normalization is applied as is, and no split without a val_size
    same = dataset_from_arrays(X, y, ["a", "b"], norm=data.norm)
    assert same.norm == data.norm and same.X_val.shape == (0, 6) and len(same.y_train) == 100
    with pytest.raises(ValueError, match="needs an rng"):
        dataset_from_arrays(X, y, ["a", "b"], val_size=10)


def test_gunzipped_idx_directory_reads_like_the_gzipped_one(tmp_path: Path) -> None:
    _fake_idx_dir(tmp_path / "gz")
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in registry.IDX_FILES:  # as `gunzip *.gz` leaves them
        (raw / f.removesuffix(".gz")).write_bytes(
            gzip.decompress((tmp_path / "gz" / f).read_bytes())
        )
    got, want = load_splits(str(raw))[0], load_splits(str(tmp_path / "gz"))[0]
    np.testing.assert_array_equal(got.X_train, want.X_train)
    np.testing.assert_array_equal(got.y_test, want.y_test)


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ("notaurl", "expected an http://, https:// or file:// URL"),
        ("ftp://example.org/", "expected an http://, https:// or file:// URL"),
        ("http://[::1", "not a URL"),
    ],
)
def test_bad_mirror_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: str, message: str
) -> None:
    monkeypatch.setenv("HANDNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(DatasetError, match=f"--mirror {re.escape(mirror)}: {message}"):
        registry.load_named("kmnist", mirror=mirror)
    assert not (tmp_path / "cache").exists()


def test_failed_download_leaves_no_empty_cache_folder(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server  # serves an empty folder: every file is a 404
    monkeypatch.setenv("HANDNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(DatasetError, match="download failed"):
        registry.load_named("kmnist", mirror=url)
    assert list((tmp_path / "cache").iterdir()) == []
