"""Screenshots of the built site in headless Chromium, to look at before calling the docs done.

    .venv/bin/mkdocs build --strict && .venv/bin/python docs/scripts/screenshots.py

Serves site/ on a free local port, opens each page below in Debian's Chromium through Playwright
(no browser is downloaded), and writes one PNG per page, 1280 px wide and at most 2,400 px tall,
to docs/assets/screenshots/ (or --out). A page given with an anchor is shot from that heading on.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "home": "",
    "backprop": "explanation/backprop/",
    "backprop-check": "explanation/backprop/#the-check-finite-differences",
    "api-nn": "reference/api/nn/",
}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # one line per request: no
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "assets" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(Quiet, directory=str(args.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for name, path in PAGES.items():
                page.goto(base + path, wait_until="networkidle")
                top = 0
                if "#" in path:
                    top = page.evaluate(
                        "id => document.getElementById(id).getBoundingClientRect().top + scrollY - 60",
                        path.split("#", 1)[1],
                    )
                height = page.evaluate("document.documentElement.scrollHeight")
                clip = {"x": 0, "y": top, "width": 1280, "height": min(2400, height - top)}
                file = args.out / f"{name}.png"
                page.screenshot(path=file, full_page=True, clip=clip)
                print(file)
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
