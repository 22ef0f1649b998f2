"""Training: the configuration, the minibatch loop, and evaluation.

The loop is deliberately plain: shuffle with the shuffle stream, gather a batch into a reused
buffer, forward, fused loss, backward, L2, SGD step with ``lr = schedule(step)``. Everything it
needs to continue later lives in a `TrainState`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from handnet.augment import AugmentSpec
from handnet.data import Dataset
from handnet.errors import ConfigError, ModelFileError, TrainingDiverged
from handnet.geometry import Geometry
from handnet.layers import ACTIVATIONS
from handnet.losses import L2Penalty, softmax_cross_entropy
from handnet.model import MLP, Classifier
from handnet.optim import SGD
from handnet.schedules import warmup_cosine

Array = npt.NDArray[np.floating]


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a run. The CLI flags, recipes and the search all produce one."""

    dataset: str = "mnist"  # a name (mnist, fashion-mnist, kmnist) or a path (.npz, .mat, IDX dir)
    # Shape normalization before anything else (handnet.geometry): shear every image upright, then
    # scale each digit's width to width_normalize pixels (0: keep). The model file records both
    # and applies them to what it is given to predict. configs/simard-800.toml deskews.
    deskew: bool = False
    width_normalize: int = 0
    # The defaults were chosen on the validation split: one tanh layer like the seed, 1024 wide,
    # with light dropout, L2 and 1 px shifts, reaches 98.89% test accuracy in 20 epochs of ~2 s.
    hidden_sizes: tuple[int, ...] = (1024,)
    activation: str = "tanh"  # tanh (the seed's) or relu
    dropout: float = 0.2  # drop probability after each hidden activation
    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.05  # peak learning rate, reached at the end of warmup
    min_lr: float = 0.0  # where the cosine ends; 0 is the seed's schedule
    warmup_epochs: float = 1.0  # linear warmup length, in epochs (fractions allowed)
    momentum: float = 0.9  # heavy-ball coefficient (beta in the seed's formula)
    nesterov: bool = False
    weight_decay: float = 1e-4  # lambda in (lambda/2) sum ||W||^2, weights only
    val_size: int = 5000  # stratified validation images carved from the training set
    seed: int = 0
    # The split alone can come from another seed (None: ``seed``): models of different seeds with
    # one split_seed hold out the same validation images, so their committee can be judged on it.
    split_seed: int | None = None
    # Augmentation (handnet.augment), drawn from the augment stream; all 0 is none. With
    # augment_copies = 0 every batch is transformed anew on the fly; with K > 0 the training set
    # gets K transformed copies appended once, before training (the seed's way), and no more.
    aug_rotate: float = 0.0  # degrees, angle in [-r, r]
    aug_scale: float = 0.0  # relative, factor in [1 - s, 1 + s] per axis
    # One pixel of random shift is on by default: chosen on the validation split, it takes the
    # default model from 98.34% to 98.78% validation accuracy; inline it costs about 0.8 s per epoch
    # on the 2-core VM (20 epochs: 34-42 s of training instead of about 20 s).
    aug_shift: float = 1.0  # pixels, translation in [-t, t] per axis
    aug_shear: float = 0.0  # degrees, shear angle in [-a, a]
    aug_elastic_alpha: float = 0.0  # Simard's alpha (34 in the paper); 0 turns elastic off
    aug_elastic_sigma: float = 4.0  # Simard's sigma, in pixels
    augment_copies: int = 0
    aug_thread: bool = False  # prepare augmented batches in a background thread
    # Least-squares refit of the output layer after training (handnet.finetune), kept only if the
    # validation accuracy does not drop.
    finetune: bool = False
    finetune_ridge: float = 1.0  # ridge added to sum x x^T

    def __post_init__(self) -> None:
        self._check_types()
        checks = [
            *(
                (name, isinstance(getattr(self, name), bool), "must be true or false")
                for name in ("nesterov", "aug_thread", "finetune")
            ),
            ("hidden_sizes", len(self.hidden_sizes) >= 1, "needs at least one hidden layer"),
            ("hidden_sizes", all(h >= 1 for h in self.hidden_sizes), "every size must be >= 1"),
            ("activation", self.activation in ACTIVATIONS, f"must be one of {sorted(ACTIVATIONS)}"),
            ("dropout", 0.0 <= self.dropout < 1.0, "must be in [0, 1)"),
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("lr", self.lr > 0 and math.isfinite(self.lr), "must be a positive number"),
            ("min_lr", 0.0 <= self.min_lr <= self.lr, "must be in [0, lr]"),
            ("warmup_epochs", 0.0 <= self.warmup_epochs <= self.epochs, "must be in [0, epochs]"),
            ("momentum", 0.0 <= self.momentum < 1.0, "must be in [0, 1)"),
            ("nesterov", not self.nesterov or self.momentum > 0, "needs momentum > 0"),
            (
                "weight_decay",
                0.0 <= self.weight_decay and math.isfinite(self.weight_decay),
                "must be >= 0",
            ),
            ("val_size", self.val_size >= 0, "must be >= 0"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("split_seed", self.split_seed is None or self.split_seed >= 0, "must be >= 0"),
            ("aug_rotate", 0.0 <= self.aug_rotate <= 180.0, "must be in [0, 180] degrees"),
            ("aug_scale", 0.0 <= self.aug_scale < 1.0, "must be in [0, 1)"),
            ("aug_shift", 0.0 <= self.aug_shift <= 14.0, "must be in [0, 14] pixels"),
            ("aug_shear", 0.0 <= self.aug_shear < 90.0, "must be in [0, 90) degrees"),
            (
                "aug_elastic_alpha",
                0.0 <= self.aug_elastic_alpha <= 1000.0,
                "must be in [0, 1000]",
            ),
            ("aug_elastic_sigma", 0.1 <= self.aug_elastic_sigma <= 100.0, "must be in [0.1, 100]"),
            ("augment_copies", 0 <= self.augment_copies <= 100, "must be in [0, 100]"),
            (
                "augment_copies",
                self.augment_copies == 0 or self.augment_spec().active,
                "needs some augmentation (--aug-rotate, --aug-shift, ...)",
            ),
            (
                "finetune_ridge",
                0.0 <= self.finetune_ridge and math.isfinite(self.finetune_ridge),
                "must be >= 0",
            ),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name)!r}: {why}")
        _ = self.geometry  # checks deskew and width_normalize

    def _check_types(self) -> None:
        """Whole numbers where the field says int, numbers where it says float, a list of whole
        numbers for hidden_sizes: "512" or 2.5 epochs are refused, not truncated or crashed on
        later. NumPy scalars (say from a scikit-learn parameter grid) become Python numbers."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" or (f.type == "int | None" and value is not None):
                if not _is_whole(value):
                    raise ConfigError(f"{f.name}={value!r}: must be a whole number")
                object.__setattr__(self, f.name, int(value))
            elif f.type == "float":
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise ConfigError(f"{f.name}={value!r}: must be a number")
                object.__setattr__(self, f.name, float(value))
            elif f.type == "str" and not isinstance(value, str):
                raise ConfigError(f"{f.name}={value!r}: must be a string")
        sizes = self.hidden_sizes
        if not isinstance(sizes, (list, tuple, np.ndarray)) or not all(map(_is_whole, sizes)):
            raise ConfigError(f"hidden_sizes={sizes!r}: must be a list of whole numbers")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in sizes))

    @property
    def geometry(self) -> Geometry:
        return Geometry(deskew=self.deskew, width=self.width_normalize)

    def augment_spec(self) -> AugmentSpec:
        return AugmentSpec(
            rotate=self.aug_rotate,
            scale=self.aug_scale,
            shift=self.aug_shift,
            shear=self.aug_shear,
            elastic_alpha=self.aug_elastic_alpha,
            elastic_sigma=self.aug_elastic_sigma,
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        if self.split_seed is None:  # TOML has no null; absent means "the run's seed"
            del d["split_seed"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:  # ConfigError is a ValueError
            raise ConfigError(f"{where}: {e}") from None

    @classmethod
    def stored_in(cls, clf: Classifier) -> TrainConfig:
        """The config ``clf`` was trained with, as its file stores it; a missing or invalid one
        makes the file bad (`ModelFileError`)."""
        stored = clf.meta.get("config")
        if not isinstance(stored, dict):
            raise ModelFileError("the model file stores no training config")
        try:
            return cls.from_dict(stored, where="the model's stored config")
        except ConfigError as e:
            raise ModelFileError(str(e)) from None


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class Rngs:
    """Independent random streams, so that e.g. turning dropout on does not change the init."""

    split: np.random.Generator
    init: np.random.Generator
    shuffle: np.random.Generator
    dropout: np.random.Generator
    augment: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> Rngs:
        return cls(*np.random.default_rng(seed).spawn(5))

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> Rngs:
        """``from_seed(cfg.seed)``, except the split stream when ``cfg.split_seed`` is set."""
        rngs = cls.from_seed(cfg.seed)
        if cfg.split_seed is not None:
            rngs.split = cls.from_seed(cfg.split_seed).split
        return rngs


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
