"""End to end: `handnet serve` as a real process, Debian's headless Chromium driven by Playwright,
strokes drawn with the mouse, and the prediction read off the page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(mnist_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "handnet.cli", "serve", str(mnist_model), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/model", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"handnet serve did not start (exit {proc.poll()}); see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def open_page(chromium: Any, url: str, width: int, height: int) -> tuple[Any, list[str]]:
    """A page of ``width`` x ``height``, model loaded, and the list its console errors and
    failed requests go to."""
    page = chromium.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function(
        "document.getElementById('model-info').textContent.includes('parameters')"
    )
    return page, problems


def on_pad(page: object, at: float) -> Callable[[float, float], tuple[float, float]]:
    """Where a point of a digit lands on the page: the digit is drawn in a square as tall as the
    pad (which is twice as wide, for a number), centred at ``at`` of the pad's width; (x, y) are
    fractions of that square, so a digit keeps its shape."""
    box = page.locator("#pad").bounding_box()  # type: ignore[attr-defined]
    side = box["height"]
    left = box["x"] + at * box["width"] - side / 2

    def where(x: float, y: float) -> tuple[float, float]:
        return left + x * side, box["y"] + y * side

    return where


def draw(page: object, strokes: list[list[tuple[float, float]]], at: float = 0.5) -> None:
    """Draw a digit's strokes on the pad with the mouse, in the square of `on_pad`."""
    where = on_pad(page, at)
    for stroke in strokes:
        page.mouse.move(*where(*stroke[0]))  # type: ignore[attr-defined]
        page.mouse.down()  # type: ignore[attr-defined]
        for x, y in stroke[1:]:
            page.mouse.move(*where(x, y), steps=12)  # type: ignore[attr-defined]
        page.mouse.up()  # type: ignore[attr-defined]


def test_draw_a_seven_and_watch_the_network_answer(
    server: str, browser: object, tmp_path: Path
) -> None:
    page, problems = open_page(browser, server, 1100, 860)
    assert page.text_content("#label") == "?"

    draw(page, SEVEN, at=0.4)  # a "7", off-centre is fine
    page.wait_for_function("document.getElementById('label').textContent !== '?'", timeout=15_000)
    page.wait_for_timeout(400)  # the last in-flight request lands, the bars finish growing
    assert page.text_content("#label") == "7"
    assert "% sure" in page.text_content("#confidence")
    assert (
        page.locator(".bar").count() == 10 and page.locator(".bar.win .cls").text_content() == "7"
    )
    assert page.locator("#units canvas").count() == 8
    lit = page.evaluate(
        "Array.from(document.getElementById('seen').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 128).length"
    )
    assert 20 <= lit <= 300  # the 28x28 input shows the digit
    page.screenshot(path=str(tmp_path / "draw-a-seven.png"), full_page=True)

    page.click("#clear")
    assert page.text_content("#label") == "?"
    draw(page, ONE)  # a "1" after clearing
    page.wait_for_function("document.getElementById('label').textContent === '1'", timeout=15_000)
    page.wait_for_timeout(400)  # the bars' height transition
    page.screenshot(path=str(tmp_path / "draw-a-one.png"), full_page=True)
    assert problems == []
    page.close()


ONE = [[(0.5, 0.15), (0.48, 0.88)]]
SEVEN = [[(0.25, 0.22), (0.72, 0.22), (0.45, 0.85)]]
BOXES_INKED = """() => {
  const c = document.getElementById('boxes');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)
    .filter((v, i) => i % 4 === 3 && v > 0).length;
}"""


