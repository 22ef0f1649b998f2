"""A run's folder: its name, the history file it holds, and how a path names a run's model.

``runs/<name>/`` is named "model + date + random" as in the seed report (`run_name`); it holds
``<name>.safetensors``, ``history.csv`` (`history_csv`), ``metrics.json``, ``config.toml``, the
plots and ``report.html`` (`handnet.train.runs` writes them). `run_model` finds the model of a
run directory, and of ``RUNS/latest``, so that a run is a model wherever a file is.
"""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime
from pathlib import Path

from handnet.errors import ModelFileError
from handnet.train.checkpoint import CHECKPOINT_NAME

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def run_name(now: datetime | None = None) -> str:
    """``model-YYYYMMDD-HHMMSS-<6 hex>``: sortable by time; two runs in one second do not collide.

    Parameters
    ----------
    now : datetime, optional
        The time to name (local time); None: now.

    Returns
    -------
    str
        The run's name, with 6 random hex digits at the end.
    """
    now = now or datetime.now()
    return f"model-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


LATEST = "latest"  # RUNS/latest names the newest finished run under RUNS


def run_model(path: str | Path) -> Path:
    """The model file ``path`` names, so that a run directory is a model wherever a file is.

    A file is itself; a run directory gives ``<dir>/<dir name>.safetensors`` (else its one
    model file); ``RUNS/latest``, where no such file or directory exists, gives the model of the
    newest finished run under RUNS (by the start time in its name, then by when its model was
    written).
    A path that does not exist is returned as it is, for the loader to say so.

    Parameters
    ----------
    path : str or Path
        A model file, a run directory, or ``RUNS/latest``.

    Returns
    -------
    Path
        The model file.

    Raises
    ------
    ModelFileError
        For a directory with no model or several, an unfinished run, or a ``latest`` with no
        finished run beside it.
    """
    p = Path(path)
    if p.name == LATEST and not p.exists():
        return _latest_model(p.parent, p)
    if not p.is_dir():
        return p
    named = p / f"{p.name}.safetensors"
    if named.is_file():
        return named
    found = sorted(f for f in p.glob("*.safetensors") if f.name != CHECKPOINT_NAME)
    if len(found) == 1:
        return found[0]
    if not found and (p / CHECKPOINT_NAME).is_file():
        raise ModelFileError(
            f"{p}: an unfinished run, no model yet (resume it: handnet train --resume {p})"
        )
    why = "no .safetensors model" if not found else f"{len(found)} .safetensors files"
    raise ModelFileError(f"{p}: a directory with {why}; name the model file instead")


def _latest_model(runs: Path, asked: Path) -> Path:
    models = [d / f"{d.name}.safetensors" for d in runs.glob("model-*") if d.is_dir()]
    models = [m for m in models if m.is_file()]
    if not models:
        raise ModelFileError(f"{asked}: no finished run in {runs} (model-*/ with its model file)")
    return max(models, key=lambda m: (m.parent.name[:21], m.stat().st_mtime))


def history_csv(history: list[dict[str, float]]) -> str:
    """The history as ``history.csv`` holds it: a header, then one row per epoch.

    Parameters
    ----------
    history : list of dict of str to float
        One record per epoch (`TrainState.history`).

    Returns
    -------
    str
        CSV text with the columns `HISTORY_FIELDS`.
    """
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: row[k] for k in HISTORY_FIELDS})
    return buf.getvalue()
