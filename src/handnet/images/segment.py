"""Cut a line of ink into digits where the network reads them best.

A number's digits often touch, and a digit is sometimes in pieces. Rather than guess from shapes
alone, the network judges: candidate cuts run top to bottom between the blobs of ink (free) and
through a blob wide enough to hold two digits (paths through the least ink, each costing
CUT_COST for every stroke it cuts); of every chain of cuts from the left end to the right one,
the chain whose pieces read best wins. A piece scores its log probability, plus PIECE_BONUS (the
probabilities of several digits multiply, so without it a merged pair, read as one digit with
some confidence, would beat the two digits read with more), plus ENERGY_WEIGHT times its energy
above a real digit's (`digit_energy`: log sum_c exp(z_c) of the logits, which is high where the
network sees a digit it knows and low for half a digit or two merged, however the probabilities
share out), less how far its height and aspect are from a digit's (`_misshapen`). A piece never
spans a clear gap; one too small to be a digit is a mark, left out at MARK_COST. The costs were chosen on pages of the first 5,000 MNIST test
digits (``bench/read_numbers.py --digits 0:5000 --seed 1``); the figures in the docs are
measured on the other 5,000.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from handnet.data.photo import NoInkError, digit_to_field, to_uint8
from handnet.train.classifier import Classifier

FloatImage = npt.NDArray[np.float32]

SPLIT_WIDTH = 0.5  # a blob wider than this many line heights may hold several digits
CUT_SWAY = 0.15  # a cut wanders this many line heights left or right of its column
PIECE_WIDTH = (0.06, 2.0)  # a digit's width, in line heights (a "1" is a stroke wide)
PIECE_HEIGHT = 0.5  # a digit is at least this many line heights tall
MERGE_GAP = 0.1  # pieces of one digit are at most this many line heights apart
PIECE_BONUS = 0.8  # added to each digit's log probability (see the module's docstring)
ENERGY_WEIGHT = 1.0  # the weight of a piece's energy, in units of a real digit's
CUT_COST = 0.5  # taken for each stroke a cut cuts
MARK_COST = 1.0  # taken for ink left out as a mark, not a digit
REFERENCE_DIGITS = 1000  # the bundled MNIST training digits that set a network's energy scale
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
SHAPE_WEIGHT = 0.15  # the weight of those z-scores' squares: the network's word counts more
WIDE_WEIGHT = 2.0  # ... times this for a piece wider than its class (two digits merged)
NARROW_WEIGHT = 0.25  # ... and this for one narrower (a thin "1" is no fault at all)


@dataclass(frozen=True)
class Blob:
    """A run of columns with ink and no empty column inside: one digit, touching ones, or a
    digit with a mark beside it; and its rows.

    Parameters
    ----------
    start, stop : int
        Its columns, [start, stop).
    top, bottom : int
        Its rows with ink, [top, bottom).
    """

    start: int
    stop: int
    top: int
    bottom: int

    @property
    def height(self) -> int:
        """Its rows with ink, in pixels."""
        return self.bottom - self.top

    @property
    def width(self) -> int:
        """Its columns, in pixels."""
        return self.stop - self.start


@dataclass(frozen=True)
class Cut:
    """A top-to-bottom path between digits: its column in every row; the empty columns around
    it when it runs through a gap between blobs (0 inside one); and how many strokes it cuts.

    Parameters
    ----------
    path : ndarray of intp, shape (rows,)
        Its column in each row of the line's image.
    gap : int, default=0
        The empty columns around it, when it runs through a gap between blobs.
    strokes : float, default=0.0
        How many strokes it cuts: the ink under it over a stroke's cross-section.
    """

    path: npt.NDArray[np.intp]
    gap: int = 0
    strokes: float = 0.0


def cuts(x: FloatImage, blobs: list[Blob], H: float) -> list[Cut]:
    """Candidate cuts, left to right: one at each end and in each gap between blobs, and paths
    through the least ink every H/8 columns of a blob wide enough for two digits.

    Parameters
    ----------
    x : ndarray of float32, shape (rows, W)
        The line's ink in [0, 1], 0 on paper.
    blobs : list of Blob
        Its runs of inked columns, left to right.
    H : float
        The line's height: a digit's, in pixels.

    Returns
    -------
    list of Cut
        Left to right, the first at the left end and the last at the right end.
    """
    rows, W = x.shape
    across = _cross_section(x)
    cuts = [Cut(np.full(rows, blobs[0].start, np.intp), gap=W)]
    step = max(1, round(H / 8))
    for b, after in zip(blobs, [*blobs[1:], None]):
        if b.width > SPLIT_WIDTH * H:
            seen: set[bytes] = set()
            for c in range(b.start + step, b.stop - step + 1, step):
                path = _cut(x, c, round(CUT_SWAY * H), b.start, b.stop)
                if path.tobytes() not in seen:
                    seen.add(path.tobytes())
                    cuts.append(Cut(path, strokes=_ink_on(x, path) / across))
        end = after.start if after is not None else W
        column = (b.stop + end) // 2 if after is not None else b.stop
        cuts.append(Cut(np.full(rows, column, np.intp), gap=end - b.stop))
    return cuts


def _cross_section(x: FloatImage) -> float:
    """The ink a path takes in crossing one stroke: a stroke of length L and cross-section m
    holds L m of ink and has a boundary 2 L long, so m = 2 sum(x) / boundary."""
    from scipy import ndimage

    ink = x > 0
    edge = int((ink & ~ndimage.binary_erosion(ink)).sum())
    return max(2.0 * float(x.sum()) / max(edge, 1), 1e-6)


def _ink_on(x: FloatImage, path: npt.NDArray[np.intp]) -> float:
    """The ink under a top-to-bottom path, one pixel a row, and where it steps sideways the pixel
    beside the step too: a stroke running across the diagonal does not slip between them."""
    r = np.arange(len(path))
    side = np.flatnonzero(path[1:] != path[:-1])
    return float(x[r, path].sum() + x[side, path[side + 1]].sum())


@dataclass(frozen=True)
class Piece:
    """The ink between two cuts: its columns from ``left``, and the network's input.

    Parameters
    ----------
    left : int
        The line's column where ``ink`` starts.
    ink : ndarray of float32, shape (rows, w)
        The line's ink between the two cuts, 0 elsewhere.
    input : ndarray of uint8, shape (side, side)
        ``ink`` after MNIST's steps, for the network.
    """

    left: int
    ink: FloatImage
    input: npt.NDArray[np.uint8]

    @property
    def extent(self) -> tuple[int, int]:
        """The (height, width) of the ink's bounding box, in pixels."""
        rows, cols = np.flatnonzero(self.ink.any(axis=1)), np.flatnonzero(self.ink.any(axis=0))
        return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def best_pieces(
    clf: Classifier, x: FloatImage, cuts: list[Cut], H: float, side: int, name: str
) -> list[Piece]:
    """The digits between cuts that read best (`best_chain`), left to right.

    Parameters
    ----------
    clf : Classifier
        The model that reads each candidate piece.
    x : ndarray of float32, shape (rows, W)
        The line's ink in [0, 1], 0 on paper.
    cuts : list of Cut
        The candidate cuts (`cuts`), left to right.
    H : float
        The line's height, in pixels.
    side : int
        The side of the model's input.
    name : str
        What error messages call the photo.

    Returns
    -------
    list of Piece
        The digits, left to right; empty when there is nothing but marks.
    """
    pieces, blank, marks = candidate_pieces(x, cuts, H, side, name)
    reads: dict[tuple[int, int], Reading] = {}
    if pieces:
        inputs = np.stack([q.input for q in pieces.values()])
        z = clf.net.predict_logits(clf.standardize(clf.normalize_shape(inputs)))
        logits: npt.NDArray[np.float64] = np.asarray(z, dtype=np.float64)
        lse = _logsumexp(logits)  # log sum_c exp(z_c)                           (n,)
        energy = lse / digit_energy(clf)
        logp = logits - lse[:, None]  # log softmax: log p_c = z_c - log sum exp z   (n, C)
        for (key, piece), lp, e in zip(pieces.items(), logp, energy):
            k = int(lp.argmax())
            reads[key] = Reading(clf.classes[k], float(lp[k]), float(e), *piece.extent)
    chain = best_chain(cuts, H, reads, blank, marks)
    return [pieces[k] for k in chain if k in pieces]


