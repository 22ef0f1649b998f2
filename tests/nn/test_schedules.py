from __future__ import annotations

import math
from typing import Any

import pytest

from handnet.nn.schedules import warmup_cosine

KW: dict[str, Any] = {"base_lr": 0.1, "warmup_steps": 10, "total_steps": 110}


def seed_formula(it: int, init: float, warmup: int, max_iter: int) -> float:
    """The seed report: init * 1/2 * (1 + cos(pi * (iter - warmup) / (max_iter - warmup)))."""
    return init * 0.5 * (1 + math.cos(math.pi * (it - warmup) / (max_iter - warmup)))


@pytest.mark.parametrize("step", [10, 60, 110])  # end of warmup, midpoint, end
def test_matches_the_seed_formula(step: int) -> None:
    assert warmup_cosine(step, **KW) == pytest.approx(seed_formula(step, 0.1, 10, 110))


def test_key_points() -> None:
    assert warmup_cosine(9, **KW) == pytest.approx(0.1)  # warmup reaches the peak
    assert warmup_cosine(60, **KW) == pytest.approx(0.05)  # half way down the cosine
    assert warmup_cosine(110, **KW) == 0.0
    assert warmup_cosine(500, **KW) == 0.0


def test_linear_warmup() -> None:
    lrs = [warmup_cosine(s, **KW) for s in range(10)]
    assert lrs == pytest.approx([0.1 * (s + 1) / 10 for s in range(10)])


def test_min_lr_floor_and_no_warmup() -> None:
    assert warmup_cosine(0, base_lr=0.1, warmup_steps=0, total_steps=10) == pytest.approx(0.1)
    assert warmup_cosine(10, base_lr=0.1, warmup_steps=0, total_steps=10, min_lr=0.01) == 0.01
