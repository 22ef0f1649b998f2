"""The draw page as a person meets it (issue 28), in headless Chromium: probabilities that tell
the answers apart. The server and the browser are those of test_serve_browser.py."""

from __future__ import annotations

import numpy as np
import pytest

from handnet.cli.common import percent
from images.test_serve_browser import browser, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_the_page_shows_probabilities_as_handnet_predict_does(
    server: str,  # noqa: F811
    browser: object,  # noqa: F811
) -> None:
    """app.js's percent() is the CLI's rule: the same text for every probability."""
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(server)
    values = [0.0, 1.0, 0.5, 0.99977, 1.8e-4, 0.00999, 0.995, 0.99995]
    values += np.logspace(-7, 0, 300).tolist() + (1 - np.logspace(-7, -1, 200)).tolist()
    assert page.evaluate("(values) => values.map(percent)", values) == list(map(percent, values))
    page.close()
