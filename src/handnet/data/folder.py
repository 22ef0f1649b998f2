"""A folder of images with one subfolder per class, the layout torchvision's ImageFolder and
Keras' ``image_dataset_from_directory`` read::

    digits/0/a.png  digits/0/b.jpg  ...  digits/9/z.png

The subfolders' names are the classes (numbers in numeric order, other names alphabetically),
and become the model's labels. Each image, of any size and mode, goes through the preprocessing
`handnet predict` gives a photo (`handnet.data.photo`), so a model trained on a folder reads
photos as it read its training images. A file that cannot be read, or holds no digit, is left
out, and all of them are named in one `SkippedImages` warning at the end.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

from handnet.data.photo import ImageError, load_image, preprocess_digit, to_uint8
from handnet.errors import DatasetError

SHOWN_SKIPPED = 5  # the warning names this many of the files left out


class SkippedImages(UserWarning):
    """Some files of an image folder could not be read as digits and were left out."""


def class_folders(root: Path) -> list[Path]:
    """The subfolders of ``root`` that are not hidden, numbers in numeric order, then names.

    Parameters
    ----------
    root : Path
        The folder of class folders.

    Returns
    -------
    list of Path
        The class folders, in class order: ``2`` before ``10``, numbers before other names.
    """
    dirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    return sorted(dirs, key=lambda d: (0, int(d.name), "") if d.name.isdigit() else (1, 0, d.name))


def is_image_folder(root: Path) -> bool:
    """Whether ``root`` is laid out as classes in subfolders (and holds no IDX files).

    Parameters
    ----------
    root : Path
        An existing folder.

    Returns
    -------
    bool
        True when it has a class folder and no entry whose name contains "idx".
    """
    return bool(class_folders(root)) and not any("idx" in p.name for p in root.iterdir())


def read_image_folder(
    root: Path, field: int = 28
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], list[str]]:
    """Every image under ``root``'s class folders as MNIST-like inputs, with labels and classes.

    Files in subfolders of a class folder count too; hidden files and folders are left out.

    Parameters
    ----------
    root : Path
        The folder of class folders.
    field : int, default=28
        The side of the square inputs made (`handnet.data.photo.preprocess_digit`).

    Returns
    -------
    images : ndarray of uint8, shape (N, field, field)
        The preprocessed images, white ink on black.
    labels : ndarray of int64, shape (N,)
        Their labels, indices into ``classes``.
    classes : list of str
        The class folders' names (`class_folders`).

    Raises
    ------
    DatasetError
        When no image could be read.

    Warns
    -----
    SkippedImages
        Naming the files that could not be read or hold no digit; they are left out.
    """
    folders = class_folders(root)
    images: list[npt.NDArray[np.uint8]] = []
    labels: list[int] = []
    skipped: list[str] = []
    for label, folder in enumerate(folders):
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        for path in files:
            name = str(path.relative_to(root))
            try:
                images.append(
                    to_uint8(preprocess_digit(load_image(path, name), field=field, name=name))
                )
            except ImageError as e:
                skipped.append(str(e))
                continue
            labels.append(label)
    if skipped:
        more = f"; and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
        warnings.warn(
            SkippedImages(
                f"{root}: {len(skipped)} file{'s' * (len(skipped) != 1)} left out: "
                + "; ".join(skipped[:SHOWN_SKIPPED])
                + more
            ),
            stacklevel=2,
        )
    if not images:
        raise DatasetError(f"{root}: no readable images in its class folders")
    return np.stack(images), np.array(labels, np.int64), [d.name for d in folders]
