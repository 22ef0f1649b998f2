"""Training: the configuration, the minibatch loop, and evaluation.

The loop is deliberately plain: shuffle with the shuffle stream, gather a batch into a reused
buffer, forward, fused loss, backward, L2, SGD step with ``lr = schedule(step)``. Everything it
needs to continue later lives in a `TrainState`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from handnet.data import Dataset
from handnet.errors import TrainingDiverged
from handnet.nn.losses import L2Penalty, softmax_cross_entropy
from handnet.nn.model import MLP
from handnet.nn.optim import SGD
from handnet.nn.schedules import warmup_cosine
from handnet.train.config import Rngs, TrainConfig

Array = npt.NDArray[np.floating]


def build_model(cfg: TrainConfig, n_in: int, n_out: int, rngs: Rngs) -> MLP:
    return MLP(
        n_in,
        cfg.hidden_sizes,
        n_out,
        activation=cfg.activation,
        dropout=cfg.dropout,
        rng=rngs.init,
        dropout_rng=rngs.dropout,
    )


@dataclass
class EpochCursor:
    """Where a run stopped inside an epoch: its shuffle order, the next batch, the running sums."""

    perm: npt.NDArray[np.int64]  # this epoch's order of the training rows
    next_batch: int  # the first batch not yet taken
    loss_sum: float  # sum over seen rows of their loss
    correct: int  # seen rows classified correctly
    reg: float  # the L2 term of the last step
    seconds: float  # time spent in this epoch so far


@dataclass
class TrainState:
    """Everything a run needs to continue: model, optimizer velocity, RNG streams, counters, history."""

    model: MLP
    opt: SGD
    rngs: Rngs
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    history: list[dict[str, float]] = field(default_factory=list)
    cursor: EpochCursor | None = None  # set when fit stopped inside an epoch

    @classmethod
    def fresh(cls, cfg: TrainConfig, n_in: int, n_out: int, rngs: Rngs) -> TrainState:
        model = build_model(cfg, n_in, n_out, rngs)
        return cls(model, SGD(model.parameters(), cfg.momentum, cfg.nesterov), rngs)


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    confusion: npt.NDArray[np.int64]  # (C, C): rows are true classes, columns predictions

    @property
    def per_class_accuracy(self) -> list[float]:
        totals = self.confusion.sum(axis=1)
        return [
            float(c / t) if t else float("nan") for c, t in zip(np.diag(self.confusion), totals)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion.tolist(),
        }


def evaluate_logits(logits: Array, y: npt.NDArray[np.integer]) -> Evaluation:
    C = logits.shape[1]
    loss, _ = softmax_cross_entropy(logits, y)
    pred = logits.argmax(axis=1)
    confusion = np.bincount(y * C + pred, minlength=C * C).reshape(C, C)
    return Evaluation(loss, float((pred == y).mean()), confusion)


def evaluate(model: MLP, X: Array, y: npt.NDArray[np.integer]) -> Evaluation:
    """Loss, accuracy and confusion matrix of ``model`` on standardized inputs (eval mode)."""
    return evaluate_logits(model.predict_logits(X), y)


EpochCallback = Callable[[TrainState, dict[str, float]], None]
# (X_train, perm, batch_size) -> the epoch's input batches in order, e.g. augmented ones.
BatchSource = Callable[[Array, npt.NDArray[np.intp], int], Generator[Array, None, None]]


def fit(
    state: TrainState,
    data: Dataset,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    callbacks: Sequence[EpochCallback] = (),
    stop: Callable[[], bool] | None = None,
    batch_source: BatchSource | None = None,
) -> list[dict[str, float]]:
    """Train from ``state.epoch`` to ``cfg.epochs``, appending one record per epoch to the history.

    ``stop`` is asked after every step; when it says yes, fit returns early with the position inside
    the epoch in ``state.cursor`` (so ``state.epoch < cfg.epochs``), and a later call continues
    exactly there. ``batch_source``, if given, supplies each epoch's input batches, e.g. augmented
    ones (labels still follow ``perm``). Raises `TrainingDiverged` as soon as the loss or, at an
    epoch's end, a weight is not finite.
    """
    model, opt = state.model, state.opt
    X_train, y_train = data.X_train, data.y_train
    N, D = X_train.shape
    bs = min(cfg.batch_size, N)  # a batch larger than the training set is the whole set
    steps_per_epoch = math.ceil(N / bs)
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    params, grads, weights = model.parameters(), model.gradients(), model.weight_pairs()
    l2 = L2Penalty(cfg.weight_decay)
    xb = np.empty((bs, D), dtype=X_train.dtype)  # the batch is gathered here, never reallocated
    yb = np.empty(bs, dtype=y_train.dtype)

    # Overflow to inf/NaN is detected and reported below; NumPy need not warn about it too.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(state.epoch, cfg.epochs):
            t0 = time.perf_counter()
            start, cur = 0, state.cursor
            if cur is not None:  # continue inside an interrupted epoch
                perm, start, loss_sum, correct, reg = (
                    cur.perm,
                    cur.next_batch,
                    cur.loss_sum,
                    cur.correct,
                    cur.reg,
                )
                t0 -= cur.seconds
                state.cursor = None
            else:
                perm = state.rngs.shuffle.permutation(N)
                loss_sum, correct, reg = 0.0, 0, 0.0
            # The batches of this epoch from `start` on: a resumed epoch continues mid-way.
            batches = batch_source(X_train, perm[start * bs :], bs) if batch_source else None
            bar = tqdm(
                total=steps_per_epoch,
                initial=start,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                unit="batch",
                leave=False,
                disable=True
                if not progress
                else None,  # None: no bar when stderr is not a terminal
                dynamic_ncols=True,
            )
            for i in range(start, steps_per_epoch):
                idx = perm[i * bs : (i + 1) * bs]
                n = len(idx)
                if batches is None:
                    X = np.take(X_train, idx, axis=0, out=xb[:n], mode="clip")  # (n, D)
                else:
                    X = next(batches)
                y = np.take(y_train, idx, out=yb[:n], mode="clip")  # (n,)
                lr = warmup_cosine(
                    state.step,
                    base_lr=cfg.lr,
                    warmup_steps=warmup_steps,
                    total_steps=total_steps,
                    min_lr=cfg.min_lr,
                )
                logits = model.forward(X, train=True)  # (n, C)
                correct += int((logits.argmax(axis=1) == y).sum())
                loss, dlogits = softmax_cross_entropy(logits, y)
                if not math.isfinite(loss):
                    bar.close()
                    raise TrainingDiverged(
                        f"loss became {loss} at epoch {epoch + 1}, step {state.step} (lr {lr:.4g}); "
                        "try a smaller --lr or a longer --warmup-epochs"
                    )
                loss_sum += loss * n
                model.backward(dlogits)
                l2.add_gradient(weights)  # dW += lambda W
                if i == steps_per_epoch - 1:  # the L2 term of the loss, for the epoch's record
                    reg = l2.value(weights)
                opt.step(params, grads, lr)
                state.step += 1
                if progress and (i % 25 == 0 or i == steps_per_epoch - 1):
                    seen = i * bs + n
                    bar.set_postfix(
                        loss=f"{loss_sum / seen:.4f}",
                        acc=f"{correct / seen:.2%}",
                        img_s=f"{seen / (time.perf_counter() - t0):,.0f}",
                        refresh=False,
                    )
                bar.update(1)
                if stop is not None and i + 1 < steps_per_epoch and stop():
                    bar.close()
                    if batches is not None:  # now, before the caller saves the random streams:
                        batches.close()  # a prefetching source rewinds what it drew ahead
                    state.cursor = EpochCursor(
                        perm, i + 1, loss_sum, correct, reg, time.perf_counter() - t0
                    )
                    return state.history
            bar.close()
            seconds = time.perf_counter() - t0
            for k, p in params.items():
                if not np.all(np.isfinite(p)):
                    raise TrainingDiverged(
                        f"weights {k} became non-finite in epoch {epoch + 1} (step {state.step}, lr {lr:.4g})"
                    )
            val = evaluate(model, data.X_val, data.y_val) if len(data.y_val) else None
            record = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / N + reg,
                "train_acc": correct / N,
                "val_loss": val.loss if val else float("nan"),
                "val_acc": val.accuracy if val else float("nan"),
                "lr": lr,
                "seconds": seconds,
            }
            state.history.append(record)
            state.epoch = epoch + 1
            if progress:
                held_out = (
                    f"val_loss {val.loss:.4f}  val_acc {val.accuracy:.2%}  "
                    if val
                    else "no validation  "
                )
                tqdm.write(
                    f"epoch {epoch + 1:>3}/{cfg.epochs}  loss {record['train_loss']:.4f}  "
                    f"acc {record['train_acc']:.2%}  {held_out}"
                    f"lr {lr:.3g}  {seconds:.1f}s ({N / seconds:,.0f} img/s)",
                    file=sys.stderr,
                )
            for cb in callbacks:
                cb(state, record)
            if stop is not None and state.epoch < cfg.epochs and stop():
                break
    return state.history
