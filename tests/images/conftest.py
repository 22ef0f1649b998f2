import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread(one_blas_thread: None) -> None:
    """Every module here runs BLAS on one thread (tests/conftest.py says why)."""
