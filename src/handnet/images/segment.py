"""Cut a line of ink into digits where the network reads them best.

A number's digits often touch, and a digit is sometimes in pieces. Rather than guess from shapes
alone, the network judges: candidate cuts run top to bottom between the blobs of ink (free) and
through a blob wide enough to hold two digits (paths through the least ink, each costing
CUT_COST for every stroke it cuts); of every chain of cuts from the left end to the right one,
the chain whose pieces read best wins. A piece scores its log probability, plus PIECE_BONUS (the
probabilities of several digits multiply, so without it a merged pair, read as one digit with
some confidence, would beat the two digits read with more), less how far its height and aspect
are from a digit's (`_misshapen`). A piece never spans a clear gap; one too small to be a digit
is a mark, left out at MARK_COST. The costs were chosen on pages of the first 5,000 MNIST test
digits (``bench/read_numbers.py --digits 0:5000 --seed 1``); the figures in the docs are
measured on the other 5,000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from handnet.data.photo import NoInkError, digit_to_field, stroke_width, to_uint8
from handnet.images.predict import predict_pixels
from handnet.train.classifier import Classifier

FloatImage = npt.NDArray[np.float32]

SPLIT_WIDTH = 0.5  # a blob wider than this many line heights may hold several digits
CUT_SWAY = 0.15  # a cut wanders this many line heights left or right of its column
PIECE_WIDTH = (0.06, 1.4)  # a digit's width, in line heights (a "1" is a stroke wide)
PIECE_HEIGHT = 0.5  # a digit is at least this many line heights tall
MERGE_GAP = 0.1  # pieces of one digit are at most this many line heights apart
PIECE_BONUS = 0.4  # added to each digit's log probability (see the module's docstring)
CUT_COST = 0.5  # taken for each stroke a cut cuts
MARK_COST = 2.0  # taken for ink left out as a mark, not a digit
# MNIST's training digits: the mean and standard deviation of log(width / height) of each
# class's ink (pixels above 50), measured on the bundled copy.
ASPECT = {
    "0": (-0.102, 0.191),
    "1": (-0.912, 0.453),
    "2": (-0.068, 0.212),
    "3": (-0.227, 0.208),
    "4": (-0.234, 0.208),
    "5": (-0.071, 0.252),
    "6": (-0.317, 0.213),
    "7": (-0.256, 0.211),
    "8": (-0.274, 0.217),
    "9": (-0.385, 0.204),
}
HEIGHT_SPREAD = 0.15  # the standard deviation of log(height / line height) of a number's digits
SHAPE_WEIGHT = 0.15  # the weight of those two z-scores' squares: the network's word counts more


@dataclass(frozen=True)
class Blob:
    """A run of columns with ink and no empty column inside: one digit, touching ones, or a
    digit with a mark beside it; and its rows."""

    start: int
    stop: int
    top: int
    bottom: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Cut:
    """A top-to-bottom path between digits: its column in every row; the empty columns around
    it when it runs through a gap between blobs (0 inside one); and how many strokes it cuts."""

    path: npt.NDArray[np.intp]
    gap: int = 0
    strokes: float = 0.0


def cuts(x: FloatImage, blobs: list[Blob], H: float) -> list[Cut]:
    """Candidate cuts, left to right: one at each end and in each gap between blobs, and paths
    through the least ink every H/8 columns of a blob wide enough for two digits."""
    rows, W = x.shape
    width = max(1.0, stroke_width(x))
    cuts = [Cut(np.full(rows, blobs[0].start, np.intp), gap=W)]
    step = max(1, round(H / 8))
    for b, after in zip(blobs, [*blobs[1:], None]):
        if b.width > SPLIT_WIDTH * H:
            seen: set[bytes] = set()
            for c in range(b.start + step, b.stop - step + 1, step):
                path = _cut(x, c, round(CUT_SWAY * H), b.start, b.stop)
                if path.tobytes() not in seen:
                    seen.add(path.tobytes())
                    crossed = float((x[np.arange(rows), path] > 0.5).sum())
                    cuts.append(Cut(path, strokes=crossed / width))
        end = after.start if after is not None else W
        column = (b.stop + end) // 2 if after is not None else b.stop
        cuts.append(Cut(np.full(rows, column, np.intp), gap=end - b.stop))
    return cuts


@dataclass(frozen=True)
class Piece:
    """The ink between two cuts: its columns from ``left``, and the network's input."""

    left: int
    ink: FloatImage
    input: npt.NDArray[np.uint8]


