"""The pictures of one run: curves, learned weights, test confusion, mistakes, activations.

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
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter

from handnet.nn.schedules import warmup_cosine
from handnet.report.preview import mosaic

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
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_STYLE):
        yield


def new_figure(size: tuple[float, float]) -> Figure:
    """A Figure on its own Agg canvas (no pyplot), laid out so nothing is clipped."""
    with _style():
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: float = DPI) -> bytes:
    """Render ``fig`` as PNG, then free it. No tight bbox: the pixel size is figsize * dpi. The
    run's figures come from `new_figure`; one made elsewhere (the search's) gets an Agg canvas."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself to the figure
    buf = io.BytesIO()
    with _style():
        fig.savefig(buf, format="png", dpi=dpi)
    fig.clear()
    return buf.getvalue()


def _epochs(history: Sequence[Mapping[str, float]]) -> list[int]:
    return [int(r["epoch"]) for r in history]


def _has(history: Sequence[Mapping[str, float]], key: str) -> bool:
    return any(math.isfinite(float(r.get(key, float("nan")))) for r in history)


def plot_loss(history: Sequence[Mapping[str, float]]) -> Figure:
    """Cross-entropy per epoch: training (mean over the epoch's batches, dropout on, plus the L2
    term) and validation (eval mode, after the epoch). Log scale: late epochs stay visible."""
    with _style():
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
            _log_y(ax)
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


def _log_y(ax: Any) -> None:
    """Log y axis with plain labels at each power of ten, and at 2, 3 and 5 times it over two
    decades or less, 2 and 5 times it over four: a loss that ends between 0.01 and 0.1 is read
    off labels of its own decade, not guessed below the 0.1 line. Wider, the powers alone."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_formatter(FuncFormatter(_plain))
    if hi / lo <= 1e4:
        ax.yaxis.set_minor_formatter(_minor_labels((2, 3, 5) if hi / lo <= 100 else (2, 5)))
        ax.grid(True, which="minor", alpha=0.12)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def plot_accuracy(history: Sequence[Mapping[str, float]]) -> Figure:
    """Accuracy per epoch, training (with dropout on) and validation, in percent."""
    with _style():
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
    """The learning rate of every optimizer step, recomputed with the training loop's schedule."""
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
    recorded at each epoch's last step drawn on top as a check."""
    lrs = lr_per_step(config, steps_per_epoch)
    with _style():
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


def tile_shape(image_shape: Sequence[int], n_features: int) -> tuple[int, int]:
    """How one input vector is drawn: the image's (H, W), or a (1, D) strip for non-images."""
    dims = [int(d) for d in image_shape if int(d) != 1]
    if len(dims) == 2 and dims[0] * dims[1] == n_features:
        return dims[0], dims[1]
    return 1, n_features


def plot_first_layer(
    W: npt.NDArray[np.floating], image_shape: Sequence[int], max_units: int = 100
) -> Figure:
    """The first layer's weights W (D, H), one image per hidden unit: the input pattern that
    unit responds to. The units with the largest weight norm are shown, on one shared scale
    centred at 0 (red pushes the unit up, blue down)."""
    D, H = W.shape
    h, w = tile_shape(image_shape, D)
    norms = np.linalg.norm(W, axis=0)
    units = np.argsort(-norms, kind="stable")[: min(max_units, H)]
    tiles = W[:, units].T.reshape(len(units), h, w)
    cols = math.ceil(math.sqrt(len(units))) if h > 1 else 1
    vmax = float(np.abs(tiles).max()) or 1.0
    with _style():
        fig = new_figure(SIZES["weights_first"])
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps[DIVERGING].with_extremes(bad="#d9d9d9")
        im = ax.imshow(
            mosaic(tiles, cols),
            cmap=cmap,
            vmin=-vmax,
            vmax=vmax,
            interpolation="nearest",
            aspect="equal" if h > 1 else "auto",
        )
        ax.set_axis_off()
        shown = f"all {H} hidden units" if len(units) == H else f"{len(units)} of {H} hidden units"
        ax.set_title(f"First-layer weights: {shown}, largest norm first")
        cb = fig.colorbar(im, ax=ax, shrink=0.7, pad=0.02)
        cb.set_label("weight (one scale for every unit, 0 = white)")
    return fig


