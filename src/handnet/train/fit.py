"""Training: the configuration, the minibatch loop, and evaluation.

The loop is deliberately plain: shuffle with the shuffle stream, gather a batch into a reused
buffer, forward, fused loss, backward, SGD step with L2 and ``lr = schedule(step)``. Everything it
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
from handnet.nn.arrays import like, namespace, to_numpy
from handnet.nn.losses import L2Penalty, softmax_cross_entropy
from handnet.nn.model import MLP
from handnet.nn.optim import SGD
from handnet.nn.schedules import warmup_cosine
from handnet.train.config import Rngs, TrainConfig
from handnet.train.device import on_device

Array = npt.NDArray[np.floating]


def build_model(cfg: TrainConfig, n_in: int, n_out: int, rngs: Rngs) -> MLP:
    """The network of ``cfg``'s architecture, drawn from the run's streams.

    The weights come from ``rngs.init``, the dropout masks from ``rngs.dropout``.

    Parameters
    ----------
    cfg : TrainConfig
        Its ``hidden_sizes``, ``activation`` and ``dropout``.
    n_in : int
        Input width, D.
    n_out : int
        Output width, the number of classes C.
    rngs : Rngs
        The run's streams.

    Returns
    -------
    MLP
        A new float32 network on NumPy.
    """
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
    """Where a run stopped inside an epoch: its shuffle order, the next batch, the running sums.

    Parameters
    ----------
    perm : ndarray of int64, shape (n_train,)
        This epoch's order of the training rows.
    next_batch : int
        The first batch not yet taken.
    loss_sum : float
        Sum over seen rows of their loss.
    correct : int
        Seen rows classified correctly.
    reg : float
        The L2 term of the last step.
    seconds : float
        Time spent in this epoch so far.
    """

    perm: npt.NDArray[np.int64]  # this epoch's order of the training rows
    next_batch: int  # the first batch not yet taken
    loss_sum: float  # sum over seen rows of their loss
    correct: int  # seen rows classified correctly
    reg: float  # the L2 term of the last step
    seconds: float  # time spent in this epoch so far

    @classmethod
    def start(cls, perm: npt.NDArray[np.int64]) -> EpochCursor:
        """The cursor at the start of an epoch: nothing seen yet.

        Parameters
        ----------
        perm : ndarray of int64, shape (n_train,)
            The epoch's order of the training rows.

        Returns
        -------
        EpochCursor
            A new cursor at batch 0.
        """
        return cls(perm, 0, 0.0, 0, 0.0, 0.0)

    def add(self, loss: float, correct: int, n: int) -> None:
        """Count one more batch of ``n`` rows.

        Parameters
        ----------
        loss : float
            The batch's mean loss.
        correct : int
            Its rows classified correctly.
        n : int
            Its number of rows.
        """
        self.loss_sum += loss * n
        self.correct += correct
        self.next_batch += 1


@dataclass
class Timing:
    """Wall seconds of training's parts, summed over the epochs `fit` ran.

    A run reports them; they are not saved in checkpoints, so a resumed run counts from its
    resumption.

    Parameters
    ----------
    batches : float, default=0.0
        Waiting for each batch: the gather, and the augmentation if any.
    steps : float, default=0.0
        Forward, loss, backward, update (and the progress bar).
    validation : float, default=0.0
        The validation pass after each epoch.
    """

    batches: float = 0.0  # waiting for each batch: the gather, and the augmentation if any
    steps: float = 0.0  # forward, loss, backward, update (and the progress bar)
    validation: float = 0.0  # the validation pass after each epoch


@dataclass
class TrainState:
    """Everything a run needs to continue: model, velocity, random streams, counters, history.

    Parameters
    ----------
    model : MLP
        The network.
    opt : SGD
        The optimizer, holding the velocity.
    rngs : Rngs
        The run's random streams.
    epoch : int, default=0
        Epochs completed.
    step : int, default=0
        Optimizer steps taken.
    history : list of dict of str to float, default=[]
        One record per completed epoch: ``epoch``, ``train_loss``, ``train_acc``,
        ``val_loss``, ``val_acc``, ``lr``, ``seconds``.
    cursor : EpochCursor, optional
        Set when `fit` stopped inside an epoch.
    timing : Timing, default=Timing()
        Where training's time went (not checkpointed).
    """

    model: MLP
    opt: SGD
    rngs: Rngs
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    history: list[dict[str, float]] = field(default_factory=list)
    cursor: EpochCursor | None = None  # set when fit stopped inside an epoch
    timing: Timing = field(default_factory=Timing)

    @classmethod
    def fresh(cls, cfg: TrainConfig, n_in: int, n_out: int, rngs: Rngs) -> TrainState:
        """The state of a run about to start: a new network (`build_model`) and a zero velocity.

        Parameters
        ----------
        cfg : TrainConfig
            The run's config.
        n_in : int
            Input width, D.
        n_out : int
            The number of classes, C.
        rngs : Rngs
            The run's streams; the init stream draws the weights.

        Returns
        -------
        TrainState
            At epoch 0, step 0.
        """
        model = build_model(cfg, n_in, n_out, rngs)
        return cls(model, SGD(model.parameters(), cfg.momentum, cfg.nesterov), rngs)


@dataclass(frozen=True)
class Evaluation:
    """A model's loss, accuracy and confusion matrix on a labelled split.

    Parameters
    ----------
    loss : float
        Mean cross-entropy.
    accuracy : float
        Share of rows classified correctly.
    confusion : ndarray of int64, shape (C, C)
        Counts: rows are true classes, columns predictions.
    """

    loss: float
    accuracy: float
    confusion: npt.NDArray[np.int64]  # (C, C): rows are true classes, columns predictions

    @property
    def per_class_accuracy(self) -> list[float]:
        """The accuracy on each true class, C numbers (NaN for a class with no row)."""
        totals = self.confusion.sum(axis=1)
        return [
            float(c / t) if t else float("nan") for c, t in zip(np.diag(self.confusion), totals)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as JSON values.

        Returns
        -------
        dict of str to object
            ``loss``, ``accuracy``, ``per_class_accuracy`` and ``confusion`` (a list of C lists).
        """
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion.tolist(),
        }


