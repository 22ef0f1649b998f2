"""Checkpoints and resume: bit-exact continuation in process, after kill -9, and after signals."""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import quadrants, run_main, tiny_dataset, write_idx_dir

from handnet.data import Dataset
from handnet.errors import CheckpointError, ConfigError, ModelFileError, RunInterrupted
from handnet.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_states
from handnet.train.config import Rngs, TrainConfig
from handnet.train.modelfile import load_model
from handnet.train.runs import resume_run, train_run

CFG = TrainConfig(
    dataset="tiny",
    hidden_sizes=(8,),
    dropout=0.3,
    epochs=4,
    batch_size=10,
    val_size=0,
    aug_shift=0.0,  # tiny_dataset's rows are not images
)


class StopAfter:
    """A stop() that says yes from its n-th call on (one call per step)."""

    def __init__(self, n: int, signum: int = signal.SIGTERM) -> None:
        self.n, self.calls, self.signum = n, 0, signum

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def weights(res_model_path: Path) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in load_model(res_model_path).net.parameters().items()}


def assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("stop_at", [1, 3, 7, 13])  # inside epochs 1, 1, 2, 3 (7 steps each)
def test_stop_and_resume_is_bit_exact(tmp_path: Path, stop_at: int) -> None:
    data = tiny_dataset()
    ref = train_run(CFG, out=tmp_path / "ref", data=data, progress=False)
    with pytest.raises(RunInterrupted) as e:
        train_run(
            CFG, out=tmp_path / "cut", data=tiny_dataset(), progress=False, stop=StopAfter(stop_at)
        )
    assert e.value.signum == signal.SIGTERM and "resume with: handnet train --resume" in str(
        e.value
    )
    (run_dir,) = (tmp_path / "cut").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_NAME]
    res = resume_run(run_dir, data=tiny_dataset(), progress=False)
    assert_same_weights(weights(ref.model_path), weights(res.model_path))
    assert res.metrics["steps"] == ref.metrics["steps"]
    assert [r["train_loss"] for r in res.classifier.meta["history"]] == [
        r["train_loss"] for r in ref.classifier.meta["history"]
    ]
    assert not (run_dir / CHECKPOINT_NAME).exists()  # a finished run keeps no checkpoint


def test_checkpoint_holds_every_rng_stream_and_the_velocity(tmp_path: Path) -> None:
    with pytest.raises(RunInterrupted):
        train_run(CFG, out=tmp_path, data=tiny_dataset(), progress=False, stop=StopAfter(9))
    (run_dir,) = tmp_path.iterdir()
    ck = load_checkpoint(run_dir / CHECKPOINT_NAME)
    assert sorted(ck.meta["rngs"]) == sorted(f.name for f in dataclasses.fields(Rngs))
    assert ck.meta["rngs"]["init"] != rng_states(Rngs.from_seed(0))["init"]  # init was drawn from
    assert ck.meta["epoch"] == 1 and ck.meta["step"] == 9 and ck.meta["cursor"]["next_batch"] == 2
    assert any(k.startswith("velocity.") for k in ck.tensors) and "cursor.perm" in ck.tensors
    assert ck.config == CFG and len(ck.meta["history"]) == 1


def test_resume_refuses_other_data_and_bad_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(RunInterrupted):
        train_run(CFG, out=tmp_path, data=tiny_dataset(), progress=False, stop=StopAfter(2))
    (run_dir,) = tmp_path.iterdir()
    with pytest.raises(CheckpointError, match="dataset differs"):
        resume_run(run_dir, data=tiny_dataset(seed=1), progress=False)
    ck = run_dir / CHECKPOINT_NAME
    with pytest.raises(ModelFileError, match="a training checkpoint, not a model; continue"):
        load_model(ck)  # as `handnet evaluate runs/*/*.safetensors` would
    with pytest.raises(CheckpointError, match="a file; --resume takes the run's directory"):
        resume_run(ck, progress=False)
    raw = ck.read_bytes()
    ck.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        resume_run(run_dir, data=tiny_dataset(), progress=False)
    ck.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="never unpickles"):
        resume_run(run_dir, data=tiny_dataset(), progress=False)
    ck.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resume_run(run_dir, data=tiny_dataset(), progress=False)
    with pytest.raises(CheckpointError, match="no such run directory"):
        resume_run(tmp_path / "nope", progress=False)


def test_a_failed_run_leaves_no_empty_directory(tmp_path: Path) -> None:
    from handnet.errors import TrainingDiverged

    bad = dataclasses.replace(CFG, lr=1e30, warmup_epochs=0.0)
    with pytest.raises(TrainingDiverged):
        train_run(bad, out=tmp_path, data=tiny_dataset(), progress=False)
    assert list(tmp_path.iterdir()) == []


# --- real processes: kill -9 and signals (slow: each trains, is killed and resumes) ------------

