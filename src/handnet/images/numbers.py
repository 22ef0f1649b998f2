"""Read a number in a photo: find each digit, read them left to right.

1. Even out the light (`flatten_light`): the paper's own brightness, a lighting gradient and the
   shadows on it included, is estimated without the ink and subtracted, leaving ink on an even
   black page. Dark ink on light paper is the rule; light ink on a dark page is recognised.
2. The ink, less what is not a digit (ruled lines, the frame's pieces: `clean_ink`, as for one
   digit), less what is not a pen stroke (`_keep_strokes`: grains, lace and ink barely above
   the paper, which is what a shadow's edge or paper texture leaves). A page with nothing left
   has no digit.
3. The runs of inked columns are the blobs (`_blobs`); a mark too short to be a digit (the bar
   that came off a "5") joins the blob it nearly touches.
4. The blobs are cut into digits where the network reads them best (`handnet.images.segment`):
   touching digits are cut apart, the pieces of a broken digit stay one.
5. Each digit goes through MNIST's steps (`digit_to_field`) and the network; the number is the
   digits read left to right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.data.photo import NoInkError, clean_ink, ink_image, stroke_width
from handnet.images.predict import (
    ImageSource,
    gray_image,
    input_field,
    likeliest,
    predict_pixels,
)
from handnet.images.segment import Blob, best_pieces, cuts
from handnet.train.classifier import Classifier

FloatImage = npt.NDArray[np.float32]
Box = tuple[int, int, int, int]  # (left, top, right, bottom) in the photo's pixels, exclusive

BACKGROUND_WINDOW = 1 / 3  # of the shorter side: the erosion that finds the paper
BACKGROUND_SIDE = 160  # the paper is estimated on a copy this many pixels on its longer side
MIN_INK = 0.1  # a digit's ink is at least this much darker than its paper (of white's 1)
INK_SIGMAS = 6.0  # ... and this many noise sigmas above the flattened paper
MIN_AREA_PX = 12  # a piece of a digit has at least this many pixels of ink
MIN_STROKE_PX = 2.5  # ... and its strokes are this many pixels wide (2 x area / boundary)
STROKE_CONTRAST = 2.0  # a stroke's core is this many times darker than the ink threshold
MIN_HEIGHT_PX = 8  # a digit is at least this tall in the photo
MIN_HEIGHT = 0.3  # ... and this share of the tallest digit's height
ATTACH_GAP = 0.3  # a mark shorter than that joins a digit this many heights away, or goes


@dataclass
class DigitReading:
    """One digit found in a photo: the network's answer, its box, and its 28x28 input.

    Parameters
    ----------
    label : str
        The likeliest class.
    probabilities : ndarray of float32, shape (n_classes,)
        One per class, in the model's class order.
    box : tuple of int
        (left, top, right, bottom) of its ink in the photo's pixels; right and bottom exclusive.
    input : ndarray of uint8, shape (side, side)
        What the network was given: the digit after MNIST's steps, white ink on black.
    """

    label: str
    probabilities: npt.NDArray[np.float32]
    box: Box
    input: npt.NDArray[np.uint8]

    @property
    def confidence(self) -> float:
        """The probability of ``label``."""
        return float(self.probabilities.max())

    def to_dict(self) -> dict[str, Any]:
        """The digit as `handnet predict --json` prints it.

        Returns
        -------
        dict of str to object
            ``label``, ``confidence`` and ``box`` (a list of four ints).
        """
        return {"label": self.label, "confidence": self.confidence, "box": list(self.box)}


@dataclass
class NumberReading:
    """The digits found in one photo, left to right (none on a page without a digit).

    Parameters
    ----------
    source : str
        The photo's name: its path, or "image".
    classes : list of str
        The model's class labels.
    digits : list of DigitReading, optional
        The digits found, left to right; empty when there is none.
    """

    source: str
    classes: list[str]
    digits: list[DigitReading] = field(default_factory=list)

    @property
    def number(self) -> str | None:
        """The digits read, as a string ("2024"); None when there is none."""
        return "".join(d.label for d in self.digits) if self.digits else None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` likeliest classes of a single digit.

        Parameters
        ----------
        k : int, default=3
            How many.

        Returns
        -------
        list of (str, float)
            (label, probability), likeliest first.

        Raises
        ------
        ValueError
            When the photo holds no digit or several.
        """
        (only,) = self.digits
        return likeliest(only.probabilities, self.classes, k)

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        """The reading as `handnet predict --json` prints it.

        Parameters
        ----------
        k : int, default=3
            How many classes ``top`` lists, for a single digit.

        Returns
        -------
        dict of str to object
            ``file``, ``number`` (a string, or None) and ``digits`` (`DigitReading.to_dict`
            each); a single digit also has what `predict` gave for it before numbers were read:
            ``label``, ``probability``, ``top`` and ``probabilities``.
        """
        out: dict[str, Any] = {
            "file": self.source,
            "number": self.number,
            "digits": [d.to_dict() for d in self.digits],
        }
        if len(self.digits) == 1:
            (only,) = self.digits
            out |= {
                "label": only.label,
                "probability": only.confidence,
                "top": [{"label": c, "probability": p} for c, p in self.top(k)],
                "probabilities": {c: float(p) for c, p in zip(self.classes, only.probabilities)},
            }
        return out