def test_draw_a_number_and_see_each_digit(server: str, browser: object, tmp_path: Path) -> None:
    """A "1" and a "7" side by side: the label shows "17", each digit gets its input and its frame
    on the pad, the bars say whose they are; Clear leaves nothing of it, and a single digit drawn
    next looks as a single digit does."""
    page, problems = open_page(browser, server, 1280, 800)
    assert page.evaluate(BOXES_INKED) == 0
    draw(page, ONE, at=0.3)
    draw(page, SEVEN, at=0.7)
    page.wait_for_function(
        "document.getElementById('label').textContent.length === 2", timeout=15_000
    )
    page.wait_for_timeout(400)  # the last in-flight request lands, the bars finish growing
    assert page.text_content("#label") == "17"
    assert page.text_content("#confidence").startswith("least sure: ")
    runner = page.text_content("#runner-up")
    assert runner.startswith("each digit: 1 (") and ", 7 (" in runner and "%)" in runner
    assert "least sure" in page.text_content("#bars-note")
    assert page.locator("#seen-digits canvas").count() == 2
    assert page.locator("#seen-digits figcaption b").all_text_contents() == ["1", "7"]
    assert page.locator("#seen-digits").is_visible() and not page.locator("#seen").is_visible()
    assert page.get_attribute("#boxes", "data-count") == "2" and page.evaluate(BOXES_INKED) > 0
    assert page.locator("#units canvas").count() == 0
    assert page.locator("#units-several").is_visible()
    page.screenshot(path=str(tmp_path / "draw-a-number.png"))

    page.keyboard.press("Escape")  # as Clear
    assert page.text_content("#label") == "?" and page.text_content("#runner-up") == ""
    assert page.evaluate(BOXES_INKED) == 0 and page.get_attribute("#boxes", "data-count") == "0"
    assert page.locator("#seen-digits canvas").count() == 0
    assert page.text_content("#bars-note") == "" and not page.locator("#units-several").is_visible()
    assert page.locator("#seen-empty").is_visible()

    draw(page, SEVEN)  # one digit after the number: nothing of the number is left
    page.wait_for_function("document.getElementById('label').textContent === '7'", timeout=15_000)
    page.wait_for_timeout(400)
    assert "% sure" in page.text_content("#confidence") and page.text_content("#bars-note") == ""
    assert page.locator("#seen").is_visible() and not page.locator("#seen-digits").is_visible()
    assert page.locator("#units canvas").count() == 8 and page.evaluate(BOXES_INKED) == 0
    page.click("#clear")
    assert page.text_content("#label") == "?" and page.evaluate(BOXES_INKED) == 0
    assert problems == []
    page.close()


def touch_draw(page: object, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw with a finger: real touch events through the Chrome DevTools Protocol, which the page
    receives as pointer events of type "touch" (what a phone sends). Points as in `draw`."""
    cdp = page.context.new_cdp_session(page)  # type: ignore[attr-defined]
    where = on_pad(page, 0.5)

    def at(x: float, y: float) -> list[dict[str, float]]:
        px, py = where(x, y)
        return [{"x": px, "y": py}]

    for stroke in strokes:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(*stroke[0])})
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
            for t in np.linspace(0, 1, 12)[1:]:
                p = at(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": p})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def phone_page(browser: object, server: str, width: int, height: int) -> tuple[Any, Any]:
    """A touch-screen context of ``width`` x ``height`` CSS pixels and its page, model loaded."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": width, "height": height},
        device_scale_factor=2,
        has_touch=True,
        is_mobile=True,
    )
    page = context.new_page()
    page.goto(server)
    page.wait_for_function(
        "document.getElementById('model-info').textContent.includes('parameters')"
    )
    return context, page


def test_phone_sized_page_draws_with_a_finger(server: str, browser: object, tmp_path: Path) -> None:
    context, page = phone_page(browser, server, 390, 844)
    touch_draw(
        page,
        [[(0.3, 0.2), (0.7, 0.2), (0.7, 0.5), (0.3, 0.5), (0.3, 0.2)], [(0.7, 0.5), (0.7, 0.9)]],
    )
    page.wait_for_function("document.getElementById('label').textContent === '9'", timeout=15_000)
    page.wait_for_timeout(400)
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert page.evaluate("window.scrollY") == 0  # drawing did not scroll the page
    context.close()


def test_a_phone_shows_the_whole_pad_and_the_answer_without_scrolling(
    server: str, browser: object, tmp_path: Path
) -> None:
    """375x667 (an iPhone SE): the prediction must show while drawing, so the pad and the big label
    with its confidence fit on one screen; hidden-unit captions are shown in full, not cut off."""
    context, page = phone_page(browser, server, 375, 667)
    touch_draw(page, SEVEN)
    page.wait_for_function("document.getElementById('label').textContent !== '?'", timeout=15_000)
    page.screenshot(path=str(tmp_path / "phone-se.png"))
    assert page.evaluate("window.scrollY") == 0
    for part in ("#pad", "#label", "#confidence"):
        box = page.locator(part).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 667, part
    # Captions of units with four-digit numbers (a 784-1000-... model) fit their tiles.
    fits = page.evaluate(
        """() => {
        renderUnits([1023, 9999, 7, 4095, 1000, 88, 512, 12].map((unit) =>
          ({unit, score: -0.3512, activation: 0.9, weights: Array(784).fill(0)})), 28);
        return Array.from(document.querySelectorAll(".unit"), (tile) => {
          const text = document.createRange();
          text.selectNodeContents(tile.lastChild);
          const t = text.getBoundingClientRect(), b = tile.getBoundingClientRect();
          return t.left >= b.left - 0.5 && t.right <= b.right + 0.5;
        });
      }"""
    )
    assert fits == [True] * 8
    context.close()
