"""The training loop in handnet.nn's docstring runs, and trains (doctest)."""

from __future__ import annotations

import doctest

import handnet.nn


def test_package_docstring_trains_a_network() -> None:
    result = doctest.testmod(handnet.nn, verbose=False)
    assert result.attempted >= 10  # every statement of the example ran (the loop is one)
    assert result.failed == 0