def best_pieces(
    clf: Classifier, x: FloatImage, cuts: list[Cut], H: float, side: int, name: str
) -> list[Piece]:
    """The digits between cuts that read best. Of every chain of cuts from the first to the
    last, the one with the highest sum over its pieces with ink of (log probability +
    PIECE_BONUS - `_misshapen`), less CUT_COST for every stroke its cuts cut, wins. A piece never spans a gap
    wider than MERGE_GAP heights, and one with ink is a digit's size (PIECE_WIDTH, PIECE_HEIGHT)."""
    n = len(cuts)
    lo, hi = PIECE_WIDTH[0] * H, PIECE_WIDTH[1] * H
    cols = np.arange(x.shape[1])[None, :]
    blank: set[tuple[int, int]] = set()
    marks: set[tuple[int, int]] = set()
    pieces: dict[tuple[int, int], Piece] = {}
    for i in range(n - 1):
        for j in range(i + 1, n):
            if j > i + 1 and cuts[j - 1].gap > MERGE_GAP * H:
                break  # a piece never spans a clear gap
            left, right = int(cuts[i].path.min()), int(cuts[j].path.max())
            keep = (cols[:, left:right] >= cuts[i].path[:, None]) & (
                cols[:, left:right] < cuts[j].path[:, None]
            )
            ink = np.where(keep, x[:, left:right], 0).astype(np.float32)
            inked_cols = np.flatnonzero(ink.any(axis=0))
            if inked_cols.size == 0:
                blank.add((i, j))  # only paper
                continue
            if inked_cols[-1] - inked_cols[0] + 1 > hi:
                break
            inked_rows = np.flatnonzero(ink.any(axis=1))
            if (
                inked_cols[-1] - inked_cols[0] + 1 < lo
                or inked_rows[-1] - inked_rows[0] + 1 < PIECE_HEIGHT * H
            ):
                marks.add((i, j))  # too small for a digit: a mark, left out at a cost
                continue
            try:
                field = digit_to_field(_full_strength(_cropped(ink)), field=side, name=name)
            except NoInkError:
                marks.add((i, j))  # a dot
                continue
            pieces[i, j] = Piece(left, ink, to_uint8(field))
    score = dict.fromkeys(blank, 0.0) | dict.fromkeys(marks, -MARK_COST)
    if pieces:
        probs = predict_pixels(clf, np.stack([q.input for q in pieces.values()]))
        for (key, piece), p in zip(pieces.items(), probs):
            score[key] = (
                float(np.log(max(p.max(), 1e-12)))
                + PIECE_BONUS
                - _misshapen(piece.ink, clf.classes[int(p.argmax())], H)
            )
    best = np.full(n, -math.inf)
    back = np.zeros(n, np.intp)
    best[0] = 0.0
    for j in range(1, n):
        for i in range(j):
            s = best[i] + score.get((i, j), -math.inf) - CUT_COST * cuts[j].strokes
            if s > best[j]:
                best[j], back[j] = s, i
    if not np.isfinite(best[-1]):
        return []
    chain = [n - 1]
    while chain[-1] != 0:
        chain.append(int(back[chain[-1]]))
    chain.reverse()
    return [pieces[k] for k in zip(chain, chain[1:]) if k in pieces]


def _misshapen(ink: FloatImage, label: str, H: float) -> float:
    """How unlike a digit ``label`` of a line ``H`` high the piece's shape is: half the squared
    z-scores of its height against the line's and of its aspect against the class's (MNIST's)."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    z = math.log(h / H) / HEIGHT_SPREAD
    if label in ASPECT:
        mean, sd = ASPECT[label]
        z = math.hypot(z, (math.log(w / h) - mean) / sd)
    return SHAPE_WEIGHT * 0.5 * z * z


def _full_strength(ink: FloatImage) -> FloatImage:
    """Ink scaled so that its strokes' cores are 1, as MNIST's are: a digit lighter than the
    page's darkest ink (a thin pen, a shadow) is not read as a faint one."""
    core = float(np.percentile(ink[ink > 0], 90))
    return np.minimum(ink / max(core, 1e-6), 1.0).astype(np.float32)


def _cropped(x: FloatImage) -> FloatImage:
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    return x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _cut(x: FloatImage, column: int, sway: int, start: int, stop: int) -> npt.NDArray[np.intp]:
    """The columns, row by row, of the top-to-bottom path through the least ink that stays within
    ``sway`` of ``column`` (and within [start, stop)) and moves at most one column a row: dynamic
    programming over the rows that have ink (the path runs straight above and below them)."""
    lo, hi = max(start, column - sway), min(stop, column + sway + 1)
    band = x[:, lo:hi]
    rows = np.flatnonzero(band.any(axis=1))
    path = np.full(len(x), column - lo, np.intp)
    if rows.size:
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        cost = band[r0:r1].astype(np.float64) + 1e-3 * np.abs(np.arange(lo, hi) - column)
        move = np.zeros(cost.shape, np.intp)
        options = np.full((3, cost.shape[1]), np.inf)
        for r in range(1, len(cost)):
            options[0, 1:], options[1], options[2, :-1] = (
                cost[r - 1, :-1],
                cost[r - 1],
                cost[r - 1, 1:],
            )
            move[r] = options.argmin(axis=0) - 1  # from the column left, the same, or right
            cost[r] += options.min(axis=0)
        c = int(cost[-1].argmin())
        path[r1:] = c
        for r in range(len(cost) - 1, -1, -1):
            path[r0 + r] = c
            c += move[r, c]
        path[:r0] = path[r0]
    return path + lo
