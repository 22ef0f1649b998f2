"""A training run from config to files: train, evaluate test once, write ``runs/<name>/``.

A run directory holds ``<name>.safetensors`` (the model, named "model + date + random" as in the
seed report), ``history.csv`` (one row per epoch), ``metrics.json`` (validation, then test) and
``config.toml`` (the resolved configuration, runnable again with ``handnet train --config``),
the plots (``*.png``) and ``report.html``. While the run trains it also holds
``checkpoint.safetensors`` (see `handnet.train.checkpoint`), from which ``resume_run`` continues
bit-exactly; the checkpoint is removed once the run has finished. The folder's name and its
files' formats, and how a path names a run's model, are `handnet.train.rundir`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from handnet.data import Dataset, load_dataset
from handnet.data.augment import Augmenter, augmented_copies, batch_source, blas_threads_beside
from handnet.errors import (
    CheckpointError,
    ConfigError,
    HandnetError,
    RunInterrupted,
)
from handnet.files import atomic_write_text
from handnet.nn.finetune import FinetuneResult, finetune_output
from handnet.train.checkpoint import CHECKPOINT_NAME, dataset_info, load_checkpoint, save_checkpoint
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import BatchSource, EpochCallback, Timing, TrainState, evaluate, fit
from handnet.train.modelfile import save_model
from handnet.train.rundir import history_csv, run_name

# What writes a finished run's plots and report (`handnet.report.publish`): the layer above
# passes it in, so that training does not depend on drawing.
Publisher = Callable[[Classifier, Dataset, Path], object]


class SettingWarning(UserWarning):
    """A setting that quietly spoils a run without making it wrong (``handnet`` shows it as one
    line): a batch larger than the training set, a warmup as long as the run."""


def doubtful_settings(cfg: TrainConfig, n_train: int) -> list[str]:
    """What would quietly spoil a run of ``cfg`` on ``n_train`` training rows.

    Parameters
    ----------
    cfg : TrainConfig
        The run's config.
    n_train : int
        Training rows (augmented copies included).

    Returns
    -------
    list of str
        One line each, as ``setting=value: why``; empty when nothing is doubtful.
    """
    notes = []
    if cfg.batch_size > n_train:
        notes.append(
            f"batch_size={cfg.batch_size}: more than the {n_train:,} training images, so every "
            f"epoch is one step over all of them ({cfg.epochs} in all)"
        )
    if cfg.warmup_epochs >= cfg.epochs:
        notes.append(
            f"warmup_epochs={cfg.warmup_epochs:g}: the warmup lasts the whole run "
            f"({cfg.epochs} epoch{'s' * (cfg.epochs != 1)}), so the learning rate only rises and "
            "never decays; give a shorter warmup_epochs"
        )
    if cfg.finetune and cfg.val_size == 0:
        notes.append(
            "finetune=True: with val_size 0 no validation images check the refit output layer, "
            "so it is kept whether it helps or not"
        )
    return notes


@dataclass
class RunResult:
    """What a finished run gives back (`train_run`, `resume_run`).

    Parameters
    ----------
    run_dir : Path
        The run directory.
    model_path : Path
        Its model file.
    classifier : Classifier
        The trained model, as the file holds it.
    metrics : dict of str to object
        What ``metrics.json`` holds, and ``time`` with the report's and wall seconds too.
    """

    run_dir: Path
    model_path: Path
    classifier: Classifier
    metrics: dict[str, Any]


def time_spent(timing: Timing, spent: dict[str, float], evaluation: float) -> dict[str, float]:
    """Where a run's wall time went, in seconds.

    Data loading, the batches (their gather and augmentation), the training steps, evaluation
    (validation after each epoch, then validation and test once at the end), the finetune;
    `_finish` adds saving, report and wall.

    Parameters
    ----------
    timing : Timing
        What `fit` measured: batches, steps, validation.
    spent : dict of str to float
        Seconds of ``"data loading"`` and ``"finetune"``.
    evaluation : float
        Seconds of the final validation and test evaluation.

    Returns
    -------
    dict of str to float
        Seconds by part: ``data loading``, ``augmentation``, ``steps``, ``evaluation``,
        ``finetune``.
    """
    return {
        "data loading": spent["data loading"],
        "augmentation": timing.batches,
        "steps": timing.steps,
        "evaluation": timing.validation + evaluation,
        "finetune": spent["finetune"],
    }


def time_line(metrics: dict[str, Any]) -> str:
    """One line for the end of ``handnet train``: where the run's wall time went.

    Parameters
    ----------
    metrics : dict of str to object
        A run's metrics, whose ``time`` holds seconds by part and ``wall``.

    Returns
    -------
    str
        ``time: <wall> s = <part> <seconds> + ... + other <rest>``; parts under 0.05 s are left
        out, but for augmentation and steps.

    Examples
    --------
    >>> time_line({"time": {"data loading": 0.61, "augmentation": 1.2, "steps": 15.0,
    ...     "evaluation": 0.8, "finetune": 0.0, "saving": 0.1, "report": 1.4, "wall": 19.6}})
    'time:   19.6 s = data loading 0.6 + augmentation 1.2 + steps 15.0 + evaluation 0.8 + saving 0.1 + report 1.4 + other 0.5'
    """
    t = dict(metrics["time"])
    wall = t.pop("wall")
    parts = {k: v for k, v in t.items() if v >= 0.05 or k in ("augmentation", "steps")}
    other = wall - sum(t.values())
    shown = " + ".join(f"{k} {v:.1f}" for k, v in parts.items())
    return f"time:   {wall:.1f} s = {shown} + other {max(other, 0.0):.1f}"


def load_run_data(
    cfg: TrainConfig,
    split_rng: np.random.Generator,
    data_dir: str | Path | None = None,
    mirror: str | None = None,
) -> Dataset:
    """The dataset ``cfg`` names, split with ``split_rng``, shape-normalized as ``cfg`` says.

    This is what a run, its resumption and a search trial all train on.

    Parameters
    ----------
    cfg : TrainConfig
        Its ``dataset``, ``val_size`` and ``geometry``.
    split_rng : numpy.random.Generator
        The split stream of the run's seed (`Rngs.for_config`).
    data_dir : str or Path, optional
        Where to look first for a named dataset's files.
    mirror : str, optional
        The base URL to download a named dataset from.

    Returns
    -------
    Dataset
        Standardized float32 inputs and int64 labels, split into train, validation and test.

    Raises
    ------
    DatasetError
        When the dataset cannot be read or split.
    """
    return load_dataset(
        cfg.dataset,
        rng=split_rng,
        val_size=cfg.val_size,
        data_dir=data_dir,
        mirror=mirror,
        geometry=cfg.geometry,
    )


def prepare_augmentation(
    cfg: TrainConfig, data: Dataset, rngs: Rngs
) -> tuple[Dataset, BatchSource | None]:
    """The dataset to train on and the batch source for ``fit``, per the config's augmentation.

    Augmentation works on standardized images, so pixels from outside the image get the
    standardized value of black, ``norm.black``. Only the training split is ever augmented.

    Parameters
    ----------
    cfg : TrainConfig
        Its ``aug_*`` settings, ``augment_copies`` and ``aug_thread``.
    data : Dataset
        The run's data.
    rngs : Rngs
        The run's streams; the augment stream draws the transforms.

    Returns
    -------
    data : Dataset
        ``data``, or with ``augment_copies`` K > 0 a copy whose training split holds the
        originals and K augmented copies ((K + 1) n_train rows).
    batch_source : callable or None
        For `fit`: augments every batch anew (``augment_copies`` 0); None when no batch
        augmentation is asked for.

    Raises
    ------
    ConfigError
        If the images cannot be augmented (say rows whose length is not a square).
    """
    spec = cfg.augment_spec()
    if not spec.active:
        return data, None
    try:
        aug = Augmenter(spec, data.image_shape, rngs.augment, fill=data.norm.black)
    except ConfigError as e:  # e.g. rows whose length is not a square: say which dataset
        raise ConfigError(f"{data.name}: {e}") from None
    if cfg.augment_copies == 0:
        return data, batch_source(aug, background=cfg.aug_thread)
    X = augmented_copies(data.X_train, cfg.augment_copies, aug)
    y = np.tile(data.y_train, cfg.augment_copies + 1)
    return dataclasses.replace(data, X_train=X, y_train=y), None


def train_run(
    cfg: TrainConfig,
    *,
    out: str | Path = "runs",
    data: Dataset | None = None,
    data_dir: str | Path | None = None,
    mirror: str | None = None,
    progress: bool = True,
    callbacks: tuple[EpochCallback, ...] = (),
    checkpoint_every: int = 1,
    stop: Callable[[], bool] | None = None,
    publish: Publisher | None = None,
) -> RunResult:
    """Train ``cfg`` and write its run directory under ``out``. The test set is evaluated once, here.

    The directory is created once the data has loaded; a checkpoint is written there every
    ``checkpoint_every`` epochs (0: only when stopped) and removed when the run has finished.
    When ``stop()`` turns true the run writes a checkpoint and raises `RunInterrupted`.

    Parameters
    ----------
    cfg : TrainConfig
        The run's config.
    out : str or Path, default="runs"
        The folder to make the run directory in.
    data : Dataset, optional
        The data to train on; None: loaded as ``cfg`` says (`load_run_data`).
    data_dir : str or Path, optional
        Where to look first for a named dataset's files.
    mirror : str, optional
        The base URL to download a named dataset from.
    progress : bool, default=True
        Progress bars and lines on stderr.
    callbacks : tuple of callable, default=()
        Each called as ``cb(state, record)`` after every epoch.
    checkpoint_every : int, default=1
        Epochs between checkpoints; 0: only when stopped.
    stop : callable, optional
        ``stop() -> bool``, asked after every step (`handnet.train.interrupt.StopSignals`).
    publish : callable, optional
        ``publish(classifier, data, run_dir)``: writes the plots and report of the finished run.

    Returns
    -------
    RunResult
        The run directory, the model file, the model and its metrics.

    Raises
    ------
    RunInterrupted
        When ``stop()`` turned true; the checkpoint is saved.
    TrainingDiverged
        When the loss or a weight is not finite.
    ConfigError
        If the data has no test split, or ``checkpoint_every`` is negative.
    HandnetError
        If the run directory cannot be made.
    """
    t_start = time.perf_counter()
    rngs = Rngs.for_config(cfg)
    if data is None:
        data = load_run_data(cfg, rngs.split, data_dir, mirror)
    if len(data.y_test) == 0:
        raise ConfigError(f"{data.name}: no test images; a run reports test accuracy at its end")
    t_data = time.perf_counter() - t_start
    data, batches = prepare_augmentation(cfg, data, rngs)
    for note in doubtful_settings(cfg, len(data.y_train)):  # said once, at the start
        warnings.warn(note, SettingWarning, stacklevel=2)
    state = TrainState.fresh(cfg, data.n_features, data.n_classes, rngs)
    name = run_name()
    run_dir = Path(out) / name
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as e:
        raise HandnetError(f"{run_dir}: cannot create the run directory ({e.strerror})") from None
    source = {"data_dir": str(data_dir) if data_dir else None, "mirror": mirror}
    how = _How(progress, callbacks, checkpoint_every, stop, publish, source)
    return _train(run_dir, cfg, data, batches, state, how, t_start, t_data)


def resume_run(
    run_dir: str | Path,
    *,
    data: Dataset | None = None,
    data_dir: str | Path | None = None,
    mirror: str | None = None,
    progress: bool = True,
    callbacks: tuple[EpochCallback, ...] = (),
    checkpoint_every: int = 1,
    stop: Callable[[], bool] | None = None,
    publish: Publisher | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its checkpoint; same files and result as `train_run`.

    The data is loaded again exactly as at the start (same seed, same split) and must match what
    the checkpoint recorded; ``data_dir`` and ``mirror`` default to the ones the run started with.

    Parameters
    ----------
    run_dir : str or Path
        The unfinished run's directory, holding ``checkpoint.safetensors``.
    data : Dataset, optional
        The data to train on; None: loaded again as the run's config says.
    data_dir : str or Path, optional
        Where to look first for a named dataset's files; None: the run's.
    mirror : str, optional
        The base URL to download a named dataset from; None: the run's.
    progress : bool, default=True
        Progress bars and lines on stderr.
    callbacks : tuple of callable, default=()
        Each called as ``cb(state, record)`` after every epoch.
    checkpoint_every : int, default=1
        Epochs between checkpoints; 0: only when stopped.
    stop : callable, optional
        ``stop() -> bool``, asked after every step.
    publish : callable, optional
        ``publish(classifier, data, run_dir)``: writes the plots and report of the finished run.

    Returns
    -------
    RunResult
        The run directory, the model file, the model and its metrics.

    Raises
    ------
    CheckpointError
        If there is no run or no valid checkpoint, the run has finished, or the data differs.
    RunInterrupted
        When ``stop()`` turned true again; the checkpoint is saved.
    TrainingDiverged
        When the loss or a weight is not finite.
    """
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise CheckpointError(f"{run_dir}: a file; --resume takes the run's directory")
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such run directory")
    path = run_dir / CHECKPOINT_NAME
    if not path.exists() and (run_dir / "metrics.json").exists():
        raise CheckpointError(f"{run_dir}: this run has already finished (nothing to resume)")
    ckpt = load_checkpoint(path)
    for tmp in run_dir.glob(".*.tmp"):  # temp files of writes a kill -9 cut short
        tmp.unlink(missing_ok=True)
    cfg = ckpt.config
    saved_source = ckpt.meta.get("source") or {}
    source = {
        "data_dir": str(data_dir) if data_dir else saved_source.get("data_dir"),
        "mirror": mirror or saved_source.get("mirror"),
    }
    rngs = Rngs.for_config(cfg)
    if data is None:
        data = load_run_data(cfg, rngs.split, source["data_dir"], source["mirror"])
    t_data = time.perf_counter() - t_start
    # Augmented copies are drawn again from the fresh augment stream, as at the start; only then
    # does the checkpoint set every stream (the batch augmenter's included) to its saved state.
    data, batches = prepare_augmentation(cfg, data, rngs)
    ckpt.check_dataset(data)
    state = TrainState.fresh(cfg, data.n_features, data.n_classes, rngs)
    ckpt.restore(state)
    how = _How(progress, callbacks, checkpoint_every, stop, publish, source)
    return _train(run_dir, cfg, data, batches, state, how, t_start, t_data)