def evaluate_logits(logits: Array, y: npt.NDArray[np.integer]) -> Evaluation:
    """Loss, accuracy and confusion matrix of logits against labels.

    Parameters
    ----------
    logits : ndarray of float32, shape (N, C)
        A model's logits; not modified.
    y : ndarray of int, shape (N,)
        The labels.

    Returns
    -------
    Evaluation
        Its loss, accuracy and confusion matrix.
    """
    C = logits.shape[1]
    loss, _ = softmax_cross_entropy(logits, y)
    pred = logits.argmax(axis=1)
    confusion = np.bincount(y * C + pred, minlength=C * C).reshape(C, C)
    return Evaluation(loss, float((pred == y).mean()), confusion)


def evaluate(model: MLP, X: Array, y: npt.NDArray[np.integer]) -> Evaluation:
    """Loss, accuracy and confusion matrix of ``model`` on standardized inputs (eval mode).

    Parameters
    ----------
    model : MLP
        The network.
    X : array, shape (N, D)
        Standardized inputs, in the library of the model's weights.
    y : array of int, shape (N,)
        Their labels.

    Returns
    -------
    Evaluation
        Its loss, accuracy and confusion matrix, computed on the host.
    """
    return evaluate_logits(to_numpy(model.predict_logits(X)), to_numpy(y))


EpochCallback = Callable[[TrainState, dict[str, float]], None]
# (X_train, perm, batch_size) -> the epoch's input batches in order, e.g. augmented ones.
BatchSource = Callable[[Array, npt.NDArray[np.intp], int], Generator[Array, None, None]]


