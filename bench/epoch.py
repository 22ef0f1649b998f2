"""handnet's training speed beside PyTorch, scikit-learn and the GEMM lower bound, in one run.

    python bench/epoch.py            # the full run (a few minutes; hold flock /tmp/handnet-cpu.lock)
    python bench/epoch.py --quick    # 784-256-10 and 784-800-10 at batch 128, no time-to-accuracy

Seconds per epoch (55,000 bundled MNIST training images, float32) is the median of ``--epochs``
epochs after one warm-up epoch. Every system runs in its own worker process (so no two thread pools
share one), with the same number of threads, and the workers take turns epoch by epoch, so that
noise from a shared machine falls on all of them alike, with a pause of ``SPIN_GAP`` between turns
(an idle OpenBLAS pool keeps spinning for about 0.1 s, which would otherwise land on the next
system's epoch). The systems:

- handnet: ``fit`` on the default recipe at that shape (tanh, dropout 0.2, L2 1e-4, momentum 0.9);
- torch: the same model, loss, optimizer and schedule in PyTorch (CPU, ``torch.set_num_threads``);
- sklearn: ``MLPClassifier(solver="sgd")``, one ``partial_fit`` per epoch (it has no dropout);
- bound: only the matrix products a step needs (X W forward; X^T dY and dY W^T backward, no dX for
  the first layer) at the same shapes with NumPy's BLAS, times the steps per epoch. Nothing that
  does its math with these GEMMs can be faster.

Then: peak RSS of a ``handnet train`` run, ``evaluate`` on the 10k test images, single-image
predict latency, and the wall time to 98.0% and 98.5% validation accuracy on the ``fast`` recipe
(configs/fast.toml when present, else the default recipe) for handnet and PyTorch with the same
model, init, schedule, batch and epochs. Finally the whole epoch table again in a subprocess with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset, so that both kernels are measured in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from machine import blas_info  # bench/machine.py: this folder is on sys.path

SHAPES = ["784-256-10", "784-800-10", "784-1024-1024-10"]
BATCHES = [64, 128, 512]
SYSTEMS = ["handnet", "torch", "sklearn", "bound"]
TARGETS = (0.980, 0.985)
# OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s here) after a worker's last BLAS call;
# waiting this long between epochs keeps one system's spinning off the next system's epoch.
SPIN_GAP = 0.3
ROOT = Path(__file__).resolve().parent.parent


def threads() -> int:
    value = os.environ.get("OPENBLAS_NUM_THREADS", "")
    return int(value) if value.isdigit() else len(os.sched_getaffinity(0))


def load_data() -> Any:
    from handnet.data import load_dataset

    return load_dataset("mnist", rng=np.random.default_rng(0))


def config(sizes: list[int], batch: int, epochs: int, **over: Any) -> Any:
    from handnet.train.config import TrainConfig

    # aug_shift=0: the peers see plain images, and so does handnet (fit() alone never augments).
    over = {"aug_shift": 0.0, **over}
    return TrainConfig(hidden_sizes=tuple(sizes[1:-1]), batch_size=batch, epochs=epochs, **over)


# --- the systems, each behind the same small interface: setup(sizes, batch), then epoch() -> s ---


class Handnet:
    def __init__(self, data: Any) -> None:
        self.data = data

    def setup(self, sizes: list[int], batch: int, epochs: int) -> None:
        from handnet.train.config import Rngs
        from handnet.train.fit import TrainState

        self.cfg = config(sizes, batch, epochs)
        self.state = TrainState.fresh(self.cfg, sizes[0], sizes[-1], Rngs.from_seed(0))

    def epoch(self) -> float:
        import dataclasses

        from handnet.train.fit import fit

        one_more = dataclasses.replace(self.cfg, epochs=self.state.epoch + 1)
        t = time.perf_counter()
        fit(self.state, _NoVal(self.data), one_more, progress=False)
        return time.perf_counter() - t


class _NoVal:
    """The dataset without its validation split, so an epoch times training only."""

    def __init__(self, data: Any) -> None:
        self.X_train, self.y_train = data.X_train, data.y_train
        self.X_val, self.y_val = data.X_val[:0], data.y_val[:0]


class Bound:
    def __init__(self, data: Any) -> None:
        self.n = len(data.y_train)

    def setup(self, sizes: list[int], batch: int, epochs: int) -> None:
        rng = np.random.default_rng(0)
        self.ops: list[Callable[[], Any]] = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            X = rng.standard_normal((batch, a), dtype=np.float32)
            W = rng.standard_normal((a, b), dtype=np.float32)
            Y = np.empty((batch, b), np.float32)
            dW = np.empty((a, b), np.float32)
            dX = np.empty((batch, a), np.float32)
            self.ops.append(lambda X=X, W=W, Y=Y: np.matmul(X, W, out=Y))
            self.ops.append(lambda X=X, Y=Y, dW=dW: np.matmul(X.T, Y, out=dW))
            if i > 0:
                self.ops.append(lambda Y=Y, W=W, dX=dX: np.matmul(Y, W.T, out=dX))
        self.steps = math.ceil(self.n / batch)

    def epoch(self) -> float:
        """The median time of one step's GEMMs over 60 steps, times the steps per epoch."""
        times = []
        for _ in range(60):
            t = time.perf_counter()
            for op in self.ops:
                op()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * self.steps


