"""The bad-input matrix, through the command line: every case gets one line on stderr, exit 2,
no traceback, nothing half-written, and every file that was there before is left as it was.

The commands run in this process (`handnet.cli.main`), except where a real process is the point:
another user (a read-only directory), a file-size limit, a private tmpfs.

Flags already covered by test_cli.py (negative lr, dropout 1, batch 0, hidden 0, sigmoid, 0 epochs)
are not repeated here.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import Ran, quadrants, require, run_main, write_idx_dir
from safetensors.numpy import save as st_save

from handnet.data.split import Normalization
from handnet.nn.model import MLP
from handnet.train.classifier import Classifier
from handnet.train.modelfile import save_model

HANDNET = [sys.executable, "-m", "handnet.cli"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
pytestmark = pytest.mark.usefixtures("unrendered_plots")  # files and output, not pixels


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def assert_one_line_error(r: Ran | subprocess.CompletedProcess[str], message: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr, lines[0]


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    """A world-readable directory (the read-only case runs the CLI as ``nobody``)."""
    d = Path(tempfile.mkdtemp(prefix="handnet-bad-input-"))
    d.chmod(0o755)
    write_idx_dir(d / "idx", quadrants(300), quadrants(100, seed=1))
    yield d
    shutil.rmtree(d)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output directory that already holds a finished run, which no failure may touch."""
    old = tmp_path / "runs" / "model-20240101-000000-abcdef"
    old.mkdir(parents=True)
    (old / "metrics.json").write_text('{"test_accuracy": 0.98}\n')
    (old / "model-20240101-000000-abcdef.safetensors").write_bytes(b"weights")
    return tmp_path / "runs"


def train_fails(world: Path, out: Path, extra: list[str], message: str) -> None:
    before = snapshot(out)
    args = ["--dataset", str(world / "idx"), "--hidden-sizes", "8", "--epochs", "1"]
    args += ["--warmup-epochs", "0.5"]  # a whole-run warmup would add a warning line
    r = run_main("train", *args, "--val-size", "50", "--out", str(out), "--quiet", *extra)
    assert_one_line_error(r, message)
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == [
        "model-20240101-000000-abcdef"
    ]


# --- every flag out of range -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lr", "nan"], "--lr nan: must be a positive number"),
        (["--lr", "inf"], "--lr inf: must be a positive number"),
        (["--lr", "0"], "--lr 0.0: must be a positive number"),
        (["--dropout", "-0.1"], "--dropout -0.1: must be in [0, 1)"),
        (["--dropout", "1.5"], "--dropout 1.5: must be in [0, 1)"),
        (["--momentum", "1"], "--momentum 1.0: must be in [0, 1)"),
        (["--momentum", "-0.5"], "--momentum -0.5: must be in [0, 1)"),
        (["--min-lr", "1"], "--min-lr 1.0: must be in [0, --lr]"),
        (["--warmup-epochs", "3"], "--warmup-epochs 3.0: must be in [0, --epochs]"),
        (["--weight-decay", "-1"], "--weight-decay -1.0: must be at least 0"),
        (["--weight-decay", "nan"], "--weight-decay nan: must be at least 0"),
        (["--val-size", "-1"], "--val-size -1: must be at least 0"),
        (["--seed", "-1"], "--seed -1: must be at least 0"),
        (["--batch-size", "-5"], "--batch-size -5: must be at least 1"),
        (["--hidden-sizes", "16,-4"], "--hidden-sizes 16,-4: every size must be at least 1"),
        (["--hidden-sizes", "x"], "--hidden-sizes: expected sizes like 1024"),
        (["--epochs", "2.5"], "--epochs: expected a whole number"),
        (["--lr", "fast"], "--lr: invalid float value"),
        (["--activation", "Tanh"], "--activation Tanh: must be one of"),
        (["--checkpoint-every", "-1"], "--checkpoint-every -1: must be at least 0"),
        (
            ["--val-size", "100000"],
            "--val-size 100000: must be in [0, 300), the training images; try --val-size 30, a "
            "tenth of them",
        ),
        (["--nesterov", "--momentum", "0"], "--nesterov: needs --momentum above 0"),
    ],
)
def test_flag_out_of_range(world: Path, out: Path, extra: list[str], message: str) -> None:
    train_fails(world, out, extra, message)


# --- dataset files -----------------------------------------------------------------------------


def test_dataset_missing_files(world: Path, out: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    train_fails(world, out, ["--dataset", str(tmp_path / "empty")], "file not found")


def test_dataset_corrupt_and_truncated(world: Path, out: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt"
    shutil.copytree(world / "idx", bad)
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 20)
    train_fails(world, out, ["--dataset", str(bad)], "corrupt gzip data")
    raw = gzip.decompress((world / "idx" / "train-labels-idx1-ubyte.gz").read_bytes())
    (bad / "train-images-idx3-ubyte.gz").write_bytes(
        (world / "idx" / "train-images-idx3-ubyte.gz").read_bytes()
    )
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:-10]))
    train_fails(world, out, ["--dataset", str(bad)], "truncated")
    whole = (world / "idx" / "train-labels-idx1-ubyte.gz").read_bytes()
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    train_fails(world, out, ["--dataset", str(bad)], "truncated gzip stream")