@dataclass(frozen=True)
class _How:
    """How a run is carried out: `train_run`'s and `resume_run`'s keyword arguments, and where
    the data was found (``data_dir`` and ``mirror``, which a resume looks in again)."""

    progress: bool
    callbacks: tuple[EpochCallback, ...]
    checkpoint_every: int
    stop: Callable[[], bool] | None
    publish: Publisher | None
    source: dict[str, str | None]


def _train(
    run_dir: Path,
    cfg: TrainConfig,
    data: Dataset,
    batches: BatchSource | None,
    state: TrainState,
    how: _How,
    t_start: float,
    t_data: float,
) -> RunResult:
    """Train ``state`` to the end of ``cfg``'s epochs, checkpointing as ``how`` says, then
    finetune and `_finish`. ``t_start`` is when the run began and ``t_data`` how long its data
    took to load (seconds), for the time line."""
    if how.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every={how.checkpoint_every}: must be >= 0")
    ckpt_path = run_dir / CHECKPOINT_NAME
    info = {**dataset_info(data), "source": how.source}

    def checkpoint(st: TrainState, record: dict[str, float]) -> None:
        if how.checkpoint_every and st.epoch % how.checkpoint_every == 0:
            save_checkpoint(ckpt_path, st, cfg, info)

    try:
        with blas_threads_beside(cfg.aug_thread and batches is not None):
            fit(
                state,
                data,
                cfg,
                progress=how.progress,
                callbacks=(*how.callbacks, checkpoint),
                stop=how.stop,
                batch_source=batches,
            )
    except BaseException:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only succeeds while nothing was written: no empty run directories
        raise
    if state.epoch < cfg.epochs:  # stopped by stop()
        save_checkpoint(ckpt_path, state, cfg, info)
        signum = getattr(how.stop, "signum", None) or signal.SIGINT
        where = (
            f"at step {state.step} (inside epoch {state.epoch + 1})"
            if state.cursor
            else f"after epoch {state.epoch}"
        )
        raise RunInterrupted(
            f"stopped by {signal.Signals(signum).name} {where}; checkpoint saved; "
            f"resume with: handnet train --resume {shlex.quote(str(run_dir))}",
            int(signum),
        )
    t_tune = time.perf_counter()
    tuned = (
        finetune_output(
            state.model, data.X_train, data.y_train, data.X_val, data.y_val, cfg.finetune_ridge
        )
        if cfg.finetune
        else None
    )
    if tuned is not None and how.progress:
        print(tuned.message, file=sys.stderr)
    spent = {"data loading": t_data, "finetune": time.perf_counter() - t_tune}
    return _finish(run_dir, cfg, data, state, how, t_start, spent, tuned)


