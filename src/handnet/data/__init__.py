"""Datasets: load (named, bundled, or a user file), split train/validation, and normalize.

``load_dataset`` is the one entry point; it returns a `Dataset` whose arrays are float32,
standardized with the training split's statistics, and flattened to (N, D).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handnet.data.folder import is_image_folder, read_image_folder
from handnet.data.formats import (
    Splits,
    labelled_splits,
    load_csv,
    load_mat,
    load_npz,
    read_idx,
    read_idx_pair,
    write_idx,
)
from handnet.data.geometry import PLAIN, Geometry
from handnet.data.registry import DATASETS, load_named, read_idx_dir
from handnet.data.split import Normalization, stratified_split, to_unit
from handnet.errors import DatasetError

__all__ = [
    "DATASETS",
    "Dataset",
    "Normalization",
    "Splits",
    "dataset_from_arrays",
    "load_dataset",
    "load_splits",
    "model_labels",
    "read_idx",
    "read_idx_pair",
    "stratified_split",
    "write_idx",
]

DEFAULT_VAL_SIZE = 5000  # 1/12 of MNIST's training set; its accuracy is exact to about 0.15%


@dataclass
class Dataset:
    """A ready-to-train dataset. ``X_*`` are float32 (N, D) and standardized; ``y_*`` are int64.

    D is the number of features, the product of ``image_shape`` (784 for MNIST).

    Parameters
    ----------
    name : str
        The dataset's name or path, as given to `load_dataset`.
    classes : list of str
        The class names; label ``k`` is ``classes[k]``.
    image_shape : tuple of int
        The shape of one input before flattening: ``(H, W)`` for images, ``(D,)`` for rows of
        features.
    norm : Normalization
        The standardization fitted on the training split and applied to every split.
    X_train : ndarray of float32, shape (n_train, D)
        Standardized training inputs.
    y_train : ndarray of int64, shape (n_train,)
        Training labels, in ``[0, len(classes))``.
    X_val : ndarray of float32, shape (n_val, D)
        Standardized validation inputs, split from the training data; ``n_val`` may be 0.
    y_val : ndarray of int64, shape (n_val,)
        Validation labels.
    X_test : ndarray of float32, shape (n_test, D)
        Standardized test inputs; ``n_test`` may be 0.
    y_test : ndarray of int64, shape (n_test,)
        Test labels.
    geometry : Geometry, default=PLAIN
        The shape normalization applied to every image before scaling (`handnet.data.geometry`).
    """

    name: str
    classes: list[str]
    image_shape: tuple[int, ...]
    norm: Normalization
    X_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    X_val: npt.NDArray[np.float32]
    y_val: npt.NDArray[np.int64]
    X_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]
    geometry: Geometry = PLAIN  # the shape normalization applied before scaling

    @property
    def n_features(self) -> int:
        """Inputs per row, D (the width of ``X_train``)."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        """The number of classes, ``len(classes)``."""
        return len(self.classes)


def load_splits(
    source: str, data_dir: str | Path | None = None, mirror: str | None = None
) -> tuple[Splits, list[str]]:
    """Raw train/test arrays and class names from a dataset name or a path.

    A path may be an ``.npz`` (Keras layout), a ``.mat`` (MATLAB layouts), a ``.csv`` (Kaggle's
    layout: label, then pixels), a directory holding the four standard IDX files, or a folder of
    images with one subfolder per class (`handnet.data.folder`). A file's classes are 0 to its
    largest label, named by number; a folder's are its subfolders' names. A CSV file or an image
    folder has no test split of its own: one seventh of it is held out, the same images every
    time (`handnet.data.split.held_out_test`).

    Parameters
    ----------
    source : str
        A dataset name (a key of `DATASETS`) or the path of a file or folder.
    data_dir : str or Path, optional
        Where to look first for a named dataset's IDX files (`handnet.data.registry.load_named`).
    mirror : str, optional
        The base URL to download a named dataset from, instead of its upstream.

    Returns
    -------
    splits : Splits
        The raw train and test arrays, images ``(N, H, W)`` or rows ``(N, D)`` as the source
        holds them, labels ``(N,)``.
    classes : list of str
        The class names; label ``k`` is ``classes[k]``.

    Raises
    ------
    DatasetError
        When the source is missing, of an unknown format, malformed, or its labels do not fit
        the classes (for instance labels numbered from 1).
    """
    path = Path(source)
    if source in DATASETS:
        splits = load_named(source, data_dir=Path(data_dir) if data_dir else None, mirror=mirror)
        classes = list(DATASETS[source].classes)
    elif path.is_dir() and is_image_folder(path):
        X, y, classes = read_image_folder(path)
        splits = labelled_splits(path, X, y)
    else:
        if not path.exists():
            raise DatasetError(
                f"{source}: no such file, and not a dataset name ({', '.join(sorted(DATASETS))})"
            )
        if path.is_dir():
            splits = read_idx_dir(path)
        elif path.suffix == ".npz":
            splits = load_npz(path)
        elif path.suffix == ".mat":
            splits = load_mat(path)
        elif path.suffix.lower() == ".csv":
            splits = load_csv(path)
        else:
            raise DatasetError(
                f"{source}: unsupported format; use .npz, .mat, .csv, an IDX directory or a "
                "folder of class folders of images"
            )
        top = int(max(splits.y_train.max(), splits.y_test.max()))
        if min(splits.y_train.min(), splits.y_test.min()) == 1:  # MATLAB's habit
            raise DatasetError(
                f"{source}: labels run from 1 to {top}, but classes are numbered from 0 (the "
                f"model would get an empty class 0); subtract 1 from the labels"
            )
        classes = [str(c) for c in range(top + 1)]
    for what, y in (("train", splits.y_train), ("test", splits.y_test)):
        if y.min() < 0 or y.max() >= len(classes):
            raise DatasetError(
                f"{source}: {what} labels span [{y.min()}, {y.max()}], beyond the {len(classes)} classes"
            )
    return splits, classes


def model_labels(
    y: npt.NDArray[np.int64], classes: list[str], model_classes: list[str]
) -> npt.NDArray[np.int64]:
    """Labels ``y`` (indices into a dataset's ``classes``) as indices into a model's classes.

    By name when every name is one of the model's (an image folder with some of its classes),
    else unchanged (a file's classes are numbers, whatever the model calls them).

    Parameters
    ----------
    y : ndarray of int64, shape (n,)
        Labels, indices into ``classes``.
    classes : list of str
        The dataset's class names.
    model_classes : list of str
        The model's class names.

    Returns
    -------
    ndarray of int64, shape (n,)
        The same labels as indices into ``model_classes`` (``y`` itself when unchanged).
    """
    if classes == model_classes or not set(classes) <= set(model_classes):
        return y
    return np.array([model_classes.index(c) for c in classes], np.int64)[y]


def load_dataset(
    source: str = "mnist",
    *,
    rng: np.random.Generator,
    val_size: int = DEFAULT_VAL_SIZE,
    data_dir: str | Path | None = None,
    mirror: str | None = None,
    geometry: Geometry = PLAIN,
) -> Dataset:
    """Load, split off a stratified validation set with ``rng``, and standardize with train stats.

    Every image (training and test) is first shape-normalized by ``geometry``
    (`handnet.data.geometry`).

    Parameters
    ----------
    source : str, default="mnist"
        A dataset name (a key of `DATASETS`) or the path of a file or folder (`load_splits`).
    rng : numpy.random.Generator
        Draws the validation split.
    val_size : int, default=5000
        Validation images held out of the training split, stratified by class; 0 for none.
    data_dir : str or Path, optional
        Where to look first for a named dataset's files.
    mirror : str, optional
        The base URL to download a named dataset from, instead of its upstream.
    geometry : Geometry, default=PLAIN
        The shape normalization (deskewing, width) applied to every image first.

    Returns
    -------
    Dataset
        Float32 inputs (N, D), standardized with the training split's mean and std, and int64
        labels.

    Raises
    ------
    DatasetError
        When the source cannot be read, its pixels are out of range or NaN, or ``val_size`` is
        not below the number of training images.
    ConfigError
        When ``geometry`` has a step and the images are not 2-D.
    """
    splits, classes = load_splits(source, data_dir, mirror)
    image_shape = tuple(int(d) for d in splits.X_train.shape[1:])
    if geometry:
        splits = Splits(
            geometry.apply(splits.X_train, image_shape),
            splits.y_train,
            geometry.apply(splits.X_test, image_shape),
            splits.y_test,
        )
    X_all = to_unit(splits.X_train, f"{source} (train)")
    X_test = to_unit(splits.X_test, f"{source} (test)")
    tr, va = stratified_split(splits.y_train, val_size, rng)
    X_train, X_val = X_all[tr], X_all[va]
    del X_all
    norm = Normalization.fit(X_train)
    return Dataset(
        name=source,
        classes=classes,
        image_shape=image_shape,
        norm=norm,
        X_train=norm.apply(X_train),
        y_train=splits.y_train[tr],
        X_val=norm.apply(X_val),
        y_val=splits.y_train[va],
        X_test=norm.apply(X_test),
        y_test=splits.y_test,
        geometry=geometry,
    )


def dataset_from_arrays(
    X: npt.ArrayLike,
    y: npt.NDArray[np.int64],
    classes: list[str],
    *,
    norm: Normalization | None = None,
    val_size: int = 0,
    rng: np.random.Generator | None = None,
    name: str = "arrays",
) -> Dataset:
    """A `Dataset` from in-memory features (N, D) and label codes in [0, len(classes)).

    The features may be any numeric array-like; they are converted to float32. Splits off
    ``val_size`` stratified validation rows with ``rng`` (none when 0), then standardizes with
    ``norm``, or with statistics fitted on the training rows when ``norm`` is None. ``X`` is not
    modified; the test split is empty. This is how arrays from other libraries (the scikit-learn
    estimator) reach the training loop.

    Parameters
    ----------
    X : array-like, shape (n, D)
        Numeric features; any shape ``(n, ...)`` is flattened to ``(n, D)``.
    y : ndarray of int64, shape (n,)
        Label codes, indices into ``classes``.
    classes : list of str
        The class names.
    norm : Normalization, optional
        The standardization to apply; None fits one on the training rows.
    val_size : int, default=0
        Validation rows held out, stratified by class; 0 for none.
    rng : numpy.random.Generator, optional
        Draws the validation split; needed when ``val_size > 0``.
    name : str, default="arrays"
        The dataset's name, as runs and model files record it.

    Returns
    -------
    Dataset
        Float32 standardized inputs (N, D), the validation rows split off, an empty test split.

    Raises
    ------
    ValueError
        When ``val_size > 0`` and ``rng`` is None.
    DatasetError
        When ``val_size`` is not below the number of rows.
    """
    X = np.asarray(X, dtype=np.float32)
    X = X.reshape(len(X), -1)
    if val_size > 0:
        if rng is None:
            raise ValueError("a validation split needs an rng")
        tr, va = stratified_split(y, val_size, rng)
    else:
        tr, va = np.arange(len(y)), np.empty(0, np.intp)
    X_train, X_val = X[tr], X[va]  # fancy indexing copies, so X itself is never standardized
    norm = norm or Normalization.fit(X_train)
    return Dataset(
        name=name,
        classes=classes,
        image_shape=(X.shape[1],),
        norm=norm,
        X_train=norm.apply(X_train),
        y_train=y[tr],
        X_val=norm.apply(X_val),
        y_val=y[va],
        X_test=np.empty((0, X.shape[1]), np.float32),
        y_test=np.empty(0, np.int64),
    )