def test_labels_beyond_the_class_count(world: Path, out: Path, tmp_path: Path) -> None:
    X, y = quadrants(100)
    y[5] = 12
    d = write_idx_dir(tmp_path / "mnist", (X, y), quadrants(50))
    extra = ["--dataset", "mnist", "--data-dir", str(d)]
    train_fails(world, out, extra, "train labels span [0, 12], beyond the 10 classes")


def test_images_of_the_wrong_size(world: Path, out: Path, tmp_path: Path) -> None:
    d = write_idx_dir(tmp_path / "sizes", quadrants(100), quadrants(50, size=20))
    train_fails(world, out, ["--dataset", str(d)], "are (28, 28) but test images are (20, 20)")
    X, y = quadrants(40)
    small = np.zeros((10, 20, 20), np.uint8)
    np.savez(tmp_path / "s.npz", x_train=X, y_train=y, x_test=small, y_test=y[:10])
    train_fails(world, out, ["--dataset", str(tmp_path / "s.npz")], "but test images are (20, 20)")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("nan", "images contain NaN or inf"),
        ("fraction", "must hold whole-number labels"),
        ("negative", "labels span [-1,"),
        ("objects", "holds Python objects; handnet never unpickles"),
        ("missing", "missing arrays ['y_test']"),
        ("pixels", "pixel values span"),
    ],
)
def test_bad_user_npz(world: Path, out: Path, tmp_path: Path, change: str, message: str) -> None:
    X, y = quadrants(40)
    arrays: dict[str, np.ndarray] = {
        "x_train": X.astype(np.float32) / 255,
        "y_train": y.astype(np.float64),
        "x_test": X[:10],
        "y_test": y[:10],
    }
    if change == "nan":
        arrays["x_train"][3, 4, 5] = np.nan
    elif change == "fraction":
        arrays["y_train"][0] = 1.5
    elif change == "negative":
        arrays["y_test"] = arrays["y_test"].astype(np.int64) - 1
    elif change == "objects":
        arrays["y_test"] = np.array([1, "x"] * 5, dtype=object)
    elif change == "missing":
        del arrays["y_test"]
    else:
        arrays["x_train"][0, 0, 0] = 1000.0
    np.savez(tmp_path / "u.npz", **arrays)  # type: ignore[arg-type]
    before = (tmp_path / "u.npz").read_bytes()
    train_fails(world, out, ["--dataset", str(tmp_path / "u.npz")], message)
    assert (tmp_path / "u.npz").read_bytes() == before


def test_corrupt_mat(world: Path, out: Path, tmp_path: Path) -> None:
    (tmp_path / "m.mat").write_bytes(b"MATLAB 5.0 MAT-file".ljust(200, b"\x00"))
    train_fails(world, out, ["--dataset", str(tmp_path / "m.mat")], "not a MATLAB v5/v7 file")


# --- model files (evaluate and info) ---------------------------------------------------------


@pytest.fixture(scope="module")
def model_bytes_(world: Path) -> bytes:
    net = MLP(784, (8,), 10, rng=np.random.default_rng(0))
    clf = Classifier(net, Normalization(0.1, 0.3), [str(i) for i in range(10)], (28, 28))
    return save_model(clf, world / "valid.safetensors").read_bytes()


def _tamper(raw: bytes, case: str) -> bytes:
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    if case == "pickle":
        import pickle

        return pickle.dumps({"layers.0.W": [1.0, 2.0]})
    if case == "truncated":
        return raw[: len(raw) - 100]
    if case == "tampered header":
        h = bytearray(raw[8 : 8 + n])
        h[h.rindex(b"}")] = ord(" ")  # same length, but the JSON object is never closed
        return raw[:8] + bytes(h) + body
    if case == "huge header length":
        return struct.pack("<Q", 2**40) + raw[8:]
    meta = json.loads(header["__metadata__"]["handnet"])
    if case == "future version":
        meta["format_version"] = 99
        tensors = {"x": np.zeros(1, np.float32)}
        return st_save(tensors, metadata={"format": "handnet", "handnet": json.dumps(meta)})
    assert case == "wrong shapes"
    tensors = {
        "layers.0.W": np.zeros((8, 784), np.float32),  # transposed
        "layers.0.b": np.zeros(8, np.float32),
        "layers.2.W": np.zeros((8, 10), np.float32),
        "layers.2.b": np.zeros(10, np.float32),
    }
    return st_save(tensors, metadata={"format": "handnet", "handnet": json.dumps(meta)})


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("pickle", "is a pickle, not a safetensors file; handnet never unpickles"),
        ("truncated", "corrupt tensor data"),
        ("tampered header", "corrupt safetensors header"),
        ("huge header length", "truncated or corrupt safetensors file"),
        ("future version", "model format version 99 is not supported"),
        ("wrong shapes", "tensor layers.0.W has shape (8, 784), the architecture needs (784, 8)"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "info"])
