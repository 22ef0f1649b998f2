"""Where a training step's time goes: ``fit`` at one shape under cProfile, per step.

    python bench/profile_fit.py [784-800-10] [epochs] [--dropout P]

Trains the bundled MNIST for a few epochs (the first, a warm-up, is not profiled) (batch 128, the default recipe without augmentation)
under the standard library's deterministic profiler and prints, for the functions that take the
time, microseconds per training step (their own time, without callees): the layers' forward and
backward passes (which hold the matrix products), the L2 gradient, the momentum update, the batch
gather and the loss. The profiler adds about a microsecond per Python call, so the total is a few
percent above an unprofiled step. It also works under ``python -m pyinstrument`` or py-spy.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
from typing import Any

import numpy as np

from handnet.data import load_dataset
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, fit


def _write_as(out: Any, *args: Any, **kwargs: Any) -> Any:
    """The template of `split_writes`'s wrappers: ``_PLAIN`` and ``_FN`` come from their globals."""
    return _PLAIN(out, _FN, *args, **kwargs)  # type: ignore[name-defined]  # noqa: F821


def split_writes() -> None:
    """Make each ``write(out, fn, ...)`` of handnet.nn show up as its own function, "write[fn]",
    so that the profile tells the matrix products (``write[matmul]``) from the elementwise work
    that goes through the same helper (``write[tanh]``, ``write[multiply]``, ...)."""
    import types

    import handnet.nn.arrays as arrays
    import handnet.nn.layers as layers
    import handnet.nn.losses as losses
    import handnet.nn.optim as optim

    by_fn: dict[str, Any] = {}

    def write(out: Any, fn: str, *args: Any, **kwargs: Any) -> Any:
        if fn not in by_fn:
            name = f"write[{fn}]"
            code = _write_as.__code__.replace(co_name=name, co_qualname=name)
            by_fn[fn] = types.FunctionType(code, {"_PLAIN": arrays.write, "_FN": fn}, name)
        return by_fn[fn](out, *args, **kwargs)

    for module in (layers, losses, optim):
        module.write = write


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("shape", nargs="?", default="784-800-10")
    p.add_argument(
        "epochs", nargs="?", type=int, default=3, help="epochs in all, the first a warm-up (>= 2)"
    )
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--top", type=int, default=12, help="functions to list")
    args = p.parse_args()
    if args.epochs < 2:
        p.error(f"epochs {args.epochs}: the first is a warm-up, so at least 2 leave one to profile")
    sizes = [int(s) for s in args.shape.split("-")]
    data = load_dataset("mnist", rng=np.random.default_rng(0))
    cfg = TrainConfig(
        hidden_sizes=tuple(sizes[1:-1]),
        epochs=args.epochs,
        batch_size=128,
        dropout=args.dropout,
        aug_shift=0.0,
    )
    split_writes()
    state = TrainState.fresh(cfg, sizes[0], sizes[-1], Rngs.from_seed(0))
    fit(state, data, dataclasses.replace(cfg, epochs=1), progress=False)  # warm-up
    before = state.step
    profiler = cProfile.Profile()
    profiler.runcall(fit, state, data, cfg, progress=False)
    steps = state.step - before  # those of the profiled epochs
    stats = pstats.Stats(profiler)
    # Own time per function, except that a "write[fn]" wrapper counts everything it called: the
    # NumPy function, whose time cProfile gives to its Python caller (arrays.write, left out).
    own: dict[str, tuple[float, float]] = {}  # where -> (calls, seconds)
    total = 0.0
    for (path, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        where = f"{path.rsplit('/', 1)[-1]}:{line}({name})" if line else name
        if not (path.endswith("arrays.py") and name == "write"):
            own[where] = (calls, cumtime if name.startswith("write[") else tottime)
    rows = sorted(own.items(), key=lambda kv: -kv[1][1])
    print(f"{args.shape}, batch 128, dropout {args.dropout}: {steps} profiled steps")
    print(f"{'function':<48}{'calls/step':>11}{'us/step':>10}{'share':>8}")
    for where, (calls, t) in rows[: args.top]:
        print(f"{where[:47]:<48}{calls / steps:>11.1f}{t / steps * 1e6:>10.1f}{t / total:>8.0%}")
    print(f"{'all':<48}{'':>11}{total / steps * 1e6:>10.1f}")
    print("s/epoch:", [round(r["seconds"], 3) for r in state.history[1:]])


if __name__ == "__main__":
    main()
