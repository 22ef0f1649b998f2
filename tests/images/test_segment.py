"""handnet.images.segment: the scores that choose where a line of ink is cut into digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handnet.images.segment import (
    ENERGY_WEIGHT,
    MARK_COST,
    PIECE_BONUS,
    Cut,
    Reading,
    _cross_section,
    _ink_on,
    _logsumexp,
    _misshapen,
    best_chain,
)

H = 40.0  # the line's height in these tests


def _cuts(n: int, strokes: float = 0.0) -> list[Cut]:
    return [Cut(np.full(4, 10 * i, np.intp), strokes=strokes) for i in range(n)]


def _digit(label: str = "3", p: float = 0.99, energy: float = 1.0, width: int = 24) -> Reading:
    return Reading(label, math.log(p), energy, int(H), width)


def test_two_digits_the_network_knows_beat_one_merged_piece_it_is_sure_of() -> None:
    # The merged piece (0, 2) is read with more confidence than either half, but its energy
    # (the logits' log-sum-exp) is far below a real digit's: the network has not seen its like.
    reads = {
        (0, 1): _digit("3", 0.90),
        (1, 2): _digit("5", 0.90),
        (0, 2): _digit("8", 0.999, energy=0.4, width=36),
    }
    assert best_chain(_cuts(3), H, reads, set(), set()) == [(0, 1), (1, 2)]
    # Without the energy gap the one piece would win: the score is what decides.
    reads[0, 2] = _digit("8", 0.999, energy=1.0, width=36)
    two = 2 * (math.log(0.9) + PIECE_BONUS)
    one = math.log(0.999) + PIECE_BONUS - _misshapen(int(H), 36, "8", H)
    assert (one > two) == (best_chain(_cuts(3), H, reads, set(), set()) == [(0, 2)])


def test_energy_trades_against_log_probability_at_energy_weight() -> None:
    # Two ways to read the same stretch: one piece A over cuts (0, 2), or paper (0, 1) then a
    # piece B (1, 2) of the same shape. B is half as likely as A (log 2 less) but has more
    # energy: it wins exactly when ENERGY_WEIGHT times its extra energy outweighs log 2.
    a = _digit("3", 0.8, energy=1.0)
    for margin, winner in ((0.05, [(0, 1), (1, 2)]), (-0.05, [(0, 2)])):
        b = _digit("3", 0.4, energy=1.0 + (math.log(2.0) + margin) / ENERGY_WEIGHT)
        chain = best_chain(_cuts(3), H, {(0, 2): a, (1, 2): b}, {(0, 1)}, set())
        assert chain == winner, margin


def test_ink_left_out_as_a_mark_costs_mark_cost() -> None:
    # A piece read with log p + PIECE_BONUS below -MARK_COST is better called a mark.
    for p, winner_is_mark in ((math.exp(-MARK_COST - PIECE_BONUS - 0.05), True), (0.9, False)):
        chain = best_chain(_cuts(3), H, {(1, 2): _digit("3", p)}, {(0, 1)}, {(1, 2), (0, 2)})
        assert (chain == [(0, 2)]) == winner_is_mark, p


def test_cutting_strokes_costs() -> None:
    # The same two halves, but the middle cut goes through three strokes: one piece wins.
    reads = {(0, 1): _digit("3"), (1, 2): _digit("5"), (0, 2): _digit("8", width=36)}
    cheap, dear = _cuts(3), _cuts(3)
    dear[1] = Cut(dear[1].path, strokes=3.0)
    assert best_chain(cheap, H, reads, set(), set()) == [(0, 1), (1, 2)]
    assert best_chain(dear, H, reads, set(), set()) == [(0, 2)]


def test_too_wide_costs_more_than_too_narrow_and_a_one_is_never_too_narrow() -> None:
    ok = _misshapen(40, 24, "3", H)
    wide = _misshapen(40, 48, "3", H)
    narrow = _misshapen(40, 12, "3", H)
    assert ok < narrow < wide
    assert _misshapen(40, 3, "1", H) == pytest.approx(0.0)  # a stroke-wide "1"
    assert _misshapen(20, 10, "1", H) > 0.0  # half the line's height is still wrong


def test_the_ink_a_cut_crosses_counts_strokes() -> None:
    x = np.zeros((30, 30), np.float32)
    x[:, 10:14] = 1.0  # a vertical bar four pixels wide
    assert _cross_section(x) == pytest.approx(4.0, rel=0.15)
    across = np.zeros((30, 30), np.float32)
    across[14:18, :] = 1.0  # a horizontal bar, 4 thick: a straight cut crosses 4 pixels of it
    path = np.full(30, 15, np.intp)
    assert _ink_on(across, path) / _cross_section(across) == pytest.approx(1.0, rel=0.15)


def test_a_step_sideways_does_not_slip_through_a_diagonal_stroke() -> None:
    # A one-pixel diagonal stroke, and a path that crosses it on the other diagonal: row by row
    # the path's own pixels miss the stroke, but the pixel beside each step is on it.
    x = np.eye(8, dtype=np.float32)[:, ::-1]  # the anti-diagonal
    path = np.arange(8, dtype=np.intp)  # the main diagonal, one column a row
    assert float(x[np.arange(8), path].sum()) == 0.0
    assert _ink_on(x, path) > 0.0


def test_logsumexp_does_not_overflow() -> None:
    z = np.array([[1000.0, 1000.0], [0.0, math.log(3.0)]])
    assert _logsumexp(z) == pytest.approx([1000.0 + math.log(2.0), math.log(4.0)])
