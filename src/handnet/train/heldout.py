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
    """The config ``clf`` was trained with, with the dataset and input preparation its file records.

    The dataset, deskewing and width normalization decide the data; the file is the authority
    on them.

    Parameters
    ----------
    clf : Classifier
        A model read from a file.
    name : str
        The file's name, for the error message.

    Returns
    -------
    TrainConfig
        The stored config, its ``dataset``, ``deskew`` and ``width_normalize`` as the file
        records them.

    Raises
    ------
    ModelFileError
        If the file stores no valid config, naming ``name``.
    """
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
    """Where to look for ``clf``'s dataset: the folder and mirror given, else those its run used.

    The file records the run's; its folder is used only while it still exists.

    Parameters
    ----------
    clf : Classifier
        A model read from a file.
    data_dir : str or Path or None
        The folder asked for; None: the run's.
    mirror : str or None
        The mirror asked for; None: the run's.

    Returns
    -------
    data_dir : str or Path or None
        Where to look first for the dataset's files.
    mirror : str or None
        The base URL to download it from.
    """
    stored = clf.meta.get("source")
    stored = stored if isinstance(stored, dict) else {}
    if data_dir is None and isinstance(stored.get("data_dir"), str):
        data_dir = stored["data_dir"] if Path(stored["data_dir"]).is_dir() else None
    if mirror is None and isinstance(stored.get("mirror"), str):
        mirror = stored["mirror"]
    return data_dir, mirror


def held_out_rows(cfg: TrainConfig, y_train: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Indices into the training set of the rows a run with ``cfg`` held out, as it split them.

    Parameters
    ----------
    cfg : TrainConfig
        The run's config: its ``val_size``, and its split seed.
    y_train : ndarray of int64, shape (n_train,)
        The labels of the whole training set, before the split.

    Returns
    -------
    ndarray of intp, shape (n_val,)
        The held-out rows, n_val = ``cfg.val_size``.
    """
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

    Parameters
    ----------
    models : Sequence of Classifier
        Models read from files.
    names : Sequence of str
        Their files' names, one per model, for the error messages.
    data_dir : str or Path, optional
        Where to look first for the dataset's files.
    mirror : str, optional
        The base URL to download a named dataset from.

    Returns
    -------
    dataset : str
        The dataset's name or path, as the first model's config gives it.
    images : ndarray, shape (n_val, H, W)
        The held-out raw images as the dataset holds them (or rows (n_val, D)).
    labels : ndarray of int64, shape (n_val,)
        Their labels.

    Raises
    ------
    ConfigError
        If a model held out nothing, trained on another dataset, or held out other rows.
    ModelFileError
        If a model's file stores no valid config.
    DatasetError
        If the dataset cannot be read.
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