def read_number(
    clf: Classifier,
    source: ImageSource,
    name: str | None = None,
    views: int = 0,
    rng: np.random.Generator | None = None,
) -> NumberReading:
    """Find and read every digit in one image, left to right (the module's steps).

    Parameters
    ----------
    clf : Classifier
        A model of square images (28x28 for MNIST).
    source : str, Path, bytes or ndarray of shape (H, W)
        A file, its encoded bytes, or a grayscale array (uint8 in [0, 255] or float in [0, 1]).
    name : str, optional
        What error messages call the image; the path, or "image", by default.
    views : int, default=0
        Test-time augmentation of each digit, as in `predict_images`.
    rng : numpy.random.Generator, optional
        Draws the augmented copies.

    Returns
    -------
    NumberReading
        The digits found; none on a page without a digit (``number`` is then None).

    Raises
    ------
    ImageError
        When the file cannot be read.
    """
    label = name or (str(source) if isinstance(source, str | Path) else "image")
    side = input_field(clf)
    found = find_digits(clf, gray_image(source, label), side, label)
    reading = NumberReading(label, list(clf.classes))
    if found:
        inputs = np.stack([x for _, x in found])
        probs = predict_pixels(clf, inputs, views=views, rng=rng)
        for (box, x), p in zip(found, probs):
            reading.digits.append(DigitReading(clf.classes[int(p.argmax())], p, box, x))
    return reading


def flatten_light(gray: npt.ArrayLike) -> FloatImage:
    """Ink bright on an even black page: the paper's brightness, estimated by an opening by
    reconstruction, subtracted. Light paper with dark ink is inverted first.

    The opening by reconstruction: erode with a window wider than any stroke (strokes vanish,
    lit and shadowed paper wider than the window remain), then grow back under the image
    (geodesic dilation until nothing changes). A plain opening would cut a shadow's corner
    narrower than the window off as ink; reconstruction restores each region that the window
    fitted somewhere, whole, and never a stroke. Done on a copy BACKGROUND_SIDE pixels long.

    Dark ink is the rule. On a dark page (a chalk board, or paper mostly in shadow) both are
    tried, and the ink is what encloses the other (`_ink_side`).

    Parameters
    ----------
    gray : array_like, shape (H, W)
        The photo in grayscale, in [0, 1], 1 being white.

    Returns
    -------
    ndarray of float32, shape (H, W)
        The ink's strength above its paper, in [0, 1]: 0 on paper, lit or in shadow.
    """
    from scipy import ndimage

    g = np.asarray(gray, dtype=np.float32)
    H, W = g.shape
    s = min(1.0, BACKGROUND_SIDE / max(H, W))
    small = ndimage.zoom(g, s, order=1, mode="nearest") if s < 1 else g
    small = ndimage.gaussian_filter(small, 1.0)  # sensor noise would make the erosion blotchy
    k = max(3, round(BACKGROUND_WINDOW * min(small.shape)))
    dark = _above_paper(1.0 - g, 1.0 - small, k)
    if float(np.median(small)) >= 0.5:
        return dark
    light = _above_paper(g, small, k)
    return light if _ink_side(light, dark) else dark


