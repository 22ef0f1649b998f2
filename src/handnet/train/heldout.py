"""The validation images a trained model held out, found again from the config in its file.

A run splits its validation rows off the training set with its split seed (``split_seed``, else
``seed``; `handnet.train.Rngs.for_config`) before anything else draws from that stream, so the
same config always holds out the same rows. This is what lets committee choices be made on
validation: members trained with one ``--split-seed`` held out the same images, and can be judged
on them together, leaving the test set for the one final report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handnet.data import load_splits, stratified_split
from handnet.errors import ConfigError, ModelFileError
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs, TrainConfig


def run_config(clf: Classifier, name: str) -> TrainConfig:
    """The config ``clf`` was trained with, with the dataset and input preparation its file
    records (they decide the data; the file is the authority on them). Errors name ``name``."""
    try:
        cfg = TrainConfig.stored_in(clf)
    except ModelFileError as e:
        raise ModelFileError(f"{name}: {e}") from None
    return dataclasses.replace(
        cfg,
        dataset=str(clf.meta.get("dataset", cfg.dataset)),
        deskew=clf.geometry.deskew,
        width_normalize=clf.geometry.width,
    )


def data_source(
    clf: Classifier, data_dir: str | Path | None, mirror: str | None
) -> tuple[str | Path | None, str | None]:
    """Where to look for ``clf``'s dataset: ``data_dir`` and ``mirror`` if given, else those its
    run used (its file records them), the folder only while it still exists."""
    stored = clf.meta.get("source")
    stored = stored if isinstance(stored, dict) else {}
    if data_dir is None and isinstance(stored.get("data_dir"), str):
        data_dir = stored["data_dir"] if Path(stored["data_dir"]).is_dir() else None
    if mirror is None and isinstance(stored.get("mirror"), str):
        mirror = stored["mirror"]
    return data_dir, mirror


def held_out_rows(cfg: TrainConfig, y_train: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Indices into the training set of the rows a run with ``cfg`` held out, as it split them."""
    return stratified_split(y_train, cfg.val_size, Rngs.for_config(cfg).split)[1]


def held_out_images(
    models: Sequence[Classifier],
    names: Sequence[str],
    data_dir: str | Path | None = None,
    mirror: str | None = None,
) -> tuple[str, npt.NDArray[np.generic], npt.NDArray[np.int64]]:
    """(dataset, raw images, labels) that every one of ``models`` held out for validation.

    Fails, naming the file, if a model held out nothing (``val_size = 0``) or other rows than the
    first model did: a committee is judged on validation only where its members share it.
    """
    configs = [run_config(clf, name) for clf, name in zip(models, names)]
    first = configs[0]
    for cfg, name in zip(configs, names):
        if cfg.val_size == 0:
            raise ConfigError(
                f"{name}: trained with val_size 0, so it held out no validation images"
            )
        if cfg.dataset != first.dataset:
            raise ConfigError(f"{name}: trained on {cfg.dataset}, {names[0]} on {first.dataset}")
    splits, _ = load_splits(first.dataset, data_dir, mirror)
    rows = held_out_rows(first, splits.y_train)
    for cfg, name in zip(configs[1:], names[1:]):
        if not np.array_equal(held_out_rows(cfg, splits.y_train), rows):
            raise ConfigError(
                f"{name}: held out other validation images than {names[0]}; "
                "train committee members with one --split-seed"
            )
    return first.dataset, splits.X_train[rows], splits.y_train[rows]
