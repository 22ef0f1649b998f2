"""Numbers in photos: each digit found (the light evened out, touching digits cut apart, broken
ones joined), read left to right; a blank page under the same light has no digit. The pages are
made from MNIST *test* digits (`handnet.images.synthetic`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main as handnet_cli
from PIL import Image

from handnet.data.registry import load_bundled_mnist
from handnet.images.numbers import MIN_INK, flatten_light, read_number
from handnet.images.synthetic import Page, blank_page, number_page, photograph, write_number
from handnet.train.classifier import Classifier
from handnet.train.modelfile import load_model


@pytest.fixture(scope="module")
def clf(mnist_model: Path) -> Classifier:
    return load_model(mnist_model)


@pytest.fixture(scope="module")
def digits(clf: Classifier) -> dict[int, np.ndarray]:
    """One MNIST test digit of each class that the model reads right, sure of it."""
    s = load_bundled_mnist()
    proba = clf.predict_proba(s.X_test[:300])
    sure = (proba.argmax(axis=1) == s.y_test[:300]) & (proba.max(axis=1) > 0.99)
    return {c: s.X_test[:300][sure & (s.y_test[:300] == c)][0] for c in range(10)}


def page_of(digits: dict[int, np.ndarray], number: str, gap: float, seed: int = 0) -> Page:
    """``number`` written with ``gap`` (in digit heights) between neighbours, photographed."""
    rng = np.random.default_rng(seed)
    glyphs = np.stack([digits[int(c)] for c in number])
    ink, boxes = write_number(glyphs, 60, rng, gaps=(gap, gap), drops=(0.0, 0.0))
    image, (top, left) = photograph(ink, rng)
    moved = tuple((x0 + left, y0 + top, x1 + left, y1 + top) for x0, y0, x1, y1 in boxes)
    return Page(image, tuple(int(c) for c in number), moved)


def overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def test_a_number_is_read_left_to_right_with_a_box_and_a_confidence_per_digit(
    clf: Classifier, digits: dict[int, np.ndarray]
) -> None:
    page = page_of(digits, "2024", gap=0.25)
    reading = read_number(clf, page.image)
    assert reading.number == "2024"
    for d, truth in zip(reading.digits, page.boxes):
        assert overlap(d.box, truth) > 0.6
        assert 0.5 < d.confidence <= 1 and d.input.shape == (28, 28)


@pytest.mark.parametrize("number", ["17", "40", "93", "586"])
def test_touching_digits_are_cut_apart(
    clf: Classifier, digits: dict[int, np.ndarray], number: str
) -> None:
    page = page_of(digits, number, gap=-0.06)
    assert read_number(clf, page.image).number == number


def test_the_pieces_of_a_broken_digit_are_one_digit(
    clf: Classifier, digits: dict[int, np.ndarray]
) -> None:
    """A 7 whose stem came off its bar (two rows of paper between them) and a 4 open at the
    top are each one digit, not two."""
    seven, four = digits[7].copy(), digits[4].copy()
    rows = np.flatnonzero(seven.max(axis=1) > 100)
    seven[rows[0] + 5 : rows[0] + 7] = 0
    assert clf.predict(seven[None]) == ["7"]
    broken = {**digits, 7: seven, 4: four}
    assert read_number(clf, page_of(broken, "747", gap=0.3).image).number == "747"


def test_blank_pages_under_lighting_gradients_shadows_and_texture_have_no_digit(
    clf: Classifier,
) -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        page = blank_page(rng)
        assert float(flatten_light(page.image / 255).max()) < 2 * MIN_INK  # the light is even
        assert read_number(clf, page.image).number is None


def test_light_ink_on_dark_paper_reads_the_same(
    clf: Classifier, digits: dict[int, np.ndarray]
) -> None:
    """Chalk on a board: the page inverted and darkened, so its paper is below mid-grey."""
    page = page_of(digits, "3905", gap=0.25)
    board = ((255 - page.image) * 0.6).astype(np.uint8)
    assert np.median(board) < 0.4 * 255
    assert read_number(clf, board).number == "3905"


def test_most_numbers_of_mnist_test_digits_are_read(clf: Classifier) -> None:
    """30 pages of 2-6 digits, touching neighbours included, slightly rotated, with the 2-epoch
    test model: a floor far below bench/read_numbers.py's figures for the default model, so that
    a change that breaks the reader fails here; and each digit's box on the digit written."""
    s = load_bundled_mnist()
    rng = np.random.default_rng(3)
    right, overlaps = 0, []
    for _ in range(30):
        pick = rng.integers(0, 10_000, int(rng.integers(2, 7)))
        page = number_page(s.X_test[pick], s.y_test[pick], rng)
        reading = read_number(clf, page.image)
        if reading.number == page.number:
            right += 1
            overlaps += [overlap(d.box, truth) for d, truth in zip(reading.digits, page.boxes)]
    assert right >= 18  # 26 when written
    assert min(overlaps) > 0.3 and np.median(overlaps) > 0.8  # each box where its digit is


# --- handnet predict ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(digits: dict[int, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("numbers")
    Image.fromarray(page_of(digits, "2024", gap=0.25).image).save(d / "year.png")
    Image.fromarray(blank_page(np.random.default_rng(5)).image).save(d / "blank.jpg")
    return d


def test_cli_prints_the_number_and_each_digits_confidence(mnist_model: Path, photos: Path) -> None:
    r = handnet_cli("predict", mnist_model, photos / "year.png")
    assert r.returncode == 0, r.stderr
    number, shown = r.stdout.split(": ", 1)[1].split("  ")
    assert number == "2024"
    assert [part.split()[0] for part in shown.strip("()\n").split(", ")] == list("2024")


def test_cli_json_has_the_number_and_each_digits_label_confidence_and_box(
    mnist_model: Path, photos: Path
) -> None:
    r = handnet_cli("predict", mnist_model, photos / "year.png", photos / "blank.jpg", "--json")
    assert r.returncode == 3  # every file read, and one page without a digit
    year, blank = json.loads(r.stdout)
    assert year["number"] == "2024" and "label" not in year  # several digits: no single label
    assert [d["label"] for d in year["digits"]] == list("2024")
    assert all(0 < d["confidence"] <= 1 and len(d["box"]) == 4 for d in year["digits"])
    lefts = [d["box"][0] for d in year["digits"]]
    assert lefts == sorted(lefts)
    assert blank == {"file": str(photos / "blank.jpg"), "number": None, "digits": []}
    r = handnet_cli("predict", mnist_model, photos / "blank.jpg")
    assert (r.returncode, r.stdout) == (3, f"{photos / 'blank.jpg'}: no digit found\n")
