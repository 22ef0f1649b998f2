"""The pictures of one run's training: loss, accuracy and learning-rate curves, and what every
figure shares (style, sizes, `png_bytes`). What the trained network learned and where it errs is
drawn by `handnet.report.model_plots`.

Every function takes plain arrays (or the stored history/config) and returns a matplotlib
`Figure` built with the object-oriented API on the Agg canvas: no pyplot, no global state, no
display. `png_bytes` renders a figure, ours or the search's (then frees it); sizes are fixed
(``figsize * DPI`` pixels) and `constrained` layout keeps titles and labels inside the canvas.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter

from handnet.nn.schedules import warmup_cosine

DPI = 100
# Figure sizes in inches; the PNGs are these times DPI pixels.
SIZES: dict[str, tuple[float, float]] = {
    "loss": (8.0, 5.0),
    "accuracy": (8.0, 5.0),
    "lr": (8.0, 4.5),
    "weights_first": (9.0, 8.2),
    "weights_output": (10.0, 5.5),
    "confusion": (8.0, 7.5),
    "mistakes": (10.0, 7.8),
}
ACTIVATIONS_WIDTH, ACTIVATIONS_ROW_HEIGHT = 11.0, 3.6  # one row of panels per hidden layer
PANEL_TITLE_SIZE = 11.5  # titles of side-by-side panels, below a bold 13 pt figure title
SATURATED = 0.97  # |tanh(x)| > 0.97 means |x| > 2.1: the slope 1 - a^2 is below 0.06
DIVERGING = "RdBu_r"  # red positive, blue negative, white at 0
# Counts, on a log scale from 1: Blues from a quarter of its way, so that a cell of one image is
# a visible light blue and only an empty cell is white.
COUNTS = ListedColormap(matplotlib.colormaps["Blues"](np.linspace(0.25, 1.0, 256)), "counts")

# Style for every figure, applied only while a figure is built and rendered (rc_context).
_STYLE: Any = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#d62728"


@contextmanager
def style() -> Iterator[None]:
    """Apply the figures' shared style (fonts, spines, grid, white background) in a ``with``.

    matplotlib's global settings are changed only inside the block (``rc_context``).

    Yields
    ------
    None
        Control, with the style in effect.
    """
    with matplotlib.rc_context(_STYLE):
        yield


def new_figure(size: tuple[float, float]) -> Figure:
    """A Figure on its own Agg canvas (no pyplot), laid out so nothing is clipped.

    Parameters
    ----------
    size : tuple of (float, float)
        Width and height in inches (see `SIZES`); the PNG is ``size * DPI`` pixels.

    Returns
    -------
    Figure
        An empty figure with constrained layout, in the shared style.
    """
    with style():
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: float = DPI) -> bytes:
    """Render ``fig`` as PNG, then free it.

    No tight bbox: the pixel size is figsize * dpi. The run's figures come from `new_figure`;
    one made elsewhere (the search's) gets an Agg canvas.

    Parameters
    ----------
    fig : Figure
        The figure to render; it is cleared afterwards.
    dpi : float, default=DPI
        Pixels per inch.

    Returns
    -------
    bytes
        The PNG file's bytes.
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself to the figure
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi)
    fig.clear()
    return buf.getvalue()


def _epochs(history: Sequence[Mapping[str, float]]) -> list[int]:
    return [int(r["epoch"]) for r in history]


def _has(history: Sequence[Mapping[str, float]], key: str) -> bool:
    return any(math.isfinite(float(r.get(key, float("nan")))) for r in history)


