"""A few epochs of ``fit`` at one shape, batch 128, to run under a profiler.

    python -m pyinstrument bench/profile_fit.py 784-800-10 3

Prints the seconds of each epoch; the profiler prints where they went.
"""

from __future__ import annotations

import sys

import numpy as np

from handnet.data import load_dataset
from handnet.train import Rngs, TrainConfig, TrainState, fit


def main() -> None:
    shape = sys.argv[1] if len(sys.argv) > 1 else "784-800-10"
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    sizes = [int(s) for s in shape.split("-")]
    data = load_dataset("mnist", rng=np.random.default_rng(0))
    cfg = TrainConfig(hidden_sizes=tuple(sizes[1:-1]), epochs=epochs, batch_size=128)
    state = TrainState.fresh(cfg, sizes[0], sizes[-1], Rngs.from_seed(0))
    fit(state, data, cfg, progress=False)
    print("s/epoch:", [round(r["seconds"], 3) for r in state.history])


if __name__ == "__main__":
    main()
