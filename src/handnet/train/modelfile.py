"""Model files: safetensors weights plus JSON metadata in one file, written atomically, never pickled.

Layout: the tensors under the model's dotted keys (``layers.0.W``), all float32, and one metadata
entry ``handnet`` holding a JSON object (format version, architecture, normalization, classes,
dataset, hyperparameters, history, metrics, version, creation time). ``load_model`` checks that
the architecture's parameter count matches the file before building the network, then every key,
shape and dtype before using any value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from handnet.data.geometry import Geometry
from handnet.data.split import Normalization
from handnet.errors import ConfigError, HandnetError, ModelFileError
from handnet.files import atomic_write_bytes
from handnet.nn.model import MLP, count_parameters
from handnet.train.classifier import Classifier
from handnet.version import __version__

# A file carries the oldest format version whose readers prepare its inputs right: 1, or 2 for
# a width-normalizing model (normalization.width, which a reader of format 1 would ignore), or 3
# for a model of unscaled features (normalization.pixels false, which earlier readers ignore).
FORMAT_VERSIONS = (1, 2, 3)
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
CHECKPOINT_FORMAT = (
    "handnet-checkpoint"  # a checkpoint's safetensors "format" (handnet.train.checkpoint)
)
# The metrics a run records as single numbers (or null: no validation split).
SCALAR_METRICS = frozenset(
    "val_accuracy val_loss test_accuracy test_loss train_seconds data_seconds wall_seconds "
    "epochs steps train_size val_size test_size".split()
)


def model_bytes(clf: Classifier) -> bytes:
    """The safetensors encoding of a classifier (weights + JSON metadata).

    Parameters
    ----------
    clf : Classifier
        The model; its ``meta`` is stored with the architecture, normalization and classes.

    Returns
    -------
    bytes
        The file's contents.

    Raises
    ------
    HandnetError
        If a weight is not finite.
    """
    tensors = {k: np.ascontiguousarray(v) for k, v in clf.net.state_dict().items()}
    for k, v in tensors.items():
        if not np.all(np.isfinite(v)):
            raise HandnetError(f"refusing to save a model with non-finite weights ({k})")
    meta = {
        **clf.meta,
        "format_version": 3 if not clf.pixels else 2 if clf.geometry.width else 1,
        "architecture": clf.net.config(),
        "normalization": {
            "mean": clf.norm.mean,
            "std": clf.norm.std,
            "deskew": clf.geometry.deskew,
            "width": clf.geometry.width,
            "pixels": clf.pixels,
        },
        "classes": clf.classes,
        "image_shape": list(clf.image_shape),
    }
    meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta["handnet_version"] = __version__
    return st_save(tensors, metadata={"format": "handnet", "handnet": json.dumps(meta)})


def save_model(clf: Classifier, path: str | Path) -> Path:
    """Save atomically to ``path`` (temp file, fsync, rename).

    Parameters
    ----------
    clf : Classifier
        The model.
    path : str or Path
        The file to write (``.safetensors``).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    HandnetError
        If a weight is not finite.
    """
    return atomic_write_bytes(path, model_bytes(clf))


def read_header(
    path: Path, raw: bytes, error: type[HandnetError] = ModelFileError
) -> dict[str, Any]:
    """The JSON header of safetensors bytes, checked before safetensors itself sees them.

    Parameters
    ----------
    path : Path
        Where the bytes come from, for the error message.
    raw : bytes
        The whole file.
    error : type of HandnetError, default=ModelFileError
        The error to raise.

    Returns
    -------
    dict of str to object
        The header: each tensor's dtype, shape and offsets, and ``__metadata__``.

    Raises
    ------
    HandnetError
        ``error``, with a one-line reason: a pickle, a zip archive, too short, truncated, not
        JSON.
    """
    # A safetensors header is JSON starting at byte 8. Only when it is not there do the first bytes
    # name the format: a header length of 384 also starts with 0x80, like a pickle.
    looks_safetensors = raw[8:9] == b"{"
    if not looks_safetensors and (raw[:1] == b"\x80" or raw[:2] == b"PK"):
        kind = "a pickle" if raw[:1] == b"\x80" else "a zip archive (a PyTorch .pt file?)"
        raise error(f"{path}: is {kind}, not a safetensors file; handnet never unpickles")
    if len(raw) < 8:
        raise error(f"{path}: not a safetensors file (only {len(raw)} bytes)")
    if not looks_safetensors:
        raise error(f"{path}: not a safetensors file (no JSON header after its first 8 bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise error(
            f"{path}: truncated or corrupt safetensors file "
            f"(its header length says {n} bytes, the file has {len(raw)})"
        )
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise error(f"{path}: corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise error(f"{path}: corrupt safetensors header")
    return header


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The handnet metadata of a model file, without loading the weights' values.

    Parameters
    ----------
    path : str or Path
        The model file.

    Returns
    -------
    dict of str to object
        The JSON metadata: format version, architecture, normalization, classes, dataset,
        config, history, metrics, version, creation time.

    Raises
    ------
    ModelFileError
        With a one-line reason, if the file is not a readable handnet model.
    """
    path = Path(path)
    raw = read_bytes(path)
    return _metadata(path, read_header(path, raw))


