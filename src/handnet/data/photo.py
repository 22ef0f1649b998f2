"""From a picture of a digit to an MNIST-like input: the steps MNIST itself was made with.

MNIST digits are white ink on black, scaled to fit a 20x20 box with anti-aliasing (so strokes
keep grey edges) and placed in a 28x28 field so that their centre of mass is at the centre. A
model trained on MNIST only understands inputs made the same way, so ``preprocess`` does:

1. grayscale (RGBA is composited onto white paper first), in [0, 1];
2. a light background (the border's median above 0.5) is inverted, so ink is bright;
3. contrast stretch: the background level goes to 0 and the brightest ink to 1, so a grey
   paper photo and a clean drawing give the same strokes;
4. crop to the bounding box of the pixels above a small ink threshold, leaving out specks, the
   lines of ruled or squared paper (three or more thin straight lines across the page, tilted up
   to 10 degrees) and, when a digit-sized piece lies inside the frame, pieces that run across it
   (touching two of its sides: a table edge, a shadow, a notebook's margin line);
5. refuse a dot: ink whose longer side is barely longer than its stroke is wide is a tap or a
   speck, not a digit (step 6 would blow it up into a disc that the model calls "8");
6. thin pen strokes are thickened to MNIST's stroke width (about a tenth of the digit's height);
7. scale to fit the 20x20 box, keeping the aspect ratio, with an anti-aliasing filter;
8. paste into the 28x28 field, shifted so that the centre of mass lands on (14, 14).

Decoding files needs Pillow; the array steps use NumPy, SciPy and Pillow's resampling filters.
The image side of handnet (`predict`, `serve`) uses these steps through `handnet.images.preprocess`;
they live here, in handnet.data, because image folders are datasets read the same way.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.errors import HandnetError

FloatImage = npt.NDArray[np.float32]

INK_THRESHOLD = 0.1  # after the contrast stretch: fainter pixels are background
NOISE_SIGMAS = 4.0  # pixels within this many noise sigmas of the paper are paper
SPECK_FRACTION = 0.05  # ink pieces lighter than this share of the largest piece are dust
MIN_DIGIT_FRACTION = 0.05  # a piece this long (share of the image's longer side) may be a digit
# Ruled paper: MIN_RULES or more rows of ink across RULE_COVER of the width, each at most
# RULE_THICKNESS of the height thick (a 2-3 px pen line on a 1000 px photo), tilted alike.
MIN_RULES, RULE_COVER, RULE_THICKNESS = 3, 0.7, 0.015
RULE_PAPER = 0.5  # beside a rule, rows are mostly paper (a digit's bar may cover part of them)
RULE_LEFTOVER = 0.005  # less ink than this share of the lines' besides them: an empty page
RULE_TILTS = np.arange(-40, 41) / 4  # degrees, every quarter degree
MIN_CONTRAST = 0.08  # ink must differ from the background by this much, or the image is blank
MAX_PIXELS = 40_000_000  # a decompression bomb (a tiny PNG of a huge canvas) is refused
STROKE_FRACTION = 0.1  # MNIST strokes are about 2 px wide in the 20 px box
# Ink whose longer side is under this many stroke widths is a dot. Measured with stroke_width:
# round dots of 1-300 px score 0.5-1.83 (a disc is about 1.8), while the boldest of MNIST's
# 10,000 test digits (a blobby 8) scores 2.37, and photos of the boldest ones 2.56 or more.
MIN_LENGTH_IN_STROKES = 2.1
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")


class ImageError(HandnetError):
    """An image file cannot be read, or holds no ink to classify."""


class NoInkError(ImageError):
    """The image holds no digit: it is blank, or its ink is only a dot."""


def _pil() -> Any:
    try:
        from PIL import Image, ImageOps
    except ImportError:  # pragma: no cover - Pillow is a dependency
        raise ImageError(
            "reading images needs Pillow, a dependency of handnet: pip install pillow"
        ) from None
    return Image, ImageOps


def load_image(source: str | Path | bytes, name: str | None = None) -> FloatImage:
    """Decode PNG, JPEG, BMP (and GIF, WebP, TIFF) into a float32 grayscale array in [0, 1].

    Transparent pixels become white paper; EXIF rotation (phone photos) is applied. ``name``
    labels error messages; it defaults to the path, or "image" for bytes.

    Parameters
    ----------
    source : str, Path or bytes
        The image file's path, or its content.
    name : str, optional
        What error messages call the image.

    Returns
    -------
    ndarray of float32, shape (H, W)
        The grayscale image in [0, 1], 1 being white; 16-bit and float images are scaled by
        their maximum.

    Raises
    ------
    ImageError
        When the file cannot be opened or decoded, is not one of FORMATS, or has more than
        MAX_PIXELS pixels.
    """
    Image, ImageOps = _pil()
    label = name or (str(source) if isinstance(source, str | Path) else "image")
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as e:
        raise ImageError(f"{label}: cannot open ({e.strerror})") from None
    try:
        with fp, Image.open(fp, formats=FORMATS) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{label}: {w}x{h} pixels is too large (limit {MAX_PIXELS:,})")
            im.seek(0)
            im = ImageOps.exif_transpose(im)
            return _to_gray(im, Image)
    except ImageError:
        raise
    except Exception as e:  # Pillow raises many types on corrupt data; each becomes one line
        why = (
            "not an image format Pillow reads"
            if type(e).__name__ == "UnidentifiedImageError"
            else e
        )
        raise ImageError(f"{label}: cannot read image ({why})") from None


def _to_gray(im: Any, Image: Any) -> FloatImage:
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float scans: scale by max
        a = np.asarray(im, dtype=np.float32)
        top = float(a.max())
        return (a / top if top > 0 else a).astype(np.float32)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        paper = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(paper, im.convert("RGBA"))
    gray = np.asarray(im.convert("L"), dtype=np.float32)
    return gray * np.float32(1 / 255)


def ink_image(gray: npt.ArrayLike, name: str = "image") -> FloatImage:
    """Bright ink on a zero background, stretched to [0, 1] (steps 2 and 3).

    The background level and its noise come from the image's border: level = median, noise =
    1.4826 * median absolute deviation (a robust sigma). Pixels within NOISE_SIGMAS of the
    background become 0, so paper texture and sensor noise do not count as ink.

    Parameters
    ----------
    gray : array-like, shape (H, W)
        A grayscale image in [0, 1], ink dark or light (`load_image`).
    name : str, default="image"
        What error messages call the image.

    Returns
    -------
    ndarray of float32, shape (H, W)
        The ink in [0, 1] on a background of 0.

    Raises
    ------
    ImageError
        When ``gray`` is not a 2-D image.
    NoInkError
        When the image is blank: its ink differs from the background by less than
        MIN_CONTRAST.
    """
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2 or g.size == 0:
        raise ImageError(f"{name}: expected a 2-D image, got shape {g.shape}")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    bg = float(np.median(border))
    if bg > 0.5:  # light paper, dark ink: invert so ink is bright, as in MNIST
        g = 1.0 - g
        border = 1.0 - border
        bg = 1.0 - bg
    sigma = 1.4826 * float(np.median(np.abs(border - bg)))
    top = float(np.percentile(g, 99.9)) if g.size > 10_000 else float(g.max())
    if top - bg < MIN_CONTRAST:
        raise NoInkError(f"{name}: no ink found (the image is blank)")
    level = min(bg + NOISE_SIGMAS * sigma, bg + 0.5 * (top - bg))
    x = (g - np.float32(level)) / np.float32(top - level)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def clean_ink(x: FloatImage, name: str) -> npt.NDArray[np.bool_]:
    """The pixels of ``x`` (from `ink_image`) that belong to digits.

    Those are the pixels above INK_THRESHOLD, less what is not a digit: the lines of ruled or
    squared paper (`_without_rules`); pieces that run across the frame (touching two of its
    sides: a table edge, a shadow, a margin line), when a digit-sized piece lies elsewhere; then
    specks, connected pieces with less than SPECK_FRACTION of the largest remaining piece's ink.

    Parameters
    ----------
    x : ndarray of float32, shape (H, W)
        Bright ink on a zero background, in [0, 1] (`ink_image`).
    name : str
        What error messages call the image.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True on the digits' pixels.

    Raises
    ------
    NoInkError
        When nothing is left: the image is blank, or holds only the lines of ruled paper.
    """
    from scipy import ndimage  # imported here: it adds a quarter second to `import handnet`

    ink, ruled = _without_rules(x > INK_THRESHOLD)
    pieces, n = ndimage.label(ink, structure=np.ones((3, 3)))
    labels = np.arange(1, n + 1)
    mass = np.concatenate([[0.0], ndimage.sum_labels(x, pieces, index=labels)])
    inside = _sides_touched(pieces, n) < 2
    inside[0] = False  # label 0 is the background
    if ruled and mass[inside].sum() < RULE_LEFTOVER * ruled:  # grain and line ends only
        raise NoInkError(f"{name}: no digit found, only the lines of ruled paper")
    if n == 0:
        raise NoInkError(f"{name}: no ink found (the image is blank)")
    spans = [(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in ndimage.find_objects(pieces)]
    digit_sized = np.array([False] + [max(s) >= MIN_DIGIT_FRACTION * max(x.shape) for s in spans])
    if (inside & digit_sized).any():
        mass[~inside] = 0.0  # the frame's pieces go; a digit stays
    keep = (mass > 0) & (mass >= SPECK_FRACTION * mass.max())
    return np.asarray(keep[pieces])


def _crop_to_ink(x: FloatImage, name: str) -> FloatImage:
    """``x`` cropped to the bounding box of its digit's ink (`clean_ink`), other pixels zeroed."""
    ink = clean_ink(x, name)
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return np.where(ink[r0:r1, c0:c1], x[r0:r1, c0:c1], 0).astype(np.float32)