class Torch:
    def __init__(self, data: Any) -> None:
        import torch

        torch.set_num_threads(threads())
        self.torch = torch
        self.X = torch.from_numpy(data.X_train)
        self.y = torch.from_numpy(data.y_train)
        self.Xv, self.yv = torch.from_numpy(data.X_val), torch.from_numpy(data.y_val)

    def setup(
        self,
        sizes: list[int],
        batch: int,
        epochs: int,
        init: dict[str, np.ndarray] | None = None,
        recipe: Any = None,
    ) -> None:
        """The model and optimizer; ``recipe`` (a TrainConfig) replaces the default recipe."""
        from handnet.nn.schedules import warmup_cosine

        torch, nn = self.torch, self.torch.nn
        cfg = recipe or config(sizes, batch, epochs)
        torch.manual_seed(0)
        layers: list[Any] = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [nn.Linear(a, b), nn.Tanh(), nn.Dropout(cfg.dropout)]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.model = nn.Sequential(*layers)
        if init is not None:  # handnet's initial weights: W (in, out) -> torch's (out, in)
            with torch.no_grad():
                dense = [m for m in self.model if isinstance(m, nn.Linear)]
                for i, m in enumerate(dense):
                    m.weight.copy_(torch.from_numpy(init[f"W{i}"].T.copy()))
                    m.bias.copy_(torch.from_numpy(init[f"b{i}"]))
        weights = [p for n, p in self.model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.model.named_parameters() if n.endswith("bias")]
        self.opt = torch.optim.SGD(
            [{"params": weights, "weight_decay": cfg.weight_decay}, {"params": biases}],
            lr=cfg.lr,
            momentum=cfg.momentum,
        )
        n = len(self.y)
        self.batch, self.steps = batch, math.ceil(n / batch)
        total, warm = epochs * self.steps, round(cfg.warmup_epochs * self.steps)
        self.lr = lambda s: warmup_cosine(
            s, base_lr=cfg.lr, warmup_steps=warm, total_steps=total, min_lr=cfg.min_lr
        )
        self.step = 0
        self.gen = torch.Generator().manual_seed(0)

    def epoch(self, batches: Any = None) -> float:
        """One epoch; ``batches`` is a handnet batch source, to train on its (augmented) batches."""
        torch, F = self.torch, self.torch.nn.functional
        t = time.perf_counter()
        self.model.train()
        perm = torch.randperm(len(self.y), generator=self.gen)
        source = batches(self.X.numpy(), perm.numpy(), self.batch) if batches else None
        for i in range(self.steps):
            idx = perm[i * self.batch : (i + 1) * self.batch]
            xb = self.X.index_select(0, idx) if source is None else torch.from_numpy(next(source))
            yb = self.y.index_select(0, idx)
            for g in self.opt.param_groups:
                g["lr"] = self.lr(self.step)
            loss = F.cross_entropy(self.model(xb), yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
        return time.perf_counter() - t

    def val_accuracy(self) -> float:
        self.model.eval()
        with self.torch.no_grad():
            pred = self.model(self.Xv).argmax(dim=1)
        return float((pred == self.yv).float().mean())


class Sklearn:
    def __init__(self, data: Any) -> None:
        self.X, self.y = data.X_train, data.y_train
        self.classes = np.unique(self.y)

    def setup(self, sizes: list[int], batch: int, epochs: int) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        warnings.simplefilter("ignore", ConvergenceWarning)
        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(sizes[1:-1]),
            activation="tanh",
            solver="sgd",
            batch_size=batch,
            learning_rate_init=0.05,
            momentum=0.9,
            nesterovs_momentum=False,
            alpha=1e-4,
            random_state=0,
        )

    def epoch(self) -> float:
        t = time.perf_counter()
        self.clf.partial_fit(self.X, self.y, classes=self.classes)
        return time.perf_counter() - t


