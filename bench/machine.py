"""What every benchmark prints about the machine: the BLAS library, its kernel and its threads."""

from __future__ import annotations


def blas_info() -> str:
    """One line per BLAS that NumPy (and anything else loaded) uses, via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install 'handnet[bench]')"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(
        f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
        f"threads={i.get('num_threads')}"
        for i in libs
    )
