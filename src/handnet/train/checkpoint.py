"""Checkpoints: everything a run needs to continue bit-exactly, in one safetensors file.

Layout (never pickle): tensors ``params.<key>`` (the weights), ``velocity.<key>`` (SGD's
velocity) and, when the run stopped inside an epoch, ``cursor.perm`` (that epoch's shuffle order);
one metadata entry ``handnet_checkpoint`` holds JSON with the format version, the resolved
`TrainConfig`, epoch and step, the history, the state of every `Rngs` stream (found by iterating
the dataclass' fields, so a new stream is saved without touching this file), the rest of the
cursor, and what the dataset looked like (name, sizes, a digest of the labels) so that a resume
on different data is refused. The file is written with `atomic_write_bytes`: a kill at any moment
leaves the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as st_save

from handnet.data import Dataset
from handnet.errors import CheckpointError, ConfigError
from handnet.files import atomic_write_bytes
from handnet.nn.arrays import to_numpy
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import EpochCursor, TrainState
from handnet.train.modelfile import CHECKPOINT_FORMAT, load_tensors, read_bytes, read_header
from handnet.version import __version__

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_VERSION = 1
_META_KEY = "handnet_checkpoint"


def dataset_info(data: Dataset) -> dict[str, Any]:
    """What a resume must find again: the same name, sizes and labels (by SHA-256).

    Parameters
    ----------
    data : Dataset
        The run's data, as it trains on it (augmented copies included).

    Returns
    -------
    dict of str to object
        ``name``, ``n_features``, ``n_classes``, ``n_train``, ``n_val``, ``n_test`` and
        ``labels_sha256`` (of the train, validation and test labels as int64).
    """
    h = hashlib.sha256()
    for y in (data.y_train, data.y_val, data.y_test):
        h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return {
        "name": data.name,
        "n_features": data.n_features,
        "n_classes": data.n_classes,
        "n_train": len(data.y_train),
        "n_val": len(data.y_val),
        "n_test": len(data.y_test),
        "labels_sha256": h.hexdigest(),
    }


def rng_states(rngs: Rngs) -> dict[str, Any]:
    """The bit generator state of every stream in `Rngs`, by field name (JSON-safe dicts).

    Parameters
    ----------
    rngs : Rngs
        The run's streams.

    Returns
    -------
    dict of str to dict
        ``bit_generator.state`` of each stream.
    """
    return {f.name: getattr(rngs, f.name).bit_generator.state for f in dataclasses.fields(rngs)}


def restore_rng_states(rngs: Rngs, states: dict[str, Any]) -> None:
    """Set every stream's state in place: layers that hold a stream (dropout) see the change.

    Parameters
    ----------
    rngs : Rngs
        The streams to set.
    states : dict of str to object
        A state for each stream, as `rng_states` gives them.

    Raises
    ------
    CheckpointError
        If the streams named are not exactly those of `Rngs`.
    """
    names = [f.name for f in dataclasses.fields(rngs)]
    if sorted(states) != sorted(names):
        raise CheckpointError(f"random streams {sorted(states)} do not match {sorted(names)}")
    for name in names:
        getattr(rngs, name).bit_generator.state = states[name]


def checkpoint_bytes(state: TrainState, cfg: TrainConfig, data: dict[str, Any]) -> bytes:
    """The safetensors encoding of a checkpoint, in the layout the module describes.

    Parameters
    ----------
    state : TrainState
        The run's state: weights, velocity, streams, counters, history, cursor.
    cfg : TrainConfig
        The run's config.
    data : dict of str to object
        `dataset_info` of the run's data, and ``source``: where the data was found
        (``data_dir``, ``mirror``).

    Returns
    -------
    bytes
        The file's contents.
    """
    tensors = {f"params.{k}": np.ascontiguousarray(v) for k, v in state.model.state_dict().items()}
    tensors |= {
        f"velocity.{k}": np.ascontiguousarray(to_numpy(v)) for k, v in state.opt.velocity.items()
    }
    cursor = None
    if state.cursor is not None:
        c = state.cursor
        tensors["cursor.perm"] = np.ascontiguousarray(c.perm, dtype=np.int64)
        cursor = {
            "next_batch": c.next_batch,
            "loss_sum": c.loss_sum,
            "correct": c.correct,
            "reg": c.reg,
            "seconds": c.seconds,
        }
    meta = {
        "format_version": CHECKPOINT_VERSION,
        "handnet_version": __version__,
        "config": cfg.to_dict(),
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history,
        "rngs": rng_states(state.rngs),
        "cursor": cursor,
        "dataset": {k: v for k, v in data.items() if k != "source"},
        "source": data.get("source"),
    }
    return st_save(tensors, metadata={"format": CHECKPOINT_FORMAT, _META_KEY: json.dumps(meta)})


def save_checkpoint(
    path: str | Path, state: TrainState, cfg: TrainConfig, data: dict[str, Any]
) -> Path:
    """Write the checkpoint atomically (temp file, fsync, rename).

    Parameters
    ----------
    path : str or Path
        The file to write, usually ``<run dir>/checkpoint.safetensors``.
    state : TrainState
        The run's state.
    cfg : TrainConfig
        The run's config.
    data : dict of str to object
        `dataset_info` of the run's data, and ``source`` (as `checkpoint_bytes` takes it).

    Returns
    -------
    Path
        The path written.
    """
    return atomic_write_bytes(path, checkpoint_bytes(state, cfg, data))


@dataclass
class Checkpoint:
    """A checkpoint as read from disk; `restore` puts it into a freshly built `TrainState`.

    Parameters
    ----------
    path : Path
        The file it was read from, for error messages.
    config : TrainConfig
        The run's config.
    meta : dict of str to object
        The rest of the JSON metadata: epoch, step, history, streams, cursor, dataset, source.
    tensors : dict of str to ndarray
        ``params.<key>`` and ``velocity.<key>``, of the parameters' shapes ((n_in, n_out) for
        W, (n_out,) for b), and ``cursor.perm`` (n_train,) when the run stopped inside an epoch.
    """

    path: Path
    config: TrainConfig
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray]

    @property
    def dataset(self) -> dict[str, Any]:
        """What the run's data looked like (`dataset_info`), as the checkpoint saved it."""
        return dict(self.meta.get("dataset") or {})

    def check_dataset(self, data: Dataset) -> None:
        """Refuse to resume on other data than the run started with.

        Parameters
        ----------
        data : Dataset
            The data loaded again for the resume, augmented copies included.

        Raises
        ------
        CheckpointError
            Naming what differs (name, sizes, labels).
        """
        found = dataset_info(data)
        saved = {k: v for k, v in self.dataset.items() if k != "source"}
        if found != saved:
            diff = sorted(k for k in saved.keys() | found.keys() if saved.get(k) != found.get(k))
            raise CheckpointError(
                f"{self.path}: the dataset differs from the one the run started with ({', '.join(diff)})"
            )

    def restore(self, state: TrainState) -> None:
        """Overwrite ``state`` (built with the same config and data) with the saved one.

        Parameters
        ----------
        state : TrainState
            A fresh state (`TrainState.fresh`); its weights, velocity, streams, counters,
            history and cursor are set in place.

        Raises
        ------
        CheckpointError
            If a tensor is missing, extra, of the wrong shape or dtype, or not finite, or the
            metadata is incomplete or invalid.
        """
        where = self.path
        try:
            for prefix, arrays in (
                ("params", state.model.parameters()),
                ("velocity", state.opt.velocity),
            ):
                for k, a in arrays.items():
                    t = self.tensors.get(f"{prefix}.{k}")
                    if t is None or t.shape != a.shape or t.dtype != a.dtype:
                        raise CheckpointError(
                            f"{where}: tensor {prefix}.{k} is missing or has the wrong shape"
                        )
                    if not np.all(np.isfinite(t)):
                        raise CheckpointError(f"{where}: tensor {prefix}.{k} holds NaN or inf")
                    a[...] = t
            expected = {f"{p}.{k}" for p in ("params", "velocity") for k in state.opt.velocity}
            extra = sorted(set(self.tensors) - expected - {"cursor.perm"})
            if extra:
                raise CheckpointError(f"{where}: unexpected tensors {extra}")
            restore_rng_states(state.rngs, self.meta["rngs"])
            state.epoch = int(self.meta["epoch"])
            state.step = int(self.meta["step"])
            state.history = [dict(r) for r in self.meta["history"]]
            c = self.meta.get("cursor")
            state.cursor = None
            if c is not None:
                perm = self.tensors.get("cursor.perm")
                n = int(self.dataset["n_train"])
                if (
                    perm is None
                    or perm.shape != (n,)
                    or perm.dtype != np.int64
                    or not np.array_equal(np.sort(perm), np.arange(n))
                ):
                    raise CheckpointError(f"{where}: the saved shuffle order is missing or invalid")
                state.cursor = EpochCursor(
                    perm,
                    int(c["next_batch"]),
                    float(c["loss_sum"]),
                    int(c["correct"]),
                    float(c["reg"]),
                    float(c["seconds"]),
                )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"{where}: checkpoint metadata is incomplete or invalid ({type(e).__name__}: {e})"
            ) from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file.

    Parameters
    ----------
    path : str or Path
        The checkpoint file.

    Returns
    -------
    Checkpoint
        Its config, metadata and tensors, checked as far as they can be without the run's data.

    Raises
    ------
    CheckpointError
        With a one-line reason: no file, not a checkpoint, an unsupported version, corrupt
        data, an invalid config.
    """
    path = Path(path)
    raw = read_bytes(path, CheckpointError, missing="no checkpoint here")
    header = read_header(path, raw, CheckpointError)
    st_meta = header.get("__metadata__")
    if not isinstance(st_meta, dict) or st_meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a handnet checkpoint")
    try:
        meta = json.loads(st_meta[_META_KEY])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format_version") != CHECKPOINT_VERSION:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is not supported "
            f"(this handnet reads {CHECKPOINT_VERSION})"
        )
    tensors = load_tensors(path, raw, CheckpointError)
    try:
        cfg_dict = meta["config"]
        if not isinstance(cfg_dict, dict):
            raise TypeError("config is not a table")
        cfg = TrainConfig.from_dict(cfg_dict, where=str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: checkpoint has no valid config ({e})") from None
    return Checkpoint(path, cfg, meta, tensors)
