"""What differs between array libraries, in one place, so that the math reads like NumPy.

handnet.nn takes its array namespace from the data, the way scikit-learn's ``array_api_dispatch``
does: NumPy arrays in, NumPy (the default and the reference); CuPy or PyTorch tensors in
(autograd off: they are used as plain arrays), the same code runs on them. The Python array API
standard covers almost everything the network does. What it lacks lives here:

- ``out=`` buffers. NumPy writes a result into a preallocated array (``np.matmul(X, W, out=Y)``),
  which is what keeps a training step free of allocations. The standard has no ``out=``, so
  `write` computes the result and copies it in for the other libraries.
- Random numbers. The standard has none. Dropout masks and initial weights are drawn from NumPy
  Generators on the host and moved to the data's device (`like`), so a seed means the same
  masks and weights on every library.
- Moving between libraries (`to_numpy`, `like`).

NumPy arrays never reach ``array_api_compat``: the NumPy path imports NumPy alone.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def namespace(*arrays: Any) -> ModuleType:
    """The array library of ``arrays``, as a namespace ``xp`` (``xp.exp``, ``xp.sum``, ...).

    ``numpy`` itself for NumPy arrays, else the array-API namespace that ``array_api_compat``
    gives (CuPy, PyTorch, array-api-strict, ...).

    Parameters
    ----------
    *arrays : array of any shape (d0, d1, ...)
        Arrays of one library.

    Returns
    -------
    ModuleType
        ``numpy``, or the array-API namespace of the arrays' library.
    """
    if all(isinstance(a, np.ndarray | np.generic) for a in arrays):
        return np
    import array_api_compat  # only for arrays of another library

    return array_api_compat.array_namespace(*arrays)


def device(x: Any) -> Any:
    """The device ``x`` lives on ("cpu" for NumPy).

    Parameters
    ----------
    x : array of any shape (d0, d1, ...)
        An array of any library.

    Returns
    -------
    object
        The library's device object (``"cpu"`` for NumPy, ``torch.device("cuda:0")``, ...).
    """
    if isinstance(x, np.ndarray):
        return "cpu"
    import array_api_compat

    return array_api_compat.device(x)


def write(out: Any, fn: str, *args: Any, **kwargs: Any) -> Any:
    """``out[...] = xp.<fn>(*args)`` without a temporary where the library allows it.

    NumPy: ``np.<fn>(*args, out=out)``, written in place. Other libraries compute the result
    and copy it in.

    Parameters
    ----------
    out : array, shape (d0, d1, ...)
        Where the result goes, of the result's shape.
    fn : str
        The name of an elementwise function or reduction common to NumPy and the array API
        standard (``"matmul"``, ``"multiply"``, ``"tanh"``, ``"sum"``, ...).
    *args : array broadcastable to (d0, d1, ...), or float
        Its operands. Python numbers and boolean masks are converted to ``out``'s library and
        dtype for the libraries that need it.
    **kwargs : object
        Its keyword arguments (``axis=0``).

    Returns
    -------
    array, shape (d0, d1, ...)
        ``out`` itself, holding the result.
    """
    xp = namespace(out)
    if xp is np:
        return getattr(np, fn)(*args, out=out, **kwargs)
    # Booleans (masks) as numbers, and Python numbers as 0-d arrays of the arrays' dtype: the
    # standard's arithmetic takes numeric arrays only.
    args = tuple(
        xp.astype(a, out.dtype)
        if hasattr(a, "dtype") and a.dtype == xp.bool and out.dtype != xp.bool
        else a
        for a in args
    )
    ref = next(a for a in args if hasattr(a, "dtype"))
    args = tuple(
        xp.asarray(a, dtype=ref.dtype, device=device(out)) if isinstance(a, float | int) else a
        for a in args
    )
    out[...] = getattr(xp, fn)(*args, **kwargs)
    return out


def like(x: Any, ref: Any) -> Any:
    """``x`` (a NumPy array) as an array of ``ref``'s library, on ``ref``'s device.

    Parameters
    ----------
    x : ndarray, shape (d0, d1, ...)
        The values, on the host.
    ref : array of any shape (e0, e1, ...)
        An array of the library and device wanted.

    Returns
    -------
    array, shape (d0, d1, ...)
        ``x`` itself when ``ref`` is a NumPy array, else a copy in ``ref``'s library and device.
    """
    xp = namespace(ref)
    if xp is np:
        return x
    return xp.asarray(x, device=device(ref))


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array with the values of ``x``, copied to the host if it lives on a GPU.

    Parameters
    ----------
    x : array, shape (d0, d1, ...)
        An array of any library (NumPy, CuPy, PyTorch, or another that speaks DLPack).

    Returns
    -------
    ndarray, shape (d0, d1, ...)
        ``x`` itself if it is a NumPy array, else a copy on the host.
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):  # CuPy
        return np.asarray(x.get())
    if hasattr(x, "detach"):  # PyTorch
        return np.asarray(x.detach().cpu().numpy())
    return np.asarray(np.from_dlpack(x))  # array-api-strict and other DLPack libraries


def empty(shape: tuple[int, ...], ref: Any, dtype: str | None = None) -> Any:
    """An uninitialized array of ``shape`` in ``ref``'s library and device.

    Parameters
    ----------
    shape : tuple of int
        The new array's shape, (d0, d1, ...).
    ref : array of any shape (d0, d1, ...)
        An array of the library, device (and dtype, unless ``dtype`` is given) wanted.
    dtype : str, optional
        A dtype by name, as NumPy and the array API standard both spell it (``"bool"``);
        None takes ``ref``'s.

    Returns
    -------
    array, shape (d0, d1, ...)
        Uninitialized values.
    """
    xp = namespace(ref)
    if xp is np:
        return np.empty(shape, dtype=ref.dtype if dtype is None else np.dtype(dtype))
    kind = ref.dtype if dtype is None else getattr(xp, dtype)
    return xp.empty(shape, dtype=kind, device=device(ref))