def _without_rules(ink: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], int]:
    """``ink`` less the lines of ruled or squared paper, and how many pixels those were. Where a
    stroke crossed a line, it goes on at both sides: it is bridged over the gap."""
    from scipy import ndimage

    across, down = _ruled_lines(ink), _ruled_lines(ink.T).T
    rules = across | down
    if not rules.any():
        return ink, 0
    kept = ink & ~rules
    reach = 2 * max(2, round(RULE_THICKNESS * max(ink.shape))) + 1
    kept |= ndimage.binary_closing(kept, np.ones((reach, 1))) & across
    kept |= ndimage.binary_closing(kept, np.ones((1, reach))) & down
    return kept, int(rules.sum())


def _ruled_lines(ink: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The pixels of ruled paper's lines: at least MIN_RULES thin straight rows of ink that cross
    RULE_COVER of the image's width, all at one tilt within RULE_TILTS degrees. A digit's bar is
    one line, and thick; the rows of a notebook page are many, and thin."""
    from scipy import ndimage

    H, W = ink.shape
    out = np.zeros_like(ink)
    if min(H, W) < 300:  # the pad's 280 px drawing, or a scan of one digit: not a page
        return out
    cols = np.arange(0, W, max(1, W // 256))  # sampled columns: ~256 per row, whatever W is
    thin = max(2, round(RULE_THICKNESS * H))
    for t in np.tan(np.deg2rad(RULE_TILTS)):
        shift = np.round(cols * t).astype(np.intp)  # row r of the line at column c: r + c tan
        rows = np.arange(H)[:, None] + shift[None, :]
        inside = (rows >= 0) & (rows < H)
        cover = (ink[rows.clip(0, H - 1), cols] & inside).mean(axis=1)  # (H,) along the tilt
        runs, n = ndimage.label(cover >= RULE_COVER)
        if n < MIN_RULES:
            continue
        spans = ndimage.find_objects(runs)
        # a line is thin, with paper on both sides (not the edge of a shadow or a table)
        paper = np.append(cover, 0.0) < RULE_PAPER  # rows past the image count as paper
        lines = [
            s.stop - s.start <= thin
            and (s.start == 0 or paper[max(0, s.start - thin) : s.start].any())
            and paper[s.stop : s.stop + thin].any()
            for (s,) in spans
        ]
        if sum(lines) < MIN_RULES:
            continue
        keep = np.array([False, *lines])
        r = np.flatnonzero(keep[runs])  # the rows (at the left edge) of every thin line
        full = np.round(np.arange(W) * t).astype(np.intp)
        for d in range(-2, 3):  # two rows either side: tilts between the sampled ones, blur
            rr = r[:, None] + full[None, :] + d
            ok = (rr >= 0) & (rr < H)
            out[rr[ok], np.broadcast_to(np.arange(W), rr.shape)[ok]] = True
    return out & ink


def _sides_touched(pieces: npt.NDArray[np.int32], n: int) -> npt.NDArray[np.int64]:
    """For labels 0..n, how many of the image's four sides each labelled piece touches."""
    sides = np.zeros((n + 1, 4), bool)
    for k, edge in enumerate((pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1])):
        sides[np.unique(edge), k] = True
    return sides.sum(axis=1)