def read_bytes(
    path: Path, error: type[HandnetError] = ModelFileError, missing: str = "file not found"
) -> bytes:
    """The whole file, or ``error`` with a one-line reason (model files and checkpoints alike).

    Parameters
    ----------
    path : Path
        The file.
    error : type of HandnetError, default=ModelFileError
        The error to raise.
    missing : str, default="file not found"
        The reason given when the file does not exist.

    Returns
    -------
    bytes
        The file's contents.

    Raises
    ------
    HandnetError
        ``error``, if the file is missing, a directory, or cannot be read.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a file") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None


def load_tensors(
    path: Path, raw: bytes, error: type[HandnetError] = ModelFileError
) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file already read, or ``error`` if their data is corrupt.

    Parameters
    ----------
    path : Path
        Where the bytes come from, for the error message.
    raw : bytes
        The whole file.
    error : type of HandnetError, default=ModelFileError
        The error to raise.

    Returns
    -------
    dict of str to ndarray
        The tensors by key, of the shapes the header gives (``layers.0.W`` (n_in, n_out),
        ``layers.0.b`` (n_out,), ...), unchecked.

    Raises
    ------
    HandnetError
        ``error``, if the tensor data is corrupt.
    """
    try:
        return st_load(raw)
    except (SafetensorError, ValueError, OverflowError) as e:
        raise error(f"{path}: corrupt tensor data ({e})") from None


def _metadata(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    st_meta = header.get("__metadata__")
    if isinstance(st_meta, dict) and st_meta.get("format") == CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{path}: a training checkpoint, not a model; continue its run with "
            f"handnet train --resume {path.parent}"
        )
    if (
        not isinstance(st_meta, dict)
        or st_meta.get("format") != "handnet"
        or "handnet" not in st_meta
    ):
        raise ModelFileError(
            f"{path}: a safetensors file, but not a handnet model (no handnet metadata)"
        )
    try:
        meta = json.loads(st_meta["handnet"])
    except (TypeError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: handnet metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: handnet metadata is not a JSON object")
    version = meta.get("format_version")
    if version not in FORMAT_VERSIONS or isinstance(version, bool):
        raise ModelFileError(
            f"{path}: model format version {version!r} is not supported "
            f"(this handnet reads {', '.join(map(str, FORMAT_VERSIONS))})"
        )
    _check_run_record(path, meta)
    return meta


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_run_record(path: Path, meta: dict[str, Any]) -> None:
    """The optional parts that describe the run (config, metrics, history), which info, plot,
    finetune and report read: their JSON types, and the config's settings as `TrainConfig` checks
    them (settings of older versions that this one does not know are left alone)."""
    for key in ("config", "metrics"):
        if key in meta and not isinstance(meta[key], dict):
            raise ModelFileError(f"{path}: metadata '{key}' is not an object")
    for key, v in meta.get("metrics", {}).items():
        if key in SCALAR_METRICS and not (v is None or _is_number(v)):
            raise ModelFileError(f"{path}: metrics '{key}' is {v!r}, not a number")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(r, dict) and all(map(_is_number, r.values())) for r in history
    ):
        raise ModelFileError(f"{path}: metadata 'history' is not a list of records of numbers")
    if "config" in meta:
        from handnet.train.config import (
            TrainConfig,  # here: handnet.train imports data, data imports io
        )

        known = {f.name for f in dataclasses.fields(TrainConfig)}
        try:
            TrainConfig.from_dict(
                {k: v for k, v in meta["config"].items() if k in known}, where="stored config"
            )
        except ConfigError as e:
            raise ModelFileError(f"{path}: {e}") from None