def plot_loss(history: Sequence[Mapping[str, float]]) -> Figure:
    """Cross-entropy per epoch: training and validation.

    Training is the mean over the epoch's batches, dropout on, plus the L2 term; validation is
    measured in eval mode, after the epoch, and its lowest point is starred. Log scale (when
    the values span more than a factor 2.5): late epochs stay visible.

    Parameters
    ----------
    history : Sequence of Mapping of str to float
        One row per epoch, as the model file stores it: ``epoch``, ``train_loss``,
        ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``.
        A validation loss that is NaN everywhere draws no validation curve.

    Returns
    -------
    Figure
        The plot.
    """
    with style():
        fig = new_figure(SIZES["loss"])
        ax = fig.add_subplot()
        ep = _epochs(history)
        ax.plot(ep, [r["train_loss"] for r in history], "o-", color=TRAIN_COLOR, label="training")
        if _has(history, "val_loss"):
            best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
            ax.plot(
                ep,
                [r["val_loss"] for r in history],
                "s-",
                color=VAL_COLOR,
                label=f"validation (lowest {history[best]['val_loss']:.4f}, epoch {ep[best]})",
            )
            ax.plot(ep[best], history[best]["val_loss"], "*", ms=16, color=VAL_COLOR)
        values = [r[k] for r in history for k in ("train_loss", "val_loss")]
        finite = [v for v in values if math.isfinite(v) and v > 0]
        log = bool(finite) and max(finite) / min(finite) > 2.5  # else a log scale shows no ticks
        if log:
            log_y(ax)
        ax.set(
            title="Loss per epoch",
            xlabel="epoch",
            ylabel="cross-entropy (log scale)" if log else "cross-entropy",
        )
        _integer_epochs(ax, ep)
        ax.legend()
    return fig


def _plain(v: float, _pos: object = None) -> str:
    """Tick labels like 0.3 or 0.05 instead of 3x10^-1 on a log axis."""
    return f"{v:.3g}"


def _minor_labels(mantissas: tuple[int, ...]) -> FuncFormatter:
    """Minor ticks of a log axis: label these multiples of a power of ten, leave the rest bare."""

    def label(v: float, _pos: object = None) -> str:
        mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
        return _plain(v) if mantissa in mantissas else ""

    return FuncFormatter(label)


def log_y(ax: Any) -> None:
    """Log y axis with plain labels at each power of ten, and between them over a short range.

    Labels at 2, 3 and 5 times each power over two decades or less, 2 and 5 times it over four:
    a loss that ends between 0.01 and 0.1 is read off labels of its own decade, not guessed
    below the 0.1 line. Wider, the powers alone.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes, with their data already plotted (the range decides the labels); changed in
        place.
    """
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    if hi / lo <= 1e4:
        ax.yaxis.set_minor_formatter(_minor_labels((2, 3, 5) if hi / lo <= 100 else (2, 5)))
        ax.grid(True, which="minor", alpha=0.12)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def plot_accuracy(history: Sequence[Mapping[str, float]]) -> Figure:
    """Accuracy per epoch, training (with dropout on) and validation, in percent.

    The highest validation accuracy is starred. With 5 epochs or more, the scale leaves out
    epoch 1 (warmup) and says so, so that late differences of 0.1% stay visible.

    Parameters
    ----------
    history : Sequence of Mapping of str to float
        One row per epoch, as the model file stores it: ``epoch``, ``train_loss``,
        ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``.

    Returns
    -------
    Figure
        The plot.
    """
    with style():
        fig = new_figure(SIZES["accuracy"])
        ax = fig.add_subplot()
        ep = _epochs(history)
        curves = [[100 * r["train_acc"] for r in history]]
        ax.plot(ep, curves[0], "o-", color=TRAIN_COLOR, label="training")
        if _has(history, "val_acc"):
            val = [r["val_acc"] for r in history]
            curves.append([100 * v for v in val])
            best = max(range(len(val)), key=lambda i: val[i])
            ax.plot(
                ep,
                curves[-1],
                "s-",
                color=VAL_COLOR,
                label=f"validation (highest {val[best]:.2%}, epoch {ep[best]})",
            )
            ax.plot(ep[best], curves[-1][best], "*", ms=16, color=VAL_COLOR)
        # Zoom on where the run spends its time: with 5+ epochs, the scale leaves out epoch 1
        # (warmup) and says so, so that late differences of 0.1% stay visible.
        skip = 1 if len(history) >= 5 else 0
        shown = [v for c in curves for v in c[skip:] if math.isfinite(v)]
        lo, hi = min(shown), max(shown)
        pad = 0.08 * (hi - lo) + 0.05
        ax.set_ylim(lo - pad, min(100.0, hi + pad))
        below = [
            f"{name} {c[0]:.1f}%"
            for name, c in zip(("training", "validation"), curves)
            if skip and c[0] < lo - pad
        ]
        if below:
            ax.text(
                0.01,
                0.99,
                f"off the scale: epoch {ep[0]} ({', '.join(below)})",
                transform=ax.transAxes,
                va="top",
                fontsize=9,
                color="#59636e",
            )
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
        ax.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy")
        _integer_epochs(ax, ep)
        ax.legend(loc="lower right")
    return fig