def train_step(
    model: MLP, opt: SGD, X: Array, y: npt.NDArray[np.integer], lr: float, weight_decay: float
) -> tuple[float, int]:
    """One step of minibatch SGD with L2 on the batch (X, y).

    Parameters
    ----------
    model : MLP
        The network, updated in place.
    opt : SGD
        Its optimizer.
    X : array, shape (B, D)
        The batch's standardized inputs, in the library of the weights.
    y : array of int, shape (B,)
        Its labels, in the same library.
    lr : float
        The learning rate of this step.
    weight_decay : float
        lambda, the L2 coefficient on the weights.

    Returns
    -------
    loss : float
        The batch's mean cross-entropy before the update, without the L2 term.
    correct : int
        Its rows classified correctly before the update.
    """
    logits = model.forward(X, train=True)  # (B, C)
    xp = namespace(logits)
    correct = int(xp.count_nonzero(xp.argmax(logits, axis=1) == y))  # before the update
    # L and -lr dL/dlogits (B, C): back-propagation is linear, so scaling here (B x C numbers)
    # makes every gradient below come out as -lr g, which the update needs anyway.
    loss, dlogits = softmax_cross_entropy(logits, y, grad_scale=-lr)
    model.backward(dlogits)  # -lr dL/dW, -lr dL/db of every layer
    # v <- mu v - lr (g + lambda W);  w <- w + v   (lambda on the weights only)
    opt.step(model.parameters(), model.gradients(), lr, weight_decay=weight_decay, scaled=True)
    return loss, correct


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
    epoch's end, a weight is not finite. ``cfg.device`` picks the array library the steps run on
    (`handnet.train.device`); the weights are NumPy arrays again when fit returns.

    Parameters
    ----------
    state : TrainState
        Where training stands; updated in place.
    data : Dataset
        The data: training rows to learn from, validation rows scored after each epoch.
    cfg : TrainConfig
        The run's config.
    progress : bool, default=True
        A progress bar per epoch and a line after each on stderr.
    callbacks : Sequence of callable, default=()
        Each called as ``cb(state, record)`` after every epoch (a checkpoint, a search's
        pruning).
    stop : callable, optional
        ``stop() -> bool``, asked after every step.
    batch_source : callable, optional
        ``batch_source(X_train, perm, batch_size)``: a generator of the epoch's input batches
        (B, D) in the order of ``perm``.

    Returns
    -------
    list of dict of str to float
        ``state.history``: one record per epoch completed so far.

    Raises
    ------
    TrainingDiverged
        When the loss or a weight is not finite.
    ConfigError
        If ``cfg.device``'s library or GPU is missing.
    """
    data = on_device(data, cfg.device)
    state.model.to(data.X_train)
    state.opt.to(data.X_train)
    try:
        return _fit(state, data, cfg, progress, callbacks, stop, batch_source)
    finally:
        host = np.empty(0, state.model.dtype)
        state.model.to(host)
        state.opt.to(host)


def _fit(
    state: TrainState,
    data: Dataset,
    cfg: TrainConfig,
    progress: bool,
    callbacks: Sequence[EpochCallback],
    stop: Callable[[], bool] | None,
    batch_source: BatchSource | None,
) -> list[dict[str, float]]:
    """`fit` once the arrays are where the run trains."""
    plan = Plan.of(cfg, data.y_train.shape[0])
    l2 = L2Penalty(cfg.weight_decay)
    # Overflow to inf/NaN is detected and reported below; NumPy need not warn about it too.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(state.epoch, cfg.epochs):
            ep = state.cursor or EpochCursor.start(state.rngs.shuffle.permutation(plan.n))
            state.cursor, t0 = None, time.perf_counter() - ep.seconds
            bar = _bar(progress, epoch, cfg.epochs, plan.steps_per_epoch, ep.next_batch)
            batches = _batches(data, ep, plan.batch_size, batch_source)
            t_batch = time.perf_counter()
            for i, (X, y) in enumerate(batches, start=ep.next_batch):
                t_step = time.perf_counter()
                state.timing.batches += t_step - t_batch
                lr = plan.lr(state.step)
                if i == plan.steps_per_epoch - 1:  # the L2 term of the loss, for the record
                    ep.reg = l2.value(state.model.weight_pairs())
                loss, correct = train_step(state.model, state.opt, X, y, lr, l2.weight_decay)
                _check_loss(loss, epoch, state.step, lr, bar)
                ep.add(loss, correct, y.shape[0])
                state.step += 1
                seen = i * plan.batch_size + y.shape[0]  # rows of this epoch so far
                _show(bar, ep, seen, t0, i, plan.steps_per_epoch, progress)
                t_batch = time.perf_counter()
                state.timing.steps += t_batch - t_step
                if stop is not None and i + 1 < plan.steps_per_epoch and stop():
                    bar.close()
                    batches.close()  # now, before the caller saves the random streams: a
                    ep.seconds = time.perf_counter() - t0  # prefetching source rewinds
                    state.cursor = ep
                    return state.history
            bar.close()
            record = _end_epoch(state, data, ep, lr, time.perf_counter() - t0, plan.n)
            if progress:
                tqdm.write(_epoch_line(record, cfg.epochs, plan.n), file=sys.stderr)
            for cb in callbacks:
                cb(state, record)
            if stop is not None and state.epoch < cfg.epochs and stop():
                break
    return state.history


@dataclass(frozen=True)
class Plan:
    """The step counts of a run and its learning rate at each step.

    Parameters
    ----------
    cfg : TrainConfig
        The run's config: epochs, lr, min_lr, warmup_epochs.
    n : int
        Training rows.
    batch_size : int
        Rows per batch: a batch larger than the training set is the whole set.
    steps_per_epoch : int
        ceil(n / batch_size).
    """

    cfg: TrainConfig
    n: int  # training rows
    batch_size: int  # a batch larger than the training set is the whole set
    steps_per_epoch: int

    @classmethod
    def of(cls, cfg: TrainConfig, n: int) -> Plan:
        """The plan of ``cfg`` on ``n`` training rows.

        Parameters
        ----------
        cfg : TrainConfig
            The run's config.
        n : int
            Training rows.

        Returns
        -------
        Plan
            Its batch size capped at ``n``, and the steps per epoch.
        """
        bs = min(cfg.batch_size, n)
        return cls(cfg, n, bs, math.ceil(n / bs))

    def lr(self, step: int) -> float:
        """The schedule, a pure function of the step (handnet.nn.schedules).

        Parameters
        ----------
        step : int
            The optimizer step, from 0.

        Returns
        -------
        float
            The learning rate: warmup over ``warmup_epochs``, then a cosine to ``min_lr`` at
            the end of the last epoch.
        """
        return warmup_cosine(
            step,
            base_lr=self.cfg.lr,
            warmup_steps=round(self.cfg.warmup_epochs * self.steps_per_epoch),
            total_steps=self.cfg.epochs * self.steps_per_epoch,
            min_lr=self.cfg.min_lr,
        )


def _batches(
    data: Dataset, ep: EpochCursor, bs: int, source: BatchSource | None
) -> Generator[tuple[Array, npt.NDArray[np.integer]], None, None]:
    """The epoch's batches from ``ep.next_batch`` on, gathered into buffers allocated once (or
    drawn from ``source``, e.g. augmented); closing this closes the source too."""
    X_train, y_train = data.X_train, data.y_train
    rest = ep.perm[ep.next_batch * bs :]  # a resumed epoch continues mid-way
    inputs = source(X_train, rest, bs) if source else None  # augmented where X_train lives
    try:
        if namespace(X_train) is np:
            xb = np.empty((bs, X_train.shape[1]), dtype=X_train.dtype)  # (B, D), allocated once
            yb = np.empty(bs, dtype=y_train.dtype)
            for start in range(0, len(rest), bs):
                idx = rest[start : start + bs]
                n = len(idx)
                X = (
                    next(inputs)
                    if inputs
                    else np.take(X_train, idx, axis=0, out=xb[:n], mode="clip")
                )
                yield X, np.take(y_train, idx, out=yb[:n], mode="clip")
        else:  # another library: gather (and augment) on its device
            xp = namespace(X_train)
            for start in range(0, len(rest), bs):
                idx = like(rest[start : start + bs], X_train)
                X = next(inputs) if inputs else xp.take(X_train, idx, axis=0)
                yield X, xp.take(y_train, idx, axis=0)
    finally:
        if inputs is not None:
            inputs.close()


def _check_loss(loss: float, epoch: int, step: int, lr: float, bar: tqdm) -> None:
    if not math.isfinite(loss):
        bar.close()
        raise TrainingDiverged(
            f"loss became {loss} at epoch {epoch + 1}, step {step} (lr {lr:.4g}); "
            "try a smaller --lr or a longer --warmup-epochs"
        )


def _bar(progress: bool, epoch: int, epochs: int, total: int, initial: int) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="batch",
        leave=False,
        disable=True if not progress else None,  # None: no bar when stderr is not a terminal
        dynamic_ncols=True,
    )


def _show(
    bar: tqdm, ep: EpochCursor, seen: int, t0: float, i: int, steps: int, progress: bool
) -> None:
    if progress and (i % 25 == 0 or i == steps - 1):
        bar.set_postfix(
            loss=f"{ep.loss_sum / seen:.4f}",
            acc=f"{ep.correct / seen:.2%}",
            img_s=f"{seen / (time.perf_counter() - t0):,.0f}",
            refresh=False,
        )
    bar.update(1)


def _end_epoch(
    state: TrainState, data: Dataset, ep: EpochCursor, lr: float, seconds: float, n: int
) -> dict[str, float]:
    """Check the weights, score the validation split, and append the epoch's record."""
    for k, p in state.model.parameters().items():
        if not bool(namespace(p).all(namespace(p).isfinite(p))):
            raise TrainingDiverged(
                f"weights {k} became non-finite in epoch {state.epoch + 1} (step {state.step}, lr {lr:.4g})"
            )
    t = time.perf_counter()
    val = evaluate(state.model, data.X_val, data.y_val) if data.y_val.shape[0] else None
    state.timing.validation += time.perf_counter() - t
    record = {
        "epoch": state.epoch + 1,
        "train_loss": ep.loss_sum / n + ep.reg,
        "train_acc": ep.correct / n,
        "val_loss": val.loss if val else float("nan"),
        "val_acc": val.accuracy if val else float("nan"),
        "lr": lr,
        "seconds": seconds,
    }
    state.history.append(record)
    state.epoch += 1
    return record


def _epoch_line(r: dict[str, float], epochs: int, n: int) -> str:
    held_out = (
        f"val_loss {r['val_loss']:.4f}  val_acc {r['val_acc']:.2%}  "
        if not math.isnan(r["val_acc"])
        else "no validation  "
    )
    return (
        f"epoch {int(r['epoch']):>3}/{epochs}  loss {r['train_loss']:.4f}  "
        f"acc {r['train_acc']:.2%}  {held_out}"
        f"lr {r['lr']:.3g}  {r['seconds']:.1f}s ({n / r['seconds']:,.0f} img/s)"
    )