def load_model(path: str | Path) -> Classifier:
    """Load a model file, checking keys, shapes and dtypes against its metadata.

    Parameters
    ----------
    path : str or Path
        The model file.

    Returns
    -------
    Classifier
        The network with its normalization, classes, geometry and metadata.

    Raises
    ------
    ModelFileError
        With a one-line reason, for anything that is not a valid handnet model: a pickle, a
        truncated file, a missing or extra tensor, a wrong shape or dtype, an unknown version.
    """
    path = Path(path)
    raw = read_bytes(path)
    meta = _metadata(path, read_header(path, raw))
    tensors = load_tensors(path, raw)
    try:
        arch = meta["architecture"]
        # Check the size before allocating: a tampered header must not make us build a huge net.
        needed, held = count_parameters(arch), sum(t.size for t in tensors.values())
        sizes = [int(arch["n_in"]), *(int(h) for h in arch["hidden_sizes"]), int(arch["n_out"])]
        if min(sizes) < 1 or needed != held:
            raise ModelFileError(
                f"{path}: architecture {sizes} needs {needed} parameters, the file holds {held}"
            )
        for k, t in tensors.items():  # before the values are used
            if t.dtype != np.float32:
                raise ModelFileError(f"{path}: tensor {k} has dtype {t.dtype}, expected float32")
            if not np.all(np.isfinite(t)):
                raise ModelFileError(f"{path}: tensor {k} holds NaN or inf")
        net = MLP.from_config(arch)
        norm = Normalization(
            float(meta["normalization"]["mean"]), float(meta["normalization"]["std"])
        )
        try:  # deskew is absent in files before 0.3.0, width before 0.4.0
            geometry = Geometry(
                meta["normalization"].get("deskew", False), meta["normalization"].get("width", 0)
            )
        except ConfigError as e:
            raise ModelFileError(f"{path}: normalization: {e}") from None
        pixels = meta["normalization"].get("pixels", True)  # absent before 0.5.0: pixels
        if not isinstance(pixels, bool):
            raise ModelFileError(f"{path}: normalization: pixels={pixels!r}: must be true or false")
        classes = [str(c) for c in meta["classes"]]
        image_shape = tuple(int(d) for d in meta["image_shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(
            f"{path}: metadata is incomplete or invalid ({type(e).__name__}: {e})"
        ) from None
    if not (math.isfinite(norm.mean) and math.isfinite(norm.std) and norm.std > 0):
        raise ModelFileError(
            f"{path}: normalization mean {norm.mean} and std {norm.std}: "
            "the std must be a positive number and the mean finite"
        )
    if math.prod(image_shape) != net.n_in:
        raise ModelFileError(
            f"{path}: image_shape {list(image_shape)} does not hold the {net.n_in} inputs "
            "of the network"
        )
    if len(classes) != net.n_out:
        raise ModelFileError(f"{path}: {len(classes)} class names for {net.n_out} outputs")
    try:
        net.load_state_dict(tensors)
    except ValueError as e:
        raise ModelFileError(f"{path}: {e}") from None
    return Classifier(net, norm, classes, image_shape, meta, geometry=geometry, pixels=pixels)
