"""What a trained network learned and where it errs: first- and output-layer weights, the test
confusion matrix, the most confident mistakes, hidden activations. The style, sizes and PNG
rendering are those of `handnet.report.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from handnet.report.plots import (
    ACTIVATIONS_ROW_HEIGHT,
    ACTIVATIONS_WIDTH,
    COUNTS,
    DIVERGING,
    PANEL_TITLE_SIZE,
    SATURATED,
    SIZES,
    TRAIN_COLOR,
    VAL_COLOR,
    log_y,
    new_figure,
    style,
)
from handnet.report.preview import mosaic


def tile_shape(image_shape: Sequence[int], n_features: int) -> tuple[int, int]:
    """How one input vector is drawn: the image's (H, W), or a (1, D) strip for non-images.

    Parameters
    ----------
    image_shape : Sequence of int
        The dataset's image shape, e.g. ``(28, 28)`` or ``(28, 28, 1)``; sizes of 1 are
        ignored.
    n_features : int
        D, the length of one input vector.

    Returns
    -------
    tuple of (int, int)
        (H, W) when the image shape has two sizes other than 1 whose product is D, else
        (1, D).
    """
    dims = [int(d) for d in image_shape if int(d) != 1]
    if len(dims) == 2 and dims[0] * dims[1] == n_features:
        return dims[0], dims[1]
    return 1, n_features


def plot_first_layer(
    W: npt.NDArray[np.floating], image_shape: Sequence[int], max_units: int = 100
) -> Figure:
    """The first layer's weights W (D, H), one image per hidden unit.

    Each image is the input pattern that unit responds to. The units with the largest weight
    norm are shown, on one shared scale centred at 0 (red pushes the unit up, blue down).

    Parameters
    ----------
    W : ndarray of floating, shape (D, H)
        The first dense layer's weights: D inputs, H hidden units.
    image_shape : Sequence of int
        The dataset's image shape, to draw each column as an image (see `tile_shape`).
    max_units : int, default=100
        At most this many units are shown.

    Returns
    -------
    Figure
        The plot.
    """
    D, H = W.shape
    h, w = tile_shape(image_shape, D)
    norms = np.linalg.norm(W, axis=0)
    units = np.argsort(-norms, kind="stable")[: min(max_units, H)]
    tiles = W[:, units].T.reshape(len(units), h, w)
    cols = math.ceil(math.sqrt(len(units))) if h > 1 else 1
    vmax = float(np.abs(tiles).max()) or 1.0
    with style():
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
    """The output layer's weights W (H, C) as a class x hidden-unit map, and the biases beside it.

    The units are ordered by the class they vote for most.

    Parameters
    ----------
    W : ndarray of floating, shape (H, C)
        The output layer's weights: H hidden units, C classes.
    b : ndarray of floating, shape (C,)
        The output layer's biases.
    classes : Sequence of str
        The class names, by class index.

    Returns
    -------
    Figure
        The plot.
    """
    H, C = W.shape
    order = np.lexsort((-W.max(axis=1), W.argmax(axis=1)))  # group units by their favourite class
    vmax = float(np.abs(W).max()) or 1.0
    with style():
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

    The colour is on a log scale so that the few mistakes are visible next to the diagonal.
    The counts are written in the cells when there are 20 classes or fewer.

    Parameters
    ----------
    confusion : ndarray of integer, shape (C, C)
        Counts: row the true class, column the predicted one.
    classes : Sequence of str
        The class names, by class index.

    Returns
    -------
    Figure
        The plot.
    """
    cm = np.asarray(confusion)
    C = cm.shape[0]
    n, right = int(cm.sum()), int(np.trace(cm))
    with style():
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
    """Indices of up to ``n`` misclassified rows, the most confident first.

    The confidence is the probability of the predicted class (the highest of the row).

    Parameters
    ----------
    probs : ndarray of floating, shape (N, C)
        Predicted class probabilities.
    y : ndarray of integer, shape (N,)
        True class indices.
    n : int
        At most this many indices are returned.

    Returns
    -------
    ndarray of intp, shape (k,)
        Row indices into ``probs``, ``k = min(n, number of mistakes)``; ties keep row order.
    """
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
    """The test images the model got wrong with the highest confidence.

    Each is titled with its true class, the predicted class and the predicted probability.
    All are drawn on one gray scale, from the lowest to the highest value of ``images``.

    Parameters
    ----------
    images : ndarray of floating, shape (N, D)
        The test inputs, flat; standardized ones draw the same as the pixels (an affine map).
    y : ndarray of integer, shape (N,)
        True class indices.
    probs : ndarray of floating, shape (N, C)
        Predicted class probabilities.
    classes : Sequence of str
        The class names, by class index.
    image_shape : Sequence of int
        The dataset's image shape (see `tile_shape`).
    n : int, default=24
        At most this many mistakes are shown, 6 a row.

    Returns
    -------
    Figure
        The plot.
    """
    idx = most_confident_mistakes(probs, y, n)
    pred = probs.argmax(axis=1)
    h, w = tile_shape(image_shape, images.shape[1])
    cols = 6
    rows = max(1, math.ceil(n / cols))
    lo, hi = float(images.min()), float(images.max())
    short = max(len(str(c)) for c in classes) <= 3
    with style():
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
    """How much of a hidden layer is saturated: in all, and per unit.

    tanh: |a| > SATURATED (slope < 0.06). relu: a == 0 (no gradient); a <= 0 is counted.

    Parameters
    ----------
    a : ndarray of floating, shape (N, H)
        One hidden layer's activations for N inputs.
    activation : str
        ``"tanh"``; any other name is treated as relu.

    Returns
    -------
    total : float
        The fraction of all activations that are saturated.
    per_unit : ndarray of float64, shape (H,)
        For each unit, the fraction of inputs on which it is saturated.
    """
    sat = np.abs(a) > SATURATED if activation == "tanh" else a <= 0
    return float(sat.mean()), sat.mean(axis=0)


def activations_size(n_layers: int) -> tuple[float, float]:
    """The size of `plot_activations`'s figure: one row of panels per hidden layer.

    Parameters
    ----------
    n_layers : int
        The number of hidden layers (at least one row is drawn).

    Returns
    -------
    tuple of (float, float)
        Width and height in inches.
    """
    return ACTIVATIONS_WIDTH, ACTIVATIONS_ROW_HEIGHT * max(1, n_layers)


def plot_activations(acts: Sequence[npt.NDArray[np.floating]], activation: str) -> Figure:
    """Per hidden layer: the distribution of activation values, and per unit how often it is
    saturated (tanh) or inactive (relu).

    Many saturated units mean a too-large init or lr. For relu, the zeros are left out of the
    histogram and counted in its title.

    Parameters
    ----------
    acts : Sequence of ndarray, each of shape (N, H)
        Each hidden layer's activations for the same N inputs (see
        `handnet.report.run_plots.hidden_activations`); H may differ between layers.
    activation : str
        ``"tanh"`` or ``"relu"``.

    Returns
    -------
    Figure
        The plot.
    """
    word = "saturated" if activation == "tanh" else "inactive"
    rule = f"|a| > {SATURATED}" if activation == "tanh" else "a = 0"
    with style():
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
            log_y(ax)
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
