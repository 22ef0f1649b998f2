"""A training run from config to files: train, evaluate test once, write ``runs/<name>/``.

A run directory holds ``<name>.safetensors`` (the model, named "model + date + random" as in the
seed report), ``history.csv`` (one row per epoch), ``metrics.json`` (validation, then test) and
``config.toml`` (the resolved configuration, runnable again with ``handnet train --config``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from handnet.augment import Augmenter, augmented_copies, batch_source
from handnet.data import Dataset, load_dataset
from handnet.finetune import finetune_output
from handnet.io import atomic_write_text, save_model
from handnet.model import Classifier
from handnet.train import (
    BatchSource,
    EpochCallback,
    Rngs,
    TrainConfig,
    TrainState,
    evaluate,
    fit,
)

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def run_name(now: datetime | None = None) -> str:
    """``model-YYYYMMDD-HHMMSS-<6 hex>``: sortable by time, and two runs in one second do not collide."""
    now = now or datetime.now()
    return f"model-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunResult:
    run_dir: Path
    model_path: Path
    classifier: Classifier
    metrics: dict[str, Any]


def history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row[k] for k in HISTORY_FIELDS})
    return buf.getvalue()


def prepare_augmentation(
    cfg: TrainConfig, data: Dataset, rngs: Rngs
) -> tuple[Dataset, BatchSource | None]:
    """The dataset to train on and the batch source for ``fit``, per the config's augmentation.

    Augmentation works on standardized images, so pixels from outside the image get the
    standardized value of black, ``norm.apply(0)``. Only the training split is ever augmented.
    """
    spec = cfg.augment_spec()
    if not spec.active:
        return data, None
    aug = Augmenter(
        spec, data.image_shape, rngs.augment, fill=data.norm.apply(np.zeros(1, np.float32))[0]
    )
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
) -> RunResult:
    """Train ``cfg`` and write its run directory under ``out``. The test set is evaluated once, here."""
    t_start = time.perf_counter()
    rngs = Rngs.from_seed(cfg.seed)
    if data is None:
        data = load_dataset(
            cfg.dataset, rng=rngs.split, val_size=cfg.val_size, data_dir=data_dir, mirror=mirror
        )
    t_data = time.perf_counter() - t_start
    data, source = prepare_augmentation(cfg, data, rngs)
    state = TrainState.fresh(cfg, data.n_features, data.n_classes, rngs)
    fit(state, data, cfg, progress=progress, callbacks=callbacks, batch_source=source)
    tuned = (
        finetune_output(
            state.model, data.X_train, data.y_train, data.X_val, data.y_val, cfg.finetune_ridge
        )
        if cfg.finetune
        else None
    )
    if tuned is not None and progress:
        print(tuned.message, file=sys.stderr)
    val = evaluate(state.model, data.X_val, data.y_val) if len(data.y_val) else None
    test = evaluate(state.model, data.X_test, data.y_test)
    name = run_name()
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
        "data_seconds": t_data,
        "wall_seconds": time.perf_counter() - t_start,
        "finetune": tuned.to_dict() if tuned else None,
        "epochs": state.epoch,
        "steps": state.step,
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
        },
    )
    run_dir = Path(out) / name
    run_dir.mkdir(parents=True, exist_ok=False)
    model_path = save_model(clf, run_dir / f"{name}.safetensors")
    atomic_write_text(run_dir / "history.csv", history_csv(state.history))
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg.to_dict()))
    return RunResult(run_dir, model_path, clf, metrics)