def _above_paper(g: FloatImage, small: FloatImage, k: int) -> FloatImage:
    """``g`` (ink bright) less its paper, estimated on ``small`` (``g`` shrunk and smoothed) by
    an opening by reconstruction with a ``k`` pixel window; clipped to [0, 1]."""
    from scipy import ndimage

    H, W = g.shape
    # Its border repeated outwards, a shadow that comes in from outside the picture is as wide
    # past the edge as at it, so the window fits in a corner of shadow too.
    extended = np.pad(small, k, mode="edge")
    paper = ndimage.grey_erosion(extended, size=(k, k))
    while True:
        grown = np.minimum(ndimage.grey_dilation(paper, size=(3, 3)), extended)
        if np.array_equal(grown, paper):
            break
        paper = grown
    paper = paper[k:-k, k:-k]
    if paper.shape != (H, W):
        # mode "nearest": rounding can put the last pixel a hair outside, where "constant" is 0
        paper = ndimage.zoom(
            paper, (H / paper.shape[0], W / paper.shape[1]), order=1, mode="nearest"
        )
    return np.clip(g - paper[:H, :W], 0.0, 1.0).astype(np.float32)


def _ink_side(light: FloatImage, dark: FloatImage) -> bool:
    """Whether the ink is ``light`` rather than ``dark`` (the page flattened both ways).

    Each way, what stands above the paper is the ink, or the paper that the ink encloses (the
    inside of a "0" is narrower than the window too). Ink encloses paper, never the reverse: the
    strokes of one side (`_keep_strokes`) that lie in the holes of the other's are not ink, and
    the side with more ink left, weighed by its contrast, is the ink's. A shadow's edge, which
    fooled a comparison of the two sides' extremes, leaves no stroke either way; a band of lit
    paper narrower than the window rises above the paper, faintly, and is no stroke either."""
    from scipy import ndimage

    marks = []
    for f in (light, dark):
        least = max(MIN_INK / 2, INK_SIGMAS * _noise(f))
        mark = f >= least
        _keep_strokes(mark, f, least)
        marks.append(mark)
    light_mark, dark_mark = marks
    light_ink = float(light[light_mark & ~ndimage.binary_fill_holes(dark_mark)].sum())
    dark_ink = float(dark[dark_mark & ~ndimage.binary_fill_holes(light_mark)].sum())
    return light_ink > dark_ink