HANDNET = [sys.executable, "-m", "handnet.cli"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learnable IDX dataset big enough that 30 epochs outlast the parent reading two lines."""
    d = tmp_path_factory.mktemp("quadrants")
    return write_idx_dir(d, quadrants(3000), quadrants(300, seed=1))


def train_args(idx_dir: Path, out: Path) -> list[str]:
    return [
        "train",
        "--dataset",
        str(idx_dir),
        "--hidden-sizes",
        "128",
        "--epochs",
        "30",
        "--batch-size",
        "16",
        "--val-size",
        "200",
        "--dropout",
        "0.1",
        "--seed",
        "7",
        "--out",
        str(out),
    ]


@pytest.fixture(scope="module")
def reference(idx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("ref")
    r = subprocess.run(
        [*HANDNET, *train_args(idx_dir, out), "--quiet"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (run_dir,) = out.iterdir()
    return weights(run_dir / f"{run_dir.name}.safetensors")


def start_and_wait_for_epochs(idx_dir: Path, out: Path, k: int) -> subprocess.Popen[str]:
    """Start a training process and return once it has reported ``k`` finished epochs.

    Epoch lines go to stderr after each epoch; the checkpoint of epoch 1 is written before epoch 2
    starts, so from the second line on a checkpoint exists. No sleeps: we wait on the output.
    """
    p = subprocess.Popen(
        [*HANDNET, *train_args(idx_dir, out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    assert p.stderr is not None
    seen = 0
    while seen < k:
        line = p.stderr.readline()
        assert line, f"training ended after {seen} epochs (rc {p.wait()})"
        seen += line.startswith("epoch")
    assert (next(out.iterdir()) / CHECKPOINT_NAME).exists()
    return p


def resume(run_dir: Path) -> Path:
    r = subprocess.run(
        [*HANDNET, "train", "--resume", str(run_dir), "--quiet", "--json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return run_dir / f"{run_dir.name}.safetensors"


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 5])
def test_kill_9_then_resume_is_bit_identical(
    idx_dir: Path, reference: dict[str, np.ndarray], tmp_path: Path, k: int
) -> None:
    # The kill lands wherever the process happens to be after its k-th epoch line: inside a step,
    # inside evaluation, or while the next checkpoint is being written.
    p = start_and_wait_for_epochs(idx_dir, tmp_path, k)
    p.send_signal(signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    (run_dir,) = tmp_path.iterdir()
    leftovers = [f.name for f in run_dir.iterdir() if f.name != CHECKPOINT_NAME]
    assert all(n.startswith(f".{CHECKPOINT_NAME}.") for n in leftovers), leftovers
    assert_same_weights(reference, weights(resume(run_dir)))


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_checkpoints_prints_resume_command_and_exits(
    idx_dir: Path, reference: dict[str, np.ndarray], tmp_path: Path, sig: int, code: int
) -> None:
    p = start_and_wait_for_epochs(idx_dir, tmp_path, 2)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert signal.Signals(sig).name in last and "Traceback" not in err
    (run_dir,) = tmp_path.iterdir()
    assert sorted(f.name for f in run_dir.iterdir()) == [CHECKPOINT_NAME]
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command == ["handnet", "train", "--resume", str(run_dir)]
    assert_same_weights(reference, weights(resume(Path(command[-1]))))


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--lr", "0.1"], "--lr"),
        (["--no-deskew"], "--no-deskew"),
        (["--width-normalize", "16"], "--width-normalize"),
        (["--finetune", "--aug-thread"], "--finetune, --aug-thread"),
    ],
)
def test_resume_rejects_training_flags(tmp_path: Path, flags: list[str], named: str) -> None:
    r = run_main("train", "--resume", tmp_path, *flags)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert f"drop {named}" in r.stderr


def test_a_run_without_test_images_is_refused_before_it_writes_anything(tmp_path: Path) -> None:
    data = tiny_dataset()
    data = dataclasses.replace(data, X_test=data.X_test[:0], y_test=data.y_test[:0])
    with pytest.raises(ConfigError, match="no test images"):
        train_run(CFG, out=tmp_path / "runs", data=data, progress=False)
    assert not (tmp_path / "runs").exists()


def image_dataset() -> Dataset:
    """tiny_dataset's numbers seen as 8x8 images, so that augmentation applies."""
    return dataclasses.replace(tiny_dataset(d=64), image_shape=(8, 8))


@pytest.mark.parametrize(
    ("extra", "stop_at"),
    [
        ({"aug_shift": 1.0, "aug_rotate": 10.0}, 3),  # on-the-fly batches, stopped mid-epoch
        ({"aug_shift": 1.0, "aug_rotate": 10.0}, 9),
        # the background thread draws batches ahead; stopping rewinds the stream past them
        ({"aug_shift": 1.0, "aug_rotate": 10.0, "aug_thread": True}, 3),
        ({"aug_elastic_alpha": 8.0, "aug_thread": True}, 5),
        ({"aug_elastic_alpha": 8.0, "augment_copies": 1, "finetune": True}, 10),  # the seed's way
    ],
)
def test_stop_and_resume_with_augmentation_is_bit_exact(
    tmp_path: Path, extra: dict[str, Any], stop_at: int
) -> None:
    cfg = dataclasses.replace(CFG, **extra)
    ref = train_run(cfg, out=tmp_path / "ref", data=image_dataset(), progress=False)
    with pytest.raises(RunInterrupted):
        train_run(
            cfg, out=tmp_path / "cut", data=image_dataset(), progress=False, stop=StopAfter(stop_at)
        )
    (run_dir,) = (tmp_path / "cut").iterdir()
    res = resume_run(run_dir, data=image_dataset(), progress=False)
    assert_same_weights(weights(ref.model_path), weights(res.model_path))
    assert res.metrics["finetune"] == ref.metrics["finetune"]