def plot_output_layer(
    W: npt.NDArray[np.floating], b: npt.NDArray[np.floating], classes: Sequence[str]
) -> Figure:
    """The output layer's weights W (H, C) as a class x hidden-unit map, units ordered by the
    class they vote for most, and the biases b (C,) beside it."""
    H, C = W.shape
    order = np.lexsort((-W.max(axis=1), W.argmax(axis=1)))  # group units by their favourite class
    vmax = float(np.abs(W).max()) or 1.0
    with _style():
        fig = new_figure(SIZES["weights_output"])
        ax, axb = fig.subplots(1, 2, width_ratios=[6, 1], sharey=True)
        im = ax.imshow(
            W[order].T,
            cmap=DIVERGING,
            vmin=-vmax,
            vmax=vmax,
            aspect="auto",
            interpolation="nearest",
        )
        ax.set_yticks(range(C), [str(c) for c in classes])
        ax.set(
            title=f"Output-layer weights ({H} hidden units x {C} classes)",
            xlabel="hidden unit (grouped by the class it votes for most)",
            ylabel="class",
        )
        ax.grid(False)
        cb = fig.colorbar(im, ax=ax, location="bottom", shrink=0.6, aspect=40)
        cb.set_label("weight (0 = white)")
        colors = ["#d62728" if v > 0 else "#1f77b4" for v in b]
        axb.barh(range(C), b, color=colors)
        axb.axvline(0, color="black", lw=0.8)
        axb.set(title="bias", xlabel="value")
        axb.grid(True, axis="x")
        axb.grid(False, axis="y")
    return fig


def plot_confusion(confusion: npt.NDArray[np.integer], classes: Sequence[str]) -> Figure:
    """The test confusion matrix (rows: true class, columns: predicted), counts in every cell.
    The colour is on a log scale so that the few mistakes are visible next to the diagonal."""
    cm = np.asarray(confusion)
    C = cm.shape[0]
    n, right = int(cm.sum()), int(np.trace(cm))
    with _style():
        fig = new_figure(SIZES["confusion"])
        ax = fig.add_subplot()
        shown = np.ma.masked_equal(cm, 0)
        im = ax.imshow(
            shown,
            cmap=COUNTS,
            norm=LogNorm(vmin=1, vmax=max(2, int(cm.max()))),
            interpolation="nearest",
        )
        ax.grid(False)
        labels = [str(c) for c in classes]
        long = max(map(len, labels)) > 3  # names like "T-shirt/top" are slanted to fit
        ax.set_xticks(
            range(C), labels, rotation=40 if long else 0, ha="right" if long else "center"
        )
        ax.set_yticks(range(C), labels)
        if C <= 20:
            threshold = math.sqrt(max(2, int(cm.max())))
            for i in range(C):
                for j in range(C):
                    if cm[i, j]:
                        ax.text(
                            j,
                            i,
                            str(cm[i, j]),
                            ha="center",
                            va="center",
                            fontsize=9 if C <= 10 else 7,
                            color="white" if cm[i, j] > threshold else "black",
                        )
        acc = right / n if n else float("nan")
        ax.set(
            title=f"Test confusion matrix: {acc:.2%} of {n:,} right",
            xlabel="predicted class",
            ylabel="true class",
        )
        cb = fig.colorbar(im, ax=ax, shrink=0.8)
        cb.set_label("images (log scale)")
    return fig


