"""Compose the README's picture from a real run: the plots handnet itself drew, side by side.

    .venv/bin/handnet train --out /tmp/readme-run          # the default model (make train)
    .venv/bin/python docs/scripts/readme_figure.py /tmp/readme-run/model-*/

Left, the run's ``weights_first.png`` (the first layer's learned weights, one 28x28 tile per
hidden unit); right, its ``loss.png`` above its ``accuracy.png``. All three are drawn by
handnet.report (``handnet train`` writes them, ``handnet plot RUN`` draws them again); this script
only scales and places them. Writes docs/assets/readme-run.png unless told another path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

GAP = 12  # pixels of white between the panels


def compose(run_dir: Path) -> Image.Image:
    weights, loss, accuracy = (
        Image.open(run_dir / f"{name}.png").convert("RGB")
        for name in ("weights_first", "loss", "accuracy")
    )
    height = weights.height
    half = (height - GAP) // 2  # the two curves share the weights' height
    curves = [
        im.resize((round(im.width * half / im.height), half), Image.LANCZOS)
        for im in (loss, accuracy)
    ]
    width = weights.width + GAP + max(c.width for c in curves)
    out = Image.new("RGB", (width, height), "white")
    out.paste(weights, (0, 0))
    out.paste(curves[0], (weights.width + GAP, 0))
    out.paste(curves[1], (weights.width + GAP, half + GAP))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder with handnet's plots in it")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "assets" / "readme-run.png"
    )
    args = parser.parse_args()
    compose(args.run_dir).save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