SYSTEM_CLASSES = {"handnet": Handnet, "torch": Torch, "sklearn": Sklearn, "bound": Bound}


def worker(name: str, conn: Any) -> None:
    """A system in its own process: it answers ("setup", ...) and ("epoch",) messages."""
    system = SYSTEM_CLASSES[name](load_data())
    while (msg := conn.recv()) is not None:
        if msg[0] == "setup":
            system.setup(*msg[1:])
            conn.send(None)
        else:
            conn.send(system.epoch())


def epoch_table(args: argparse.Namespace) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    procs, conns = {}, {}
    for name in args.systems:
        parent, child = ctx.Pipe()
        procs[name] = ctx.Process(target=worker, args=(name, child), daemon=True)
        procs[name].start()
        conns[name] = parent
    rows = []
    for shape in args.shapes:
        sizes = [int(s) for s in shape.split("-")]
        for batch in args.batch:
            for c in conns.values():
                c.send(("setup", sizes, batch, args.epochs + 1))
            for c in conns.values():
                c.recv()
            times: dict[str, list[float]] = {name: [] for name in conns}
            for _ in range(args.epochs + 1):  # interleaved: one epoch of each system in turn
                for name, c in conns.items():
                    time.sleep(SPIN_GAP)
                    c.send(("epoch",))
                    times[name].append(c.recv())
            row: dict[str, Any] = {"shape": shape, "batch": batch}
            row.update({name: statistics.median(t[1:]) for name, t in times.items()})
            rows.append(row)
            print_row(row, args.systems, flush=True)
    for c in conns.values():
        c.send(None)
    for p in procs.values():
        p.join()
    return rows


def print_header(systems: list[str]) -> None:
    cols = "".join(f"{s:>9}" for s in systems)
    print(f"{'shape':<18}{'batch':>6}{cols}{'hn/torch':>10}{'hn/bound':>10}")


def print_row(row: dict[str, Any], systems: list[str], flush: bool = False) -> None:
    cols = "".join(f"{row[s]:>9.3f}" for s in systems)
    ratio = lambda a, b: f"{row[a] / row[b]:>10.2f}" if a in row and b in row else f"{'-':>10}"  # noqa: E731
    print(
        f"{row['shape']:<18}{row['batch']:>6}{cols}{ratio('handnet', 'torch')}{ratio('handnet', 'bound')}",
        flush=flush,
    )


# --- extras: RSS, evaluate, predict latency, time to accuracy ---