def most_confident_mistakes(
    probs: npt.NDArray[np.floating], y: npt.NDArray[np.integer], n: int
) -> npt.NDArray[np.intp]:
    """Indices of up to ``n`` misclassified rows, the most confident (highest max-probability) first."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    conf = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-conf, kind="stable")[:n]]


def plot_mistakes(
    images: npt.NDArray[np.floating],
    y: npt.NDArray[np.integer],
    probs: npt.NDArray[np.floating],
    classes: Sequence[str],
    image_shape: Sequence[int],
    n: int = 24,
) -> Figure:
    """The test images the model got wrong with the highest confidence, each titled with its
    true class, the predicted class and the predicted probability."""
    idx = most_confident_mistakes(probs, y, n)
    pred = probs.argmax(axis=1)
    h, w = tile_shape(image_shape, images.shape[1])
    cols = 6
    rows = max(1, math.ceil(n / cols))
    lo, hi = float(images.min()), float(images.max())
    short = max(len(str(c)) for c in classes) <= 3
    with _style():
        fig = new_figure(SIZES["mistakes"])
        axes = fig.subplots(rows, cols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if k >= len(idx):
                continue
            i = int(idx[k])
            ax.imshow(
                images[i].reshape(h, w),
                cmap="gray_r",
                vmin=lo,
                vmax=hi,
                interpolation="nearest",
                aspect="equal" if h > 1 else "auto",
            )
            p = _probability(probs[i, pred[i]])
            true, guess = classes[y[i]], classes[pred[i]]
            # Digits fit on one line; names like "T-shirt/top" get a line each.
            title = f"true {true} → {guess}" if short else f"true: {true}\npredicted: {guess}"
            ax.set_title(f"{title}\np = {p}", fontsize=10 if short else 9, fontweight="normal")
        n_wrong = int((pred != y).sum())
        fig.suptitle(
            f"Most confident mistakes on test ({len(idx)} of {n_wrong} shown)",
            fontsize=13,
            fontweight="bold",
        )
    return fig


def _probability(p: float) -> str:
    """A percentage with as many decimals as it takes not to round a mistake up to 100%."""
    for digits in range(1, 5):
        text = f"{100 * p:.{digits}f}"
        if not text.startswith("100"):
            return text + "%"
    return "> 99.99%"


def saturation(a: npt.NDArray[np.floating], activation: str) -> tuple[float, npt.NDArray[Any]]:
    """(fraction of all activations that are saturated, per-unit fraction of inputs on which the
    unit is saturated). tanh: |a| > SATURATED (slope < 0.06). relu: a == 0 (no gradient)."""
    sat = np.abs(a) > SATURATED if activation == "tanh" else a <= 0
    return float(sat.mean()), sat.mean(axis=0)


def activations_size(n_layers: int) -> tuple[float, float]:
    return ACTIVATIONS_WIDTH, ACTIVATIONS_ROW_HEIGHT * max(1, n_layers)


def plot_activations(acts: Sequence[npt.NDArray[np.floating]], activation: str) -> Figure:
    """Per hidden layer: the distribution of activation values, and per unit how often it is
    saturated (tanh) or inactive (relu). Many saturated units mean a too-large init or lr."""
    word = "saturated" if activation == "tanh" else "inactive"
    rule = f"|a| > {SATURATED}" if activation == "tanh" else "a = 0"
    with _style():
        fig = new_figure(activations_size(len(acts)))
        axes = fig.subplots(max(1, len(acts)), 2, squeeze=False)
        for k, a in enumerate(acts):
            total, per_unit = saturation(a, activation)
            ax, axu = axes[k]
            values = a.ravel() if activation == "tanh" else a[a > 0]  # relu: zeros in the title
            lo, hi = (-1.0, 1.0) if activation == "tanh" else (0.0, float(a.max()) or 1.0)
            ax.hist(values, bins=80, range=(lo, hi), color=TRAIN_COLOR, density=True)
            if activation == "tanh":
                for edge in (-SATURATED, SATURATED):
                    ax.axvline(edge, color=VAL_COLOR, ls="--", lw=1)
            _log_y(ax)
            ax.set(
                title=f"Layer {k + 1} ({a.shape[1]} units): {total:.1%} of activations {word}",
                xlabel=f"activation a ({activation})"
                + ("" if activation == "tanh" else ", zeros left out"),
                ylabel="density (log scale)",
            )
            axu.hist(per_unit, bins=40, range=(0, 1), color="#7f7f7f")
            mostly = float((per_unit > 0.5).mean())
            always = float((per_unit >= 1.0).mean())
            axu.set(
                title=f"{mostly:.1%} of units {word} on most inputs, {always:.1%} always",
                xlabel=f"fraction of inputs with {rule}",
                ylabel="hidden units",
            )
            for panel in (ax, axu):  # one size for both: long titles, under the figure's own
                panel.title.set_fontsize(PANEL_TITLE_SIZE)
        fig.suptitle(
            f"Hidden activations on {acts[0].shape[0] if acts else 0:,} test images",
            fontsize=13,
            fontweight="bold",
        )
    return fig