def _resize(x: FloatImage, width: int, height: int) -> FloatImage:
    """Lanczos resampling in float (Pillow widens the kernel when shrinking: anti-aliased)."""
    Image, _ = _pil()
    out = Image.fromarray(x, mode="F").resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def stroke_width(x: FloatImage) -> float:
    """Mean stroke width of the ink in pixels: area / half the boundary length (w = 2A/P).

    Parameters
    ----------
    x : ndarray of float32, shape (h, w)
        Bright ink in [0, 1]; pixels above 0.5 are the ink.

    Returns
    -------
    float
        The mean stroke width in pixels; 0 when no pixel is above 0.5.
    """
    from scipy import ndimage

    ink = x > 0.5
    area = int(ink.sum())
    if area == 0:
        return 0.0
    edge = int((ink & ~ndimage.binary_erosion(ink)).sum())
    return 2.0 * area / max(edge, 1)


def _shrink(x: FloatImage, side: int) -> FloatImage:
    """Shrink (area-preserving) so that the longer side is at most ``side``; smaller ink is kept."""
    h, w = x.shape
    s = side / max(h, w)
    if s < 1:
        x = _resize(x, max(1, round(w * s)), max(1, round(h * s)))
        x /= max(float(x.max()), 1e-6)  # shrinking a thin line dims it; keep full-strength ink
    return x