def peak_rss_of_train(epochs: int) -> float:
    """Peak RSS (MiB) of ``handnet train`` (the default recipe that ``make train`` runs)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "handnet.cli", "train", "--quiet", "--out", out]
        cmd += ["--epochs", str(epochs)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"handnet train failed ({proc.returncode})")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def inference_times(data: Any) -> tuple[float, float]:
    """Median seconds of ``evaluate`` on the test set, and of ``Classifier.predict`` on one image."""
    from handnet.train.classifier import Classifier
    from handnet.train.config import Rngs
    from handnet.train.fit import TrainState, evaluate

    cfg = config([784, 1024, 10], 128, 1)
    state = TrainState.fresh(cfg, 784, 10, Rngs.from_seed(0))
    ev = []
    for _ in range(7):
        t = time.perf_counter()
        evaluate(state.model, data.X_test, data.y_test)
        ev.append(time.perf_counter() - t)
    clf = Classifier(state.model, data.norm, data.classes, data.image_shape)
    image = np.random.default_rng(0).integers(0, 256, (1, 28, 28), dtype=np.uint8)
    lat = []
    for _ in range(300):
        t = time.perf_counter()
        clf.predict(image)
        lat.append(time.perf_counter() - t)
    return statistics.median(ev[1:]), statistics.median(lat[10:])


def fast_recipe() -> tuple[dict[str, Any], str]:
    from handnet.train.config import TrainConfig

    path = ROOT / "configs" / "fast.toml"
    if not path.exists():
        return TrainConfig().to_dict(), "default recipe (configs/fast.toml not present)"
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    raw = tomllib.loads(path.read_text())
    return TrainConfig.from_dict(raw).to_dict(), "configs/fast.toml, augmentation included"


class _Reached(Exception):
    pass


def time_to_accuracy(recipe: dict[str, Any]) -> dict[str, Any]:
    """Wall seconds from the first step until validation accuracy first reaches each target.

    Both systems train the whole recipe, augmentation included: PyTorch gets its batches from the
    same kind of handnet augmenter (seeded alike, in a background thread when the recipe asks for
    one; its own shuffle order makes the images differ), so the two differ only in the network's
    forward, backward and update. While a background thread augments, each system computes with one thread fewer, as
    ``handnet train`` does (`blas_threads_beside`).
    """
    from handnet.data.augment import blas_threads_beside
    from handnet.train.config import Rngs, TrainConfig
    from handnet.train.fit import TrainState, fit
    from handnet.train.runs import prepare_augmentation

    data = load_data()
    cfg = TrainConfig.from_dict(recipe)
    sizes = [784, *cfg.hidden_sizes, 10]
    rngs = Rngs.from_seed(cfg.seed)
    state = TrainState.fresh(cfg, 784, 10, rngs)
    train_data, source = prepare_augmentation(cfg, data, rngs)
    background = cfg.aug_thread and source is not None
    init = {}
    for i, d in enumerate(state.model.dense_layers()):
        init[f"W{i}"], init[f"b{i}"] = d.params["W"].copy(), d.params["b"].copy()
    out: dict[str, Any] = {"handnet": {}, "torch": {}}

    t0 = time.perf_counter()

    def check(st: Any, record: dict[str, float]) -> None:
        for target in TARGETS:
            if record["val_acc"] >= target and target not in out["handnet"]:
                out["handnet"][target] = (time.perf_counter() - t0, st.epoch)
        if len(out["handnet"]) == len(TARGETS):
            raise _Reached

    try:
        with blas_threads_beside(background):
            fit(state, train_data, cfg, progress=False, callbacks=[check], batch_source=source)
    except _Reached:
        pass
    out["handnet_best"] = max(r["val_acc"] for r in state.history)

    _, torch_source = prepare_augmentation(cfg, data, Rngs.from_seed(cfg.seed))
    torch = Torch(data)
    torch.setup(sizes, cfg.batch_size, cfg.epochs, init=init, recipe=cfg)
    torch.torch.set_num_threads(max(1, threads() - 1) if background else threads())
    t0 = time.perf_counter()
    best = 0.0
    for epoch in range(1, cfg.epochs + 1):
        torch.epoch(torch_source)
        acc = torch.val_accuracy()
        best = max(best, acc)
        for target in TARGETS:
            if acc >= target and target not in out["torch"]:
                out["torch"][target] = (time.perf_counter() - t0, epoch)
        if len(out["torch"]) == len(TARGETS):
            break
    out["torch_best"] = best
    return out


def print_tta(tta: dict[str, Any], note: str) -> None:
    print(f"\ntime to validation accuracy, {note}:")
    for target in TARGETS:
        cells = []
        for name in ("handnet", "torch"):
            hit = tta[name].get(target)
            cells.append(
                f"{name} {hit[0]:6.1f} s (epoch {hit[1]:>2})" if hit else f"{name} not reached"
            )
        print(f"  {target:.1%}:  " + "   ".join(cells))
    print(f"  best val acc: handnet {tta['handnet_best']:.2%}, torch {tta['torch_best']:.2%}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shapes", nargs="+", default=SHAPES)
    p.add_argument("--batch", type=int, nargs="+", default=BATCHES)
    p.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--quick", action="store_true", help="two shapes at batch 128, table only")
    p.add_argument("--no-extras", action="store_true", help="skip RSS, latency, time-to-accuracy")
    p.add_argument("--no-tta", action="store_true", help="skip time-to-accuracy")
    p.add_argument("--no-unset", action="store_true", help="skip the OPENBLAS_CORETYPE-unset run")
    p.add_argument("--rss-epochs", type=int, default=1, help="epochs of the peak-RSS train run")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = p.parse_args()
    if args.quick:
        args.shapes, args.batch, args.no_extras = SHAPES[:2], [128], True
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads()))  # BLAS threads = cores

    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    print(f"machine: {platform.machine()}, {threads()} threads, python {platform.python_version()}")
    print(f"numpy {np.__version__}; BLAS: {blas_info()}")
    print(
        f"environment: OPENBLAS_CORETYPE={coretype} OPENBLAS_L2_SIZE="
        f"{os.environ.get('OPENBLAS_L2_SIZE', 'unset')}"
    )
    print(f"s/epoch on 55,000 MNIST images, float32, median of {args.epochs} after 1 warm-up:\n")
    print_header(args.systems)
    result: dict[str, Any] = {"env": {"OPENBLAS_CORETYPE": coretype}, "blas": blas_info()}
    result["epochs"] = epoch_table(args)

    if not args.no_extras:
        rss = peak_rss_of_train(args.rss_epochs)
        ev, lat = inference_times(load_data())
        print(f"\npeak RSS of `handnet train --epochs {args.rss_epochs}`: {rss:.0f} MiB")
        print(f"evaluate on 10,000 test images (784-1024-10): {ev * 1e3:.1f} ms")
        print(f"single-image predict latency (784-1024-10): {lat * 1e6:.0f} us")
        result.update(peak_rss_mib=rss, evaluate_s=ev, predict_latency_s=lat)
        if not args.no_tta:
            recipe, note = fast_recipe()
            tta = time_to_accuracy(recipe)
            print_tta(tta, note)
            result["time_to_accuracy"] = {"recipe": recipe, "note": note, **tta}

    if not args.no_unset and "OPENBLAS_CORETYPE" in os.environ:
        print(
            "\n== the same table with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset ==", flush=True
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        }
        cmd = [sys.executable, __file__, "--no-extras", "--no-unset", "--epochs", str(args.epochs)]
        cmd += ["--shapes", *args.shapes, "--batch", *map(str, args.batch)]
        cmd += ["--systems", *args.systems]
        subprocess.run(cmd, env=env, check=True)
    if args.json:
        from handnet.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