def find_digits(
    clf: Classifier, gray: FloatImage, side: int, name: str
) -> list[tuple[Box, npt.NDArray[np.uint8]]]:
    """Find the digits in a photo (steps 1 to 4 of the module's docstring).

    Parameters
    ----------
    clf : Classifier
        The model that judges where touching digits are cut apart (`best_pieces`).
    gray : ndarray of float32, shape (H, W)
        The photo in grayscale, in [0, 1], 1 being white.
    side : int
        The side of the model's input (28 for MNIST).
    name : str
        What error messages call the photo.

    Returns
    -------
    list of (tuple of int, ndarray of uint8 of shape (side, side))
        Left to right, each digit's box (left, top, right, bottom) in the photo's pixels and its
        input for the network; empty for a page without a digit.
    """
    flat = flatten_light(gray)
    if float(flat.max()) < MIN_INK:
        return []
    try:
        x = ink_image(flat, name)
        least = max(MIN_INK / 2, INK_SIGMAS * _noise(flat))
        ink = clean_ink(x, name) & (flat >= least)
    except NoInkError:
        return []
    _keep_strokes(ink, flat, least)
    blobs = _blobs(ink, flat)
    if not blobs:
        return []
    tall = max(b.height for b in blobs)
    H = float(np.median([b.height for b in blobs if b.height >= 0.5 * tall]))
    x = np.where(ink, x, 0).astype(np.float32)
    found = []
    for piece in best_pieces(clf, x, cuts(x, blobs, H), H, side, name):
        r = np.flatnonzero(piece.ink.any(axis=1))
        c = np.flatnonzero(piece.ink.any(axis=0))
        box = (piece.left + int(c[0]), int(r[0]), piece.left + int(c[-1]) + 1, int(r[-1]) + 1)
        found.append((box, piece.input))
    return found


def _noise(flat: FloatImage) -> float:
    """The paper's noise after flattening: a robust sigma, 1.4826 times the median absolute
    deviation (the digits are too few of the pixels to move it)."""
    return 1.4826 * float(np.median(np.abs(flat - np.median(flat))))


def _keep_strokes(ink: npt.NDArray[np.bool_], flat: FloatImage, least: float) -> None:
    """Clear the connected pieces of ``ink`` that are not pen strokes: grains (under MIN_AREA_PX
    pixels), lace (thinner than MIN_STROKE_PX: noise where the paper's estimate was a little
    low, at the edge of a shadow) and pieces barely above ``least``, the ink threshold (a
    stroke's core is at least STROKE_CONTRAST times as dark; the noise that crossed it is not)."""
    from scipy import ndimage

    pieces, _ = ndimage.label(ink, structure=np.ones((3, 3)))
    for i, where in enumerate(ndimage.find_objects(pieces), start=1):
        piece = pieces[where] == i
        if (
            piece.sum() < MIN_AREA_PX
            or stroke_width(piece.astype(np.float32)) < MIN_STROKE_PX
            or float(np.percentile(flat[where][piece], 75)) < STROKE_CONTRAST * least
        ):
            ink[where][piece] = False  # a view of ``ink``: cleared in place


def _blobs(ink: npt.NDArray[np.bool_], flat: FloatImage) -> list[Blob]:
    """The runs of inked columns that hold digits, left to right. Runs too faint (MIN_INK) or
    short (MIN_HEIGHT_PX, MIN_HEIGHT of the tallest) to be a digit join the neighbour they
    nearly touch (ATTACH_GAP heights: a bar that came off a "5") or are cleared from ``ink``."""
    from scipy import ndimage

    runs, _ = ndimage.label(ink.any(axis=0))
    found = []
    for (cols,) in ndimage.find_objects(runs):
        rows = np.flatnonzero(ink[:, cols].any(axis=1))
        blob = Blob(cols.start, cols.stop, int(rows[0]), int(rows[-1]) + 1)
        if float(flat[blob.top : blob.bottom, cols].max()) < MIN_INK:
            ink[:, cols] = False  # faint: paper texture or a smudge
        else:
            found.append(blob)
    tall = max((b.height for b in found), default=0)
    short = max(MIN_HEIGHT_PX, MIN_HEIGHT * tall)
    digits = [b for b in found if b.height >= short]
    for b in found:
        if b.height >= short:
            continue
        near = min(digits, key=lambda d: max(d.start - b.stop, b.start - d.stop), default=None)
        if near is None or max(near.start - b.stop, b.start - near.stop) > ATTACH_GAP * tall:
            ink[:, b.start : b.stop] = False
            continue
        i = digits.index(near)
        digits[i] = Blob(
            min(near.start, b.start),
            max(near.stop, b.stop),
            min(near.top, b.top),
            max(near.bottom, b.bottom),
        )
    return sorted(digits, key=lambda b: b.start)