@dataclass(frozen=True)
class Reading:
    """What the network made of a piece.

    Parameters
    ----------
    label : str
        The likeliest class.
    logp : float
        Its log probability.
    energy : float
        log sum_c exp(z_c) of the logits z, in units of a real digit's (`digit_energy`).
    height, width : int
        The ink's bounding box, in pixels.
    """

    label: str
    logp: float
    energy: float
    height: int
    width: int


def _logsumexp(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """log sum_c exp(z_c), row by row, shifted by the row's max so that nothing overflows."""
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


_ENERGY: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()


def digit_energy(clf: Classifier) -> float:
    """The median energy, log sum_c exp(z_c) of the logits z, that the network gives real
    digits: the first REFERENCE_DIGITS training digits of the bundled MNIST. Kept per network.

    Parameters
    ----------
    clf : Classifier
        The model.

    Returns
    -------
    float
        The median energy, positive; 1.0 for a network whose inputs are not 28x28 (no
        reference: energies count as they are).
    """
    import gzip

    from handnet.data.registry import bundled_mnist_dir

    if clf.net in _ENERGY:
        return _ENERGY[clf.net]
    energy = 1.0
    if clf.net.n_in == 28 * 28:  # other inputs have no reference: their energies count as they are
        path = bundled_mnist_dir() / "train-images-idx3-ubyte.gz"
        with gzip.open(path) as f:
            raw = f.read(16 + REFERENCE_DIGITS * 28 * 28)[16:]
        X = np.frombuffer(raw, np.uint8).reshape(-1, 28, 28)
        z = clf.net.predict_logits(clf.standardize(clf.normalize_shape(X)))
        energy = max(float(np.median(_logsumexp(np.asarray(z, np.float64)))), 1e-6)
    _ENERGY[clf.net] = energy
    return energy


def candidate_pieces(
    x: FloatImage, cuts: list[Cut], H: float, side: int, name: str
) -> tuple[dict[tuple[int, int], Piece], set[tuple[int, int]], set[tuple[int, int]]]:
    """The ink between every two cuts ``i < j`` that may be a digit: the pieces, keyed (i, j),
    with their inputs; the keys of the blank stretches (only paper); and those of marks (ink too
    small for a digit, or a dot). A piece never spans a gap wider than MERGE_GAP heights, and one
    with ink is a digit's size (PIECE_WIDTH, PIECE_HEIGHT).

    Parameters
    ----------
    x : ndarray of float32, shape (rows, W)
        The line's ink in [0, 1], 0 on paper.
    cuts : list of Cut
        The candidate cuts, left to right.
    H : float
        The line's height, in pixels.
    side : int
        The side of the model's input.
    name : str
        What error messages call the photo.

    Returns
    -------
    pieces : dict of (int, int) to Piece
        The pieces with ink, keyed by their cuts (i, j).
    blank : set of (int, int)
        The stretches of paper.
    marks : set of (int, int)
        The stretches whose ink is no digit.
    """
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
    return pieces, blank, marks


def best_chain(
    cuts: list[Cut],
    H: float,
    reads: dict[tuple[int, int], Reading],
    blank: set[tuple[int, int]],
    marks: set[tuple[int, int]],
) -> list[tuple[int, int]]:
    """The chain of cuts from the first to the last with the highest score, as its steps (i, j).

    ``reads`` gives, for each piece (i, j) with ink, what the network made of it. A piece scores
    log p + PIECE_BONUS + ENERGY_WEIGHT (energy - 1) - `_misshapen`, a blank step 0 and a mark
    -MARK_COST; each cut taken costs CUT_COST for every stroke it cuts. Dynamic programming over
    the cuts, left to right: best[j] = max over i of best[i] + score(i, j) - CUT_COST *
    strokes(j). No chain (nothing but marks) gives [].

    Parameters
    ----------
    cuts : list of Cut
        The candidate cuts, left to right.
    H : float
        The line's height, in pixels.
    reads : dict of (int, int) to Reading
        What the network made of each piece with ink.
    blank : set of (int, int)
        The steps over paper.
    marks : set of (int, int)
        The steps over ink that is no digit.

    Returns
    -------
    list of (int, int)
        The chain's steps, left to right.
    """
    n = len(cuts)
    score = dict.fromkeys(blank, 0.0) | dict.fromkeys(marks, -MARK_COST)
    for key, r in reads.items():
        score[key] = (
            r.logp
            + PIECE_BONUS
            + ENERGY_WEIGHT * (r.energy - 1.0)
            - _misshapen(r.height, r.width, r.label, H)
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
    return list(zip(chain, chain[1:]))


def _misshapen(h: int, w: int, label: str, H: float) -> float:
    """How unlike a digit ``label`` of a line ``H`` high a piece ``h`` by ``w`` pixels is:
    SHAPE_WEIGHT / 2 times the squared z-score of its height against the line's, plus those of
    its aspect against the class's (MNIST's), WIDE_WEIGHT times when wider, NARROW_WEIGHT times
    when narrower (a "1" is never too narrow)."""
    z2 = (math.log(h / H) / HEIGHT_SPREAD) ** 2
    if label in ASPECT:
        mean, sd = ASPECT[label]
        za = (math.log(w / h) - mean) / sd
        if za > 0:
            z2 += WIDE_WEIGHT * za * za
        elif label != "1":
            z2 += NARROW_WEIGHT * za * za
    return SHAPE_WEIGHT * 0.5 * z2


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