def _integer_epochs(ax: Any, epochs: Sequence[int]) -> None:
    if len(epochs) <= 10:  # few epochs: a tick at each (a locator would add 0.6, 0.8, ...)
        ax.set_xticks(list(epochs))
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
    if epochs:
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)


def lr_per_step(config: Mapping[str, Any], steps_per_epoch: int) -> npt.NDArray[np.float64]:
    """The learning rate of every optimizer step, recomputed with the training loop's schedule.

    Parameters
    ----------
    config : Mapping of str to Any
        The stored training config: ``epochs``, ``lr``, ``warmup_epochs`` and optionally
        ``min_lr`` (0 if absent).
    steps_per_epoch : int
        Optimizer steps per epoch.

    Returns
    -------
    ndarray of float64, shape (epochs * steps_per_epoch,)
        The learning rate at each step (`handnet.nn.schedules.warmup_cosine`).
    """
    epochs = int(config["epochs"])
    total = epochs * steps_per_epoch
    warmup = round(float(config["warmup_epochs"]) * steps_per_epoch)
    return np.array(
        [
            warmup_cosine(
                s,
                base_lr=float(config["lr"]),
                warmup_steps=warmup,
                total_steps=total,
                min_lr=float(config.get("min_lr", 0.0)),
            )
            for s in range(total)
        ]
    )


def plot_lr(
    config: Mapping[str, Any],
    steps_per_epoch: int,
    history: Sequence[Mapping[str, float]] = (),
) -> Figure:
    """The learning rate per step (linear warmup, then cosine), with the value the history
    recorded at each epoch's last step drawn on top as a check.

    Parameters
    ----------
    config : Mapping of str to Any
        The stored training config (see `lr_per_step`).
    steps_per_epoch : int
        Optimizer steps per epoch.
    history : Sequence of Mapping of str to float, default=()
        One row per epoch with ``epoch`` and ``lr``; empty draws the schedule alone.

    Returns
    -------
    Figure
        The plot.
    """
    lrs = lr_per_step(config, steps_per_epoch)
    with style():
        fig = new_figure(SIZES["lr"])
        ax = fig.add_subplot()
        ax.plot(np.arange(len(lrs)), lrs, color=TRAIN_COLOR, lw=2, label="schedule (per step)")
        if history:
            steps = [int(r["epoch"]) * steps_per_epoch - 1 for r in history]
            ax.plot(
                steps,
                [r["lr"] for r in history],
                "o",
                ms=5,
                mfc="white",
                color=VAL_COLOR,
                label="recorded at each epoch's end",
            )
        warm = round(float(config["warmup_epochs"]) * steps_per_epoch)
        if warm:
            ax.axvspan(0, warm, color="#ffbf00", alpha=0.15, lw=0, label=f"warmup ({warm} steps)")
        ax.set(
            title=f"Learning rate per step (peak {float(config['lr']):g}, "
            f"{steps_per_epoch} steps per epoch)",
            xlabel="optimizer step",
            ylabel="learning rate",
        )
        ax.set_xlim(-0.01 * len(lrs), 1.01 * max(1, len(lrs)))
        ax.set_ylim(0, float(config["lr"]) * 1.08)

        def to_epoch(step: Any) -> Any:
            return step / steps_per_epoch

        def to_step(epoch: Any) -> Any:
            return epoch * steps_per_epoch

        top = ax.secondary_xaxis("top", functions=(to_epoch, to_step))
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        top.set_xlabel("epoch")
        ax.legend(loc="upper right")
    return fig
