"""Where a run trains: NumPy on the CPU (the default and the reference), or another array library.

The math is the same code on every library (handnet.nn takes its namespace from the arrays it
is given); this module only picks the library and moves a run's arrays to it and back:

- ``cpu``: NumPy.
- ``cuda``: the GPU, through CuPy if it is installed, else through PyTorch (``torch-cuda``).
- ``cupy``, ``torch-cuda``: that library on the GPU.
- ``torch``: PyTorch tensors on the CPU, used as plain arrays (autograd off).
- ``array-api-strict``: the array API standard's strict reference library, which refuses
  anything NumPy-only; for tests.

Weights start and end as NumPy arrays: the run moves them to the device at the start of `fit`
and back at its end, so model files, checkpoints and everything after training see NumPy.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from handnet.data import Dataset
from handnet.errors import ConfigError, install_extra

DEVICES = ("cpu", "cuda", "cupy", "torch", "torch-cuda", "array-api-strict")


def converter(device: str) -> Callable[[np.ndarray], Any] | None:
    """How a NumPy array goes to ``device`` (None for ``cpu``: it stays NumPy).

    Parameters
    ----------
    device : str
        One of `DEVICES`; ``cuda`` picks CuPy if it is installed, else PyTorch.

    Returns
    -------
    callable or None
        A function from a NumPy array to the same values in the device's library
        (``cupy.asarray``, ``torch.asarray(..., device=...)``); None for ``cpu``.

    Raises
    ------
    ConfigError
        With one line, when the device is unknown, or its library or the GPU is missing.
    """
    if device == "cpu":
        return None
    if device == "cuda":
        device = "cupy" if importlib.util.find_spec("cupy") else "torch-cuda"
    if device == "cupy":
        cupy = _library("cupy", device)
        return cupy.asarray
    if device in ("torch", "torch-cuda"):
        torch = _library("torch", device)
        where = "cuda" if device == "torch-cuda" else "cpu"
        if where == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: PyTorch sees no CUDA GPU on this machine")
        # Plain tensors (requires_grad false): autograd records nothing, they are only arrays.
        return lambda a: torch.asarray(a, device=where)
    if device == "array-api-strict":
        strict = _library("array_api_strict", device)
        return strict.asarray
    raise ConfigError(f"--device {device!r}: must be one of {', '.join(DEVICES)}")


def _library(module: str, device: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"--device {device} needs {module}: {install_extra('gpu')}"
            if module != "array_api_strict"
            else f"--device {device} needs array-api-strict: {install_extra('test')}"
        ) from None
    except Exception as e:  # CuPy without a CUDA driver fails at import with its own error
        raise ConfigError(f"--device {device}: {module} cannot start ({e})") from None


def on_device(data: Dataset, device: str) -> Dataset:
    """``data`` with its training and validation arrays on ``device``.

    The test split stays: it is scored once, after training, on the CPU.

    Parameters
    ----------
    data : Dataset
        The run's data, NumPy arrays.
    device : str
        One of `DEVICES`.

    Returns
    -------
    Dataset
        ``data`` itself for ``cpu``, else a copy whose ``X_train`` (n_train, D), ``y_train``,
        ``X_val`` and ``y_val`` are arrays of the device's library.

    Raises
    ------
    ConfigError
        As `converter` does.
    """
    move = converter(device)
    if move is None:
        return data
    return dataclasses.replace(
        data,
        X_train=move(data.X_train),
        y_train=move(data.y_train),
        X_val=move(data.X_val),
        y_val=move(data.y_val),
    )
