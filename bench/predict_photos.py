"""How well `handnet predict` does on photo-like images of MNIST test digits.

Each digit is enlarged 2-30x (bicubic), printed as dark ink on grey-to-white paper at a random
place on a page 1.3-3x its size, with Gaussian sensor noise, a slight blur, and saved as PNG or
JPEG. The script prints the model's accuracy on the original 28x28 digits, on the photos, on the
photos shrunk naively to 28x28, and how often the original and photo predictions agree.

    OPENBLAS_NUM_THREADS=1 python bench/predict_photos.py MODEL [--n 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image, ImageFilter

from handnet.data.registry import load_bundled_mnist
from handnet.images.predict import predict_images
from handnet.train.modelfile import load_model


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    k = int(rng.integers(2, 31))
    side = 28 * k
    mask = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    w, h = int(side * rng.uniform(1.3, 3)), int(side * rng.uniform(1.3, 3))
    page = Image.new("L", (w, h), int(rng.integers(170, 251)))
    ink = Image.new("L", (side, side), int(rng.integers(10, 81)))
    page.paste(ink, (int(rng.integers(0, w - side)), int(rng.integers(0, h - side))), mask)
    page = page.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5))))
    noisy = np.asarray(page, np.float32) + rng.normal(0, rng.uniform(0, 10), (h, w))
    im = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG" if rng.random() < 0.5 else "PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    clf = load_model(args.model)
    s = load_bundled_mnist()
    X, y = s.X_test[: args.n], s.y_test[: args.n]
    rng = np.random.default_rng(args.seed)
    photos = [photo(x, rng) for x in X]
    t0 = time.perf_counter()
    preds = np.array([int(p.label) for p in predict_images(clf, photos)])
    dt = time.perf_counter() - t0
    orig = np.array([int(c) for c in clf.predict(X)])
    # What people often do first: shrink the whole page to 28x28 and invert it.
    naive = np.stack(
        [255 - np.asarray(Image.open(io.BytesIO(b)).convert("L").resize((28, 28))) for b in photos]
    )
    naive_acc = np.mean(np.array([int(c) for c in clf.predict(naive)]) == y)
    print(f"model {args.model}")
    print(f"{args.n} MNIST test digits as photos (2-30x, noisy grey paper, PNG/JPEG)")
    print(
        f"accuracy on the originals {np.mean(orig == y):.2%}, on the photos {np.mean(preds == y):.2%}"
    )
    print(f"naive (whole page resized to 28x28 and inverted): {naive_acc:.2%}")
    print(
        f"same answer on both {np.mean(preds == orig):.2%}; {dt / args.n * 1000:.1f} ms per photo"
    )


if __name__ == "__main__":
    main()
