"""The array libraries the tests run handnet.nn on: NumPy (the reference), array-api-strict (the
standard's strict reference, which refuses anything NumPy-only), PyTorch CPU tensors, and CuPy
where a GPU is present. A library that is not installed skips with a reason."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


def _gpu() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except Exception:
        return False


# device name (handnet.train.device) -> (needed module, skip reason or None)
BACKENDS = {
    "cpu": None,
    "array-api-strict": "array_api_strict",
    "torch": "torch",
    "cupy": "cupy",
}


def backend_params() -> list[Any]:
    params = []
    for device, module in BACKENDS.items():
        marks = []
        if module is not None and importlib.util.find_spec(module) is None:
            marks.append(pytest.mark.skip(reason=f"{module} is not installed"))
        elif device == "cupy":
            marks.append(pytest.mark.gpu)
            if not _gpu():
                marks.append(
                    pytest.mark.skip(reason="CuPy needs a CUDA GPU; this machine has none")
                )
        params.append(pytest.param(device, marks=marks, id=device))
    return params


def converter(device: str) -> Callable[[np.ndarray], Any]:
    from handnet.train.device import converter as c

    return c(device) or (lambda a: a)
