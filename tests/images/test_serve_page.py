"""The draw page as a person meets it (issue 28), in headless Chromium: probabilities that tell
the answers apart, a layout that uses a wide screen and keeps everything above the fold, a hint
where nothing is drawn yet, and a tap answered by the page itself. The server and the drawing are
those of test_serve_browser.py; the browser is tests/conftest.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handnet.cli.common import percent
from images.test_serve_browser import draw, open_page, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_the_page_shows_probabilities_as_handnet_predict_does(
    server: str,  # noqa: F811
    browser: object,
) -> None:
    """app.js's percent() is the CLI's rule: the same text for every probability."""
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(server)
    values = [0.0, 1.0, 0.5, 0.99977, 1.8e-4, 0.00999, 0.995, 0.99995]
    values += np.logspace(-7, 0, 300).tolist() + (1 - np.logspace(-7, -1, 200)).tolist()
    assert page.evaluate("(values) => values.map(percent)", values) == list(map(percent, values))
    page.close()


CARDS = (".draw", ".answer", ".sees", ".units")
SEVEN = [[(0.25, 0.22), (0.72, 0.22), (0.45, 0.85)]]


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1920, 1080)])
def test_a_wide_screen_shows_everything_above_the_fold(
    server: str,  # noqa: F811
    browser: Any,
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    page, problems = open_page(browser, server, width, height)
    draw(page, SEVEN)
    page.wait_for_function("document.getElementById('label').textContent === '7'", timeout=15_000)
    page.wait_for_timeout(400)
    page.screenshot(path=str(tmp_path / f"{width}x{height}.png"))
    boxes = {card: page.locator(card).bounding_box() for card in CARDS}
    for card, box in boxes.items():
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, card  # above the fold
    # three columns that fill the width, not a column pinned at the left
    assert len({round(box["x"]) for box in boxes.values()}) == 3
    assert max(box["x"] + box["width"] for box in boxes.values()) >= width - 40
    pad = page.locator("#pad").bounding_box()
    assert pad["width"] >= (420 if width == 1280 else 600)  # the pad grows with the screen
    assert problems == []
    page.close()


def test_before_anything_is_drawn_a_hint_stands_in_for_the_input_and_the_units(
    server: str,  # noqa: F811
    browser: Any,
) -> None:
    page, problems = open_page(browser, server, 1280, 800)
    for empty, filled in (("#seen-empty", "#seen"), ("#units-empty", "#units")):
        assert page.locator(empty).is_visible() and not page.locator(filled).is_visible()
        assert page.text_content(empty).startswith("Draw a digit")
    draw(page, SEVEN)
    page.wait_for_function("document.getElementById('label').textContent === '7'", timeout=15_000)
    assert page.locator("#seen").is_visible() and page.locator("#units canvas").count() == 8
    assert not page.locator("#seen-empty").is_visible()
    assert not page.locator("#units-empty").is_visible()
    page.click("#clear")  # empty again
    assert page.locator("#seen-empty").is_visible() and not page.locator("#seen").is_visible()
    assert problems == []
    page.close()


def test_a_tap_is_answered_by_the_page_without_asking_the_server(
    server: str,  # noqa: F811
    browser: Any,
) -> None:
    """A tap leaves a dot that the server would refuse (422, "only a dot"): the page says "draw a
    bit more" itself, and the browser's console stays clean."""
    page, problems = open_page(browser, server, 375, 667)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/predict" in r.url else None)
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    assert page.text_content("#confidence") == "draw a bit more"
    assert page.text_content("#label") == "?" and asked == [] and problems == []
    draw(page, SEVEN)  # a digit after the tap is asked about as usual
    page.wait_for_function("document.getElementById('label').textContent === '7'", timeout=15_000)
    assert asked and problems == []
    page.close()