def _refuse_dot(x: FloatImage, width: float, name: str) -> None:
    """A digit is far longer than its stroke is wide (even a short "1"); a dot is not."""
    if max(x.shape) < MIN_LENGTH_IN_STROKES * width:
        raise NoInkError(f"{name}: the ink is only a dot, not a digit")


def _thicken(x: FloatImage, width: float) -> FloatImage:
    """Bring thin pen strokes (of mean ``width``) to MNIST's width: dilate with a disc until they
    are about STROKE_FRACTION of the glyph's longer side."""
    from scipy import ndimage

    target = STROKE_FRACTION * max(x.shape)
    radius = round((target - width) / 2)
    if width == 0 or radius < 1:
        return x
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disc = xx**2 + yy**2 <= radius**2
    pad = np.pad(x, radius)
    return ndimage.grey_dilation(pad, footprint=disc).astype(np.float32)


def centre_of_mass(x: FloatImage) -> tuple[float, float]:
    """(row, column) of the intensity-weighted mean position: sum(x * r) / sum(x).

    Parameters
    ----------
    x : ndarray of float32, shape (h, w)
        Intensities, the weights; their sum must be positive.

    Returns
    -------
    row : float
        The mean row, in pixels from the top.
    column : float
        The mean column, in pixels from the left.
    """
    total = float(x.sum())
    r, c = np.indices(x.shape)
    return float((x * r).sum() / total), float((x * c).sum() / total)