def _finish(
    run_dir: Path,
    cfg: TrainConfig,
    data: Dataset,
    state: TrainState,
    how: _How,
    t_start: float,
    spent: dict[str, float],
    tuned: FinetuneResult | None,
) -> RunResult:
    """Evaluate once on test, write the run's files, then drop the checkpoint (the run is done).

    ``spent`` holds the seconds of the run's parts before this (data loading, finetune). With
    ``how.progress``, the run's last line on stderr says where its wall time went (`time_line`)."""
    t_eval = time.perf_counter()
    val = evaluate(state.model, data.X_val, data.y_val) if len(data.y_val) else None
    test = evaluate(state.model, data.X_test, data.y_test)
    t_eval = time.perf_counter() - t_eval
    name = run_dir.name
    metrics: dict[str, Any] = {
        "run": name,
        "dataset": data.name,
        "val_accuracy": val.accuracy if val else None,
        "val_loss": val.loss if val else None,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "test_per_class_accuracy": test.per_class_accuracy,
        "test_confusion": test.confusion.tolist(),
        "train_seconds": sum(r["seconds"] for r in state.history),
        "data_seconds": spent["data loading"],
        "wall_seconds": time.perf_counter() - t_start,
        "time": time_spent(state.timing, spent, t_eval),  # saving and report added below
        "finetune": tuned.to_dict() if tuned else None,
        "epochs": state.epoch,
        "steps": state.step,
        "train_size": len(data.y_train),
        "val_size": len(data.y_val),
        "test_size": len(data.y_test),
    }
    clf = Classifier(
        state.model,
        data.norm,
        data.classes,
        data.image_shape,
        meta={
            "dataset": data.name,
            "config": cfg.to_dict(),
            "history": state.history,
            "metrics": {k: v for k, v in metrics.items() if k != "test_confusion"},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": how.source,  # where the data was found: evaluate and plot look there again
        },
        geometry=data.geometry,
    )
    model_path = run_dir / f"{name}.safetensors"
    written: list[Path] = []
    t_save = time.perf_counter()
    try:
        written.append(save_model(clf, model_path))
        written.append(atomic_write_text(run_dir / "history.csv", history_csv(state.history)))
        written.append(atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg.to_dict())))
        metrics["time"]["saving"] = time.perf_counter() - t_save  # of the files above
        written.append(
            atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        )
    except BaseException:
        # All or nothing: a run directory holds a finished run or a checkpoint to resume from.
        for f in written:
            f.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        raise
    if how.publish is not None:
        # Plots and the report come after the all-or-nothing files: if drawing fails, the
        # trained model is kept (and can be drawn again with `handnet report`).
        t_report = time.perf_counter()
        how.publish(clf, data, run_dir)
        metrics["time"]["report"] = time.perf_counter() - t_report  # not in metrics.json
    metrics["time"]["wall"] = time.perf_counter() - t_start
    if how.progress:
        print(time_line(metrics), file=sys.stderr)
    # The model file, history and config now hold everything worth keeping; a finished run
    # cannot be continued (its schedule has ended), so the checkpoint only costs disk space.
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    return RunResult(run_dir, model_path, clf, metrics)
