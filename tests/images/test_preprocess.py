"""MNIST-style preprocessing: ink found in any picture, cropped, fitted to 20x20, centred by mass."""

from __future__ import annotations

import io
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image, ImageDraw
from scipy import ndimage

from handnet.data.registry import load_bundled_mnist
from handnet.images.preprocess import (
    ImageError,
    NoInkError,
    centre_of_mass,
    load_image,
    preprocess_digit,
)


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    s = load_bundled_mnist()
    return s.X_test[:300], s.y_test[:300]


def ink_box(x: np.ndarray, thr: float = 0.05) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((x > thr).any(axis=1))
    cols = np.flatnonzero((x > thr).any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def on_paper(ink: np.ndarray, size: tuple[int, int], at: tuple[int, int], dark: bool) -> np.ndarray:
    """Paste a [0, 1] ink image onto a (h, w) page at (row, col): dark ink on white or light on black."""
    page = np.zeros(size, np.float32)
    r, c = at
    page[r : r + ink.shape[0], c : c + ink.shape[1]] = ink
    return 1.0 - page if dark else page


def ring(n: int, thickness: float) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    rad = np.hypot(yy, xx)
    return ((rad < n / 2) & (rad > n / 2 - thickness)).astype(np.float32)


def plus(n: int, thickness: int) -> np.ndarray:
    x = np.zeros((n, n), np.float32)
    m = (n - thickness) // 2
    x[m : m + thickness] = 1
    x[:, m : m + thickness] = 1
    return x


@pytest.mark.parametrize("dark", [True, False], ids=["dark-on-light", "light-on-dark"])
@pytest.mark.parametrize(
    ("shape", "page", "at"),
    [
        (ring(60, 8), (200, 300), (10, 220)),
        (ring(400, 50), (1200, 900), (700, 40)),
        (plus(31, 5), (64, 64), (0, 0)),
        (plus(301, 41), (640, 480), (300, 170)),
    ],
    ids=["small-ring", "large-ring", "corner-plus", "large-plus"],
)
def test_symmetric_shapes_are_centred_and_inside_the_20x20_box(
    shape: np.ndarray, page: tuple[int, int], at: tuple[int, int], dark: bool
) -> None:
    x = preprocess_digit(on_paper(shape, page, at, dark))
    assert x.shape == (28, 28) and x.dtype == np.float32
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    r0, r1, c0, c1 = ink_box(x)
    assert 4 <= r0 and r1 <= 23 and 4 <= c0 and c1 <= 23  # the central 20x20 box
    assert max(r1 - r0, c1 - c0) + 1 >= 19  # scaled up or down to fill it


def test_enlarged_off_centre_mnist_digits_are_centred_by_mass(mnist_test: tuple) -> None:
    X, _ = mnist_test
    rng = np.random.default_rng(0)
    for img in X[:20]:  # a page of up to 770x520 px each: 20 cover the scales 2-11
        k = int(rng.integers(2, 12))
        big = np.kron(img.astype(np.float32) / 255, np.ones((k, k), np.float32))
        page = (int(big.shape[0] * 2.5), int(big.shape[1] * 1.7))
        at = (
            int(rng.integers(0, page[0] - big.shape[0])),
            int(rng.integers(0, page[1] - big.shape[1])),
        )
        x = preprocess_digit(on_paper(big, page, at, dark=True))
        cy, cx = centre_of_mass(x)
        assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
        r0, r1, c0, c1 = ink_box(x, 0.0)
        assert max(r1 - r0, c1 - c0) + 1 in (20, 21)  # the longer side fills the 20 px box
        assert min(r0, c0) >= 0 and max(r1, c1) <= 27


def test_an_mnist_digit_is_nearly_unchanged(mnist_test: tuple) -> None:
    """MNIST was made this way, so preprocessing an MNIST digit should give it back."""
    X, _ = mnist_test
    diffs = [np.abs(preprocess_digit(x.astype(np.float32) / 255) - x / 255).mean() for x in X[:100]]
    assert np.median(diffs) < 0.01 and np.mean(diffs) < 0.02


def test_aspect_ratio_is_kept_and_grey_levels_survive() -> None:
    bar = np.ones((300, 60), np.float32)  # 5:1, a "1"
    x = preprocess_digit(on_paper(bar, (800, 800), (100, 500), dark=True))
    r0, r1, c0, c1 = ink_box(x, 0.5)
    assert r1 - r0 + 1 == 20 and 3 <= c1 - c0 + 1 <= 5
    zero = ring(500, 120)  # a bold "0": its anti-aliased rims must be grey, not black/white
    y = preprocess_digit(on_paper(zero, (600, 600), (50, 50), dark=True))
    assert ((y > 0.1) & (y < 0.9)).sum() >= 8


def test_photo_noise_and_dust_are_not_ink() -> None:
    rng = np.random.default_rng(0)
    clean = on_paper(plus(200, 30), (900, 700), (500, 100), dark=True) * 0.7 + 0.2  # grey paper
    noisy = np.clip(clean + rng.normal(0, 0.03, clean.shape), 0, 1).astype(np.float32)
    noisy[20:23, 650:653] = 0.0  # a speck of dust far from the digit
    a, b = preprocess_digit(clean), preprocess_digit(noisy)
    assert np.abs(np.subtract(ink_box(a, 0.2), ink_box(b, 0.2))).max() <= 1
    assert abs(b.sum() - a.sum()) < 0.1 * a.sum()  # the same amount of ink, no haze
    near = ndimage.binary_dilation(a > 0, iterations=1)  # a 1 px shift is allowed
    assert (b[~near] > 0.1).sum() <= 3  # no haze or dust on the background (Lanczos rims aside)


def test_what_runs_across_the_frame_is_not_the_digit(mnist_test: tuple) -> None:
    """A table edge, a shadow and a notebook's margin line enter the photo from its sides; the
    digit lies inside. (A review's photos: 4, 12 and 13 right of 20 before, 20 of 20 after.)"""
    X, _ = mnist_test
    big = np.kron(X[3].astype(np.float32) / 255, np.ones((12, 12), np.float32))
    page = on_paper(big, (900, 700), (300, 220), dark=True) * 0.8 + 0.15  # grey-white paper
    framed = page.copy()
    framed[:, 90:93] -= 0.35  # a margin line from top to bottom
    framed[:70] = 0.2  # a dark table along the top edge
    rows, cols = np.mgrid[:900, :700]
    framed[(rows > 600) & (cols > 620 - (rows - 600) // 4)] *= 0.5  # a shadow in the corner
    np.testing.assert_allclose(preprocess_digit(framed), preprocess_digit(page), atol=0.02)
    # Alone, a stroke from edge to edge is the digit: a "1" drawn across the whole pad.
    one = on_paper(np.ones((280, 24), np.float32), (280, 280), (0, 128), dark=True)
    r0, r1, c0, c1 = ink_box(preprocess_digit(one), 0.5)
    assert r1 - r0 + 1 == 20 and c1 - c0 + 1 <= 5


def ruled_page(digit: np.ndarray | None, degrees: float, lines: bool = True) -> np.ndarray:
    """A 1100x900 notebook page: 3 px grey rules every 45 px, a dark digit, turned by ``degrees``."""
    page = np.full((1100, 900), 0.92, np.float32)
    if lines:
        for y in range(13, 1100, 45):
            page[y : y + 3] = 0.45
    if digit is not None:
        big = np.kron(digit.astype(np.float32) / 255, np.ones((10, 10), np.float32))
        page[400:680, 300:580] = np.minimum(page[400:680, 300:580], 1 - 0.9 * big)
    return ndimage.rotate(page, degrees, reshape=False, order=1, mode="nearest")


@pytest.mark.parametrize(("degrees", "i"), [(0.0, 0), (0.7, 1), (2.5, 2), (-6.0, 3)])
def test_the_rules_of_lined_paper_are_not_ink(mnist_test: tuple, degrees: float, i: int) -> None:
    """Rules that cross the digit joined it (a review's photos: 2 of 20 read right, now 20). One
    digit a tilt, another each time: a 1100x900 page takes a quarter of a second or more."""
    X, _ = mnist_test
    ruled, plain = (preprocess_digit(ruled_page(X[i], degrees, on)) for on in (True, False))
    assert np.abs(ruled - plain).mean() < 0.03
    with pytest.raises(NoInkError, match="only the lines of ruled paper"):
        preprocess_digit(ruled_page(None, degrees))


def test_one_long_thin_stroke_is_not_a_rule() -> None:
    """The bar of a "7" drawn with a fine pen across the page is one line, not ruled paper."""
    seven = np.zeros((600, 600), np.float32)
    seven[100:103, 40:560] = 1  # the bar, 87% of the width
    for t in range(400):
        seven[103 + t, 557 - t : 560 - t] = 1  # the stem
    x = preprocess_digit(1.0 - seven)
    r0, _, _, _ = ink_box(x, 0.3)
    assert (x[r0 : r0 + 2] > 0.3).any(axis=0).sum() >= 15  # the bar is there, 20 px wide


def test_thin_pen_strokes_are_thickened_to_mnist_width(mnist_test: tuple) -> None:
    page = Image.new("L", (2000, 1500), 250)
    ImageDraw.Draw(page).line([(900, 300), (910, 1100)], fill=20, width=5)  # a "1", 5 px wide
    x = preprocess_digit(np.asarray(page, np.float32) / 255)
    X, y = mnist_test
    ones = X[y == 1].astype(np.float32) / 255
    typical = np.median((ones > 0.5).sum(axis=(1, 2)))
    assert x.max() > 0.9
    assert 0.5 * typical <= (x > 0.5).sum() <= 2 * typical


def test_blank_images_have_no_ink() -> None:
    with pytest.raises(NoInkError, match=r"blank\.png: no ink"):
        preprocess_digit(np.full((50, 80), 0.93, np.float32), name="blank.png")
    rng = np.random.default_rng(0)
    with pytest.raises(NoInkError):
        preprocess_digit(np.clip(0.9 + rng.normal(0, 0.01, (300, 300)), 0, 1).astype(np.float32))


def pen_dot(size: int, diameter: float) -> np.ndarray:
    """A tap with a round pen: a dark anti-aliased disc in the middle of a white size x size page."""
    im = Image.new("L", (4 * size, 4 * size), 255)  # drawn at 4x, box-filtered down: grey edges
    c, r = 2 * size, 2 * diameter
    ImageDraw.Draw(im).ellipse((c - r, c - r, c + r, c + r), fill=17)
    return np.asarray(im.resize((size, size), Image.Resampling.BOX), np.float32) / 255


def one_pixel(size: int) -> np.ndarray:
    page = np.ones((size, size), np.float32)
    page[size // 2, size // 3] = 0.0
    return page


DOT = "the ink is only a dot, not a digit"
BLANK = "no ink found"  # under 0.1% of the page: the contrast stretch already sees only paper


@pytest.mark.parametrize(
    ("page", "why"),
    [
        (one_pixel(50), DOT),
        (pen_dot(50, 1), DOT),
        (pen_dot(280, 5), BLANK),
        (pen_dot(280, 20), DOT),
        (pen_dot(280, 24), DOT),  # a tap with the web page's pen
        (pen_dot(1000, 300), DOT),
        (1.0 - ring(60, 30), DOT),  # a disc that fills the image
    ],
    ids=["1px", "1px-aa", "5px", "20px", "page-pen-tap", "300px", "disc-fills-the-image"],
)
def test_a_dot_is_not_a_digit(page: np.ndarray, why: str) -> None:
    """Scaled to the 20x20 box a dot would become a disc, which MNIST models call "8"."""
    with pytest.raises(NoInkError, match=rf"^dot\.png: {why}"):
        preprocess_digit(page, name="dot.png")


@pytest.mark.parametrize(
    ("size", "length", "width", "degrees"),
    [(50, 6, 1, 90), (50, 8, 1, 45), (50, 12, 2, 60), (100, 20, 2, 45), (280, 72, 24, 90)],
)
def test_short_ones_are_digits(size: int, length: int, width: int, degrees: int) -> None:
    """Anti-aliased pen lines are long for their width: from a 6 px "1" one pixel wide to a short
    "1" drawn with the web page's 24 px pen."""
    im = Image.new("L", (4 * size, 4 * size), 255)
    a, c, h = np.radians(degrees), 2 * size, 2 * length
    ends = [(c - h * np.cos(a), c - h * np.sin(a)), (c + h * np.cos(a), c + h * np.sin(a))]
    ImageDraw.Draw(im).line(ends, fill=20, width=4 * width)
    x = preprocess_digit(
        np.asarray(im.resize((size, size), Image.Resampling.BOX), np.float32) / 255
    )
    assert x.max() > 0.9


def length_in_strokes(X: np.ndarray) -> np.ndarray:
    """Each 28x28 digit's longer ink side over its mean stroke width (2 * area / boundary): the
    measure preprocessing tells a dot by, taken on the digits as they are."""
    ink = X > 127
    cross = ndimage.generate_binary_structure(2, 1)[None]  # each image on its own
    edge = ink & ~ndimage.binary_erosion(ink, structure=cross)
    width = 2 * ink.sum(axis=(1, 2)) / np.maximum(edge.sum(axis=(1, 2)), 1)

    def extent(axis: int) -> np.ndarray:  # rows (2) or columns (1) from the first ink to the last
        m = np.asarray(ink.any(axis=axis))
        return m.shape[1] - m[:, ::-1].argmax(axis=1) - m.argmax(axis=1)

    return np.maximum(extent(2), extent(1)) / width


@pytest.mark.parametrize(
    "n",
    [pytest.param(200, id="the-200-nearest-a-dot"), pytest.param(10_000, marks=pytest.mark.slow)],
)
def test_no_mnist_test_digit_is_taken_for_a_dot(n: int) -> None:
    """All 10,000, as they are: the boldest (blobby 6s and 8s) are 2.4 stroke widths long. The
    fast tier takes the 200 shortest in stroke widths, where the two a stricter threshold would
    refuse are ranked first."""
    X = load_bundled_mnist().X_test
    assert len(X) == 10_000
    for img in X[np.argsort(length_in_strokes(X), kind="stable")[:n]]:
        preprocess_digit(img.astype(np.float32) / 255)


def _encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _drawn(mode: str, paper: object, ink: object) -> Image.Image:
    im = Image.new(mode, (120, 90), paper)  # type: ignore[arg-type]
    ImageDraw.Draw(im).ellipse((30, 10, 70, 80), outline=ink, width=9)  # type: ignore[arg-type]
    return im


@pytest.mark.parametrize(
    ("mode", "paper", "ink", "fmt"),
    [
        ("RGB", (255, 255, 255), (0, 0, 0), "PNG"),
        ("RGB", (255, 255, 255), (0, 0, 0), "JPEG"),
        ("RGB", (255, 255, 255), (0, 0, 0), "BMP"),
        ("L", 255, 0, "PNG"),
        ("RGBA", (0, 0, 0, 0), (0, 0, 0, 255), "PNG"),  # transparent background: paper is white
        ("LA", (0, 0), (0, 255), "PNG"),
        ("I;16", 65535, 0, "PNG"),
    ],
)
def test_every_mode_and_format_gives_the_same_input(
    mode: str, paper: object, ink: object, fmt: str
) -> None:
    reference = preprocess_digit(load_image(_encode(_drawn("L", 255, 0), "PNG")))
    x = preprocess_digit(load_image(_encode(_drawn(mode, paper, ink), fmt)))
    assert np.abs(x - reference).mean() < (0.06 if fmt == "JPEG" else 0.03)  # JPEG is lossy


def test_unreadable_files_get_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ImageError, match=r"missing.png: cannot open"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    with pytest.raises(ImageError, match=r"bad.png: cannot read image"):
        load_image(bad)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_encode(_drawn("L", 255, 0), "PNG")[:200])
    with pytest.raises(ImageError, match=r"cut.png: cannot read image"):
        load_image(truncated)
    monkeypatch.setattr("handnet.data.photo.MAX_PIXELS", 100)
    with pytest.raises(ImageError, match="too large"):
        load_image(_encode(_drawn("L", 255, 0), "PNG"))
    with pytest.raises(ImageError, match="2-D"):
        preprocess_digit(np.zeros((3, 4, 5), np.float32))


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48),
        elements=st.floats(0, 1, width=32),
    )
)
def test_any_image_gives_a_valid_input_or_a_no_ink_error(gray: np.ndarray) -> None:
    try:
        x = preprocess_digit(gray)
    except NoInkError:
        return
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1 and x.max() > 0


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_an_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        preprocess_digit(load_image(b"\x89PNG\r\n\x1a\n" + data))
