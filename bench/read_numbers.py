"""How well `handnet predict` reads numbers in photos, and how often it reads one on a blank page.

Pages come from `handnet.images.synthetic`: numbers of 2 to 6 MNIST *test* digits written side by
side (some touching) on paper under a lighting gradient, often a shadow, with texture, blur,
noise and a slight rotation; and blank pages under the same light. The script prints the digit
accuracy (each written digit read right in its place, places aligned by edit distance so that a
missed or extra digit costs only itself), the whole-number accuracy by length, and the blank pages
read as a number.

    OPENBLAS_NUM_THREADS=1 python bench/read_numbers.py MODEL [--pages 1000] [--blank 200] [--seed 0]
        [--digits 5000:10000] [--length 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from handnet.data.registry import load_bundled_mnist
from handnet.images.numbers import read_number
from handnet.images.synthetic import blank_page, number_page
from handnet.train.modelfile import load_model


def aligned_matches(read: str, written: str) -> int:
    """The most characters of ``written`` read right in order: an edit-distance alignment."""
    m, n = len(read), len(written)
    best = np.zeros((m + 1, n + 1), np.int64)
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            hit = best[i - 1, j - 1] + (read[i - 1] == written[j - 1])
            best[i, j] = max(hit, best[i - 1, j], best[i, j - 1])
    return int(best[m, n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument(
        "--pages", type=int, default=1000, help="numbers, 2 to 6 digits (default: 1000)"
    )
    ap.add_argument("--blank", type=int, default=200, help="blank pages (default: 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--digits",
        default="0:10000",
        help="the MNIST test digits to draw from, as START:STOP (default: all 10,000)",
    )
    ap.add_argument(
        "--length",
        type=int,
        choices=range(2, 7),
        metavar="N",
        help="numbers of exactly N digits, 2 to 6 (default: a length drawn for each page)",
    )
    ap.add_argument("--show", type=int, default=0, help="print this many misread numbers")
    args = ap.parse_args()
    clf = load_model(args.model)
    s = load_bundled_mnist()
    start, stop = (int(v) for v in args.digits.split(":"))
    rng = np.random.default_rng(args.seed)
    lengths = np.zeros(7, np.int64)
    right = np.zeros(7, np.int64)
    digits_right = digits_total = 0
    misread = []
    t0 = time.perf_counter()
    for _ in range(args.pages):
        n = args.length or int(rng.integers(2, 7))
        pick = rng.integers(start, stop, n)
        page = number_page(s.X_test[pick], s.y_test[pick], rng)
        read = read_number(clf, page.image).number or ""
        lengths[n] += 1
        right[n] += read == page.number
        digits_right += aligned_matches(read, page.number)
        digits_total += n
        if read != page.number:
            misread.append((page.number, read))
    t_numbers = time.perf_counter() - t0
    t0 = time.perf_counter()
    blanks_read = [
        r for r in (read_number(clf, blank_page(rng).image).number for _ in range(args.blank)) if r
    ]
    t_blank = time.perf_counter() - t0
    print(f"model {args.model}")
    print(
        f"{args.pages} numbers of {args.length or '2-6'} MNIST test digits [{args.digits}] (seed {args.seed}), "
        f"{t_numbers / max(args.pages, 1) * 1000:.0f} ms a page"
    )
    print(
        f"digit accuracy {digits_right / max(digits_total, 1):.2%} ({digits_right} of {digits_total})"
    )
    print(
        f"whole numbers  {right.sum() / max(lengths.sum(), 1):.2%} ({right.sum()} of {lengths.sum()})"
    )
    for n in np.flatnonzero(lengths):
        print(f"  {n} digits     {right[n] / max(lengths[n], 1):.2%} ({right[n]} of {lengths[n]})")
    print(
        f"blank pages read as a number: {len(blanks_read)} of {args.blank}"
        + (f" ({', '.join(blanks_read[:10])})" if blanks_read else "")
        + f", {t_blank / max(args.blank, 1) * 1000:.0f} ms a page"
    )
    for written, read in misread[: args.show]:
        print(f"  wrote {written:>6}  read {read or '(nothing)'}")


if __name__ == "__main__":
    main()