def fit_to_field(x: FloatImage, field: int = 28, box: int = 20) -> FloatImage:
    """Scale the cropped ink to fit ``box`` (aspect kept) and centre its mass in ``field``.

    Parameters
    ----------
    x : ndarray of float32, shape (h, w)
        Ink in [0, 1], cropped to its bounding box.
    field : int, default=28
        The side of the square output.
    box : int, default=20
        The side of the square the ink is scaled to fit.

    Returns
    -------
    ndarray of float32, shape (field, field)
        The ink scaled with anti-aliasing, its centre of mass on the field's centre (as near as
        whole-pixel shifts that keep it inside allow).
    """
    h, w = x.shape
    s = box / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = _resize(x, nw, nh)
    if small.sum() <= 0:
        small = np.ones((nh, nw), np.float32)  # a single dot that the filter smeared to zero
    cy, cx = centre_of_mass(small)
    # MNIST used whole-pixel shifts; the offset is clipped so the glyph stays inside the field.
    top = int(np.clip(round(field / 2 - cy), 0, field - nh))
    left = int(np.clip(round(field / 2 - cx), 0, field - nw))
    out = np.zeros((field, field), np.float32)
    out[top : top + nh, left : left + nw] = small
    return out


def preprocess_digit(gray: npt.ArrayLike, *, field: int = 28, name: str = "image") -> FloatImage:
    """A grayscale image (any size, ink dark or light) -> a (field, field) float32 MNIST-like
    input in [0, 1] with white ink on black.

    These are steps 2 to 8 of the module docstring.

    Parameters
    ----------
    gray : array-like, shape (H, W)
        A grayscale image in [0, 1] (`load_image`).
    field : int, default=28
        The side of the square input made.
    name : str, default="image"
        What error messages call the image.

    Returns
    -------
    ndarray of float32, shape (field, field)
        The MNIST-like input.

    Raises
    ------
    ImageError
        When ``gray`` is not a 2-D image.
    NoInkError
        When the image holds no digit: it is blank, or its ink is only a dot or ruled lines.
    """
    return digit_to_field(_crop_to_ink(ink_image(gray, name), name), field=field, name=name)


def digit_to_field(x: FloatImage, *, field: int = 28, name: str = "image") -> FloatImage:
    """One digit's ink, cropped to it (bright on 0, from `ink_image`), as a (field, field) input.

    These are steps 5 to 8 of the module docstring.

    Parameters
    ----------
    x : ndarray of float32, shape (h, w)
        The digit's ink in [0, 1] on 0, cropped to its bounding box.
    field : int, default=28
        The side of the square input made.
    name : str, default="image"
        What error messages call the image.

    Returns
    -------
    ndarray of float32, shape (field, field)
        The MNIST-like input, white ink on black.

    Raises
    ------
    NoInkError
        When the ink is only a dot.
    """
    box = round(field * 20 / 28)
    x = _shrink(x, 8 * box)  # the working size: strokes are measured and thickened here
    width = stroke_width(x)
    _refuse_dot(x, width, name)
    x = _thicken(x, width)
    return fit_to_field(x, field, box)


def to_uint8(x: FloatImage) -> npt.NDArray[np.uint8]:
    """An image in [0, 1] as 8-bit pixels, round(255 x), values outside [0, 1] clipped.

    Parameters
    ----------
    x : ndarray of float32, shape (H, W)
        The image, such as a `preprocess_digit` output; any shape works.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        The pixels in [0, 255], of the shape of ``x``.
    """
    return np.asarray(np.round(np.clip(x, 0, 1) * 255), dtype=np.uint8)