def test_bad_model_file(
    world: Path,
    model_bytes_: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    message: str,
    command: str,
) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(_tamper(model_bytes_, case))
    before = snapshot(tmp_path)
    extra = ["--dataset", str(world / "idx")] if command == "evaluate" else []
    monkeypatch.chdir(tmp_path)
    r = run_main(command, str(bad), *extra)
    assert_one_line_error(r, message)
    assert snapshot(tmp_path) == before


def test_evaluate_images_of_the_wrong_size(
    world: Path, model_bytes_: bytes, tmp_path: Path
) -> None:
    (tmp_path / "m.safetensors").write_bytes(model_bytes_)
    X, y = quadrants(20, size=20)
    np.savez(tmp_path / "d.npz", x_train=X, y_train=y, x_test=X, y_test=y)
    r = run_main("evaluate", tmp_path / "m.safetensors", "--dataset", tmp_path / "d.npz")
    assert_one_line_error(r, "d.npz: its images have 400 pixels, the model expects 784")


def test_resume_of_a_bad_run_directory(world: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_main("train", "--resume", tmp_path / "no"), "no such run directory")
    (tmp_path / "r").mkdir()
    assert_one_line_error(run_main("train", "--resume", tmp_path / "r"), "no checkpoint here")
    (tmp_path / "r" / "checkpoint.safetensors").write_bytes(b"\x80\x04K\x01.")
    assert_one_line_error(run_main("train", "--resume", tmp_path / "r"), "never unpickles")


# --- output: a read-only directory and a full disk -------------------------------------------


def test_read_only_output_directory(world: Path) -> None:
    """chmod does not stop root, so as root the CLI runs as ``nobody`` (setpriv)."""
    ro = world / "read-only"
    ro.mkdir()
    (ro / "keep.txt").write_text("old\n")
    ro.chmod(0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        require(shutil.which("setpriv") is not None, "setpriv (util-linux)")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        r = subprocess.run(
            [
                *prefix,
                *HANDNET,
                "train",
                "--dataset",
                str(world / "idx"),
                "--hidden-sizes",
                "8",
                "--epochs",
                "1",
                "--warmup-epochs",
                "0.5",
                "--val-size",
                "50",
                "--out",
                str(ro),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            env={**ENV, "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(ro)},
            cwd=ro,
            timeout=120,
        )
    finally:
        ro.chmod(0o755)
    assert_one_line_error(r, "cannot create the run directory (Permission denied)")
    assert snapshot(ro) == {"keep.txt": b"old\n"} and sorted(os.listdir(ro)) == ["keep.txt"]


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write returns EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("checkpoint_every", ["0", "1"])
def test_full_disk_on_save_leaves_no_partial_files(
    world: Path, out: Path, checkpoint_every: str
) -> None:
    """RLIMIT_FSIZE makes every write past 20 kB fail in the kernel, like a full disk: the first
    big file (the checkpoint, or the model at the end) cannot be written."""
    before = snapshot(out)
    r = subprocess.run(
        [
            *HANDNET,
            "train",
            "--dataset",
            str(world / "idx"),
            "--hidden-sizes",
            "32",
            "--epochs",
            "2",
            "--val-size",
            "50",
            "--out",
            str(out),
            "--quiet",
            "--checkpoint-every",
            checkpoint_every,
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        preexec_fn=_file_size_limit(20_000),
    )
    assert_one_line_error(r, "cannot write (File too large)")
    assert snapshot(out) == before  # no run directory, no temp files, the old run untouched
    assert sorted(p.name for p in out.iterdir()) == ["model-20240101-000000-abcdef"]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    return r.returncode == 0


def test_really_full_tmpfs(world: Path) -> None:
    """ENOSPC from a real 64 kB tmpfs, mounted in a private user+mount namespace."""
    if not _unshare_works():
        pytest.skip("unprivileged user namespaces are not allowed here (the rlimit test covers it)")
    target = world / "tiny-disk"
    target.mkdir(exist_ok=True)
    train = " ".join(
        [
            *HANDNET,
            "train",
            "--dataset",
            str(world / "idx"),
            "--hidden-sizes",
            "64",
            "--epochs",
            "1",
            "--warmup-epochs",
            "0.5",
            "--val-size",
            "50",
            "--out",
            str(target),
            "--quiet",
        ]
    )
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {target} && echo old > {target}/keep.txt && "
        f"{{ {train}; echo rc=$? >&2; ls -A {target} >&2; cat {target}/keep.txt >&2; }}"
    )
    r = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    lines = r.stderr.strip().splitlines()
    assert "cannot write (No space left on device)" in lines[0] and "Traceback" not in r.stderr
    assert lines[1:] == ["rc=2", "keep.txt", "old"], r.stderr
