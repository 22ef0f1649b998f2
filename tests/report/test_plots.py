"""Every plot renders a valid, non-blank PNG of its stated size; the numbers behind them are right."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import tiny_dataset
from matplotlib.figure import Figure
from matplotlib.image import imread

from handnet.data.split import Normalization
from handnet.nn.model import MLP
from handnet.report import model_plots, plots
from handnet.report.run_plots import hidden_activations
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which must come first."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def assert_real_png(data: bytes, size: tuple[int, int]) -> None:
    assert png_size(data) == size
    pixels = imread(io.BytesIO(data), format="png")  # decodes the whole image: not truncated
    assert pixels.shape[:2] == (size[1], size[0])
    rgb = pixels[..., :3]
    assert rgb.std() > 0.05, "the image is (nearly) blank"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50, "too few colours for a real plot"


def history(epochs: int = 6) -> list[dict[str, float]]:
    return [
        {
            "epoch": e,
            "train_loss": 0.5 / e,
            "train_acc": 1 - 0.1 / e,
            "val_loss": 0.4 / e + 0.02 * e,
            "val_acc": 1 - 0.08 / e,
            "lr": 0.05,
            "seconds": 1.0,
        }
        for e in range(1, epochs + 1)
    ]


CONFIG = {"lr": 0.05, "min_lr": 0.0, "epochs": 6, "warmup_epochs": 1.0, "batch_size": 128}
rng = np.random.default_rng(0)
CLASSES = [str(i) for i in range(10)]
PROBS = rng.dirichlet(np.full(10, 0.3), size=300).astype(np.float32)
Y = rng.integers(0, 10, 300)
CONFUSION = np.bincount(Y * 10 + PROBS.argmax(1), minlength=100).reshape(10, 10)

# (name, builder, expected pixel size): the sizes are part of the contract (figsize * DPI).
CASES: list[tuple[str, Callable[[], Figure], tuple[int, int]]] = [
    ("loss", lambda: plots.plot_loss(history()), (800, 500)),
    ("accuracy", lambda: plots.plot_accuracy(history()), (800, 500)),
    ("lr", lambda: plots.plot_lr(CONFIG, 40, history()), (800, 450)),
    (
        "weights_first",
        lambda: model_plots.plot_first_layer(rng.standard_normal((784, 30)), (28, 28)),
        (900, 820),
    ),
    (
        "weights_output",
        lambda: model_plots.plot_output_layer(
            rng.standard_normal((30, 10)), rng.standard_normal(10), CLASSES
        ),
        (1000, 550),
    ),
    ("confusion", lambda: model_plots.plot_confusion(CONFUSION, CLASSES), (800, 750)),
    (
        "mistakes",
        lambda: model_plots.plot_mistakes(rng.random((300, 784)), Y, PROBS, CLASSES, (28, 28)),
        (1000, 780),
    ),
    (
        "activations",
        lambda: model_plots.plot_activations(
            [np.tanh(3 * rng.standard_normal((200, 40))), np.tanh(rng.standard_normal((200, 20)))],
            "tanh",
        ),
        (1100, 720),
    ),
    (
        "activations_relu",
        lambda: model_plots.plot_activations(
            [np.maximum(rng.standard_normal((200, 40)), 0)], "relu"
        ),
        (1100, 360),
    ),
]


@pytest.mark.parametrize(("name", "build", "size"), CASES, ids=[c[0] for c in CASES])
def test_each_plot_is_a_non_blank_png_of_its_size(
    name: str, build: Callable[[], Figure], size: tuple[int, int]
) -> None:
    fig = build()
    texts = [t.get_text() for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
    texts.append(fig.get_suptitle())
    assert any(texts), f"{name} has no title or axis label"
    assert_real_png(plots.png_bytes(fig), size)


def test_png_bytes_renders_at_the_dpi_asked_and_takes_figures_made_without_a_canvas() -> None:
    assert png_size(plots.png_bytes(plots.plot_loss(history()), dpi=50)) == (400, 250)
    bare = Figure(figsize=(3, 2))  # as the search draws its figures: no Agg canvas attached
    bare.add_subplot().plot([0, 1], [1, 0])
    assert png_size(plots.png_bytes(bare, dpi=110)) == (330, 220)


def test_curves_have_labelled_axes_and_legends() -> None:
    for fig in (plots.plot_loss(history()), plots.plot_accuracy(history())):
        ax = fig.axes[0]
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() and ax.get_title()
        legend = ax.get_legend()
        assert legend is not None
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels[0] == "training" and labels[1].startswith("validation")


def test_accuracy_scale_leaves_out_epoch_one_only_when_it_says_so() -> None:
    h = history(8)
    h[0]["train_acc"] = 0.5  # a warmup epoch far below the rest
    ax = plots.plot_accuracy(h).axes[0]
    lo, hi = ax.get_ylim()
    assert 50 < lo < 100 * min(r["val_acc"] for r in h[1:]) and hi <= 100
    assert [t.get_text() for t in ax.texts] == [
        "off the scale: epoch 1 (training 50.0%, validation 92.0%)"
    ]
    short = plots.plot_accuracy(history(3)).axes[0]  # few epochs: everything is shown
    assert short.get_ylim()[0] < 100 * min(r["train_acc"] for r in history(3))
    assert not short.texts


def test_lr_per_step_is_what_the_training_loop_used() -> None:
    data = tiny_dataset(n=50)
    cfg = TrainConfig(hidden_sizes=(4,), epochs=4, batch_size=8, warmup_epochs=1.5, min_lr=0.001)
    state = TrainState.fresh(cfg, data.n_features, data.n_classes, Rngs.from_seed(0))
    fit(state, data, cfg, progress=False)
    spe = math.ceil(50 / 8)
    lrs = plots.lr_per_step(cfg.to_dict(), spe)
    assert len(lrs) == state.step == 4 * spe
    for record in state.history:  # the loop records the lr of each epoch's last step
        assert lrs[int(record["epoch"]) * spe - 1] == record["lr"]
    assert lrs.max() == pytest.approx(cfg.lr) and lrs[0] == pytest.approx(cfg.lr / round(1.5 * spe))


def test_first_layer_shows_the_largest_units_on_one_scale_centred_at_zero() -> None:
    W = np.zeros((784, 150))
    W[:, 7] = 5.0  # the unit with the largest norm, and the largest value
    W[:, 3] = -1.0
    fig = model_plots.plot_first_layer(W, (28, 28), max_units=100)
    im = fig.axes[0].images[0]
    assert im.norm.vmin == -5.0 and im.norm.vmax == 5.0
    assert "100 of 150" in fig.axes[0].get_title()
    mosaic = np.asarray(im.get_array())
    assert mosaic.shape == (10 * 29 - 1, 10 * 29 - 1)
    assert np.all(mosaic[:28, :28] == 5.0) and np.all(mosaic[:28, 29:57] == -1.0)


def test_tile_shape() -> None:
    assert model_plots.tile_shape((28, 28), 784) == (28, 28)
    assert model_plots.tile_shape((28, 28, 1), 784) == (28, 28)
    assert model_plots.tile_shape((20,), 20) == (1, 20)


def test_most_confident_mistakes_in_order() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    y = np.array([0, 0, 1, 0, 0])
    assert model_plots.most_confident_mistakes(probs, y, 5).tolist() == [3, 1, 2]
    assert model_plots.most_confident_mistakes(probs, y, 1).tolist() == [3]


def test_mistake_titles_never_round_a_mistake_up_to_100_percent() -> None:
    probs = np.array([[0.99996, 0.00004], [0.2, 0.8]])
    fig = model_plots.plot_mistakes(
        np.ones((2, 4)), np.array([1, 1]), probs, ["a", "b"], (2, 2), n=6
    )
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true b → a\np = 99.996%"]


def test_saturation_counts() -> None:
    a = np.array([[0.99, 0.0], [-0.98, 0.5], [0.1, 0.2], [0.97, -0.999]])
    total, per_unit = model_plots.saturation(a, "tanh")
    assert total == pytest.approx(3 / 8) and per_unit.tolist() == [0.5, 0.25]
    total, per_unit = model_plots.saturation(np.array([[0.0, 1.0], [0.0, 0.0]]), "relu")
    assert total == pytest.approx(3 / 4) and per_unit.tolist() == [1.0, 0.5]


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_hidden_activations_are_each_layers_output(activation: str) -> None:
    net = MLP(6, (5, 4), 3, activation=activation, dropout=0.5, rng=np.random.default_rng(1))
    clf = Classifier(net, Normalization(0.0, 1.0), ["a", "b", "c"], (6,))
    X = np.random.default_rng(2).standard_normal((7, 6)).astype(np.float32)
    f: Any = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0))
    d0, d1 = net.dense_layers()[:2]
    h1 = f(X @ d0.params["W"] + d0.params["b"])
    h2 = f(h1 @ d1.params["W"] + d1.params["b"])
    acts = hidden_activations(clf, X)
    assert len(acts) == 2
    np.testing.assert_allclose(acts[0], h1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts[1], h2, rtol=1e-5, atol=1e-6)


def _labelled(fig: Figure, ax: Any) -> list[float]:
    """The y values of the log axis's tick labels that are drawn with text, inside its limits."""
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    ticks = ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
    return sorted(t.get_loc() for t in ticks if t.label1.get_text() and lo <= t.get_loc() <= hi)


def test_the_log_loss_axis_has_labels_in_the_decade_of_the_lowest_loss() -> None:
    """Training loss from 2.4 to 0.02 spans more than two decades; the lowest validation loss
    (the star, 0.064) sits below 0.1, and 0.05 and 0.02 are labelled there."""
    hist = [
        {
            "epoch": e,
            "train_loss": 0.02 + 2.4 * math.exp(-(e - 1) / 1.2),
            "val_loss": 0.06 + 0.3 * math.exp(-(e - 1) / 3) + 0.004 * max(0, e - 14),
        }
        for e in range(1, 21)
    ]
    fig = plots.plot_loss(hist)
    labelled = _labelled(fig, fig.axes[0])
    assert [v for v in labelled if v < 0.1] == pytest.approx([0.02, 0.05])
    assert pytest.approx([0.1, 0.2, 0.5, 1.0, 2.0]) == [v for v in labelled if v >= 0.1]


def test_a_confusion_cell_of_one_image_is_visibly_not_white() -> None:
    cm = np.diag([980, 1130, 1020]) + np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    fig = model_plots.plot_confusion(cm, ["0", "1", "2"])
    (im,) = fig.axes[0].get_images()
    one = im.to_rgba(np.ma.masked_equal([[1]], 0))[0, 0, :3]
    assert max(1 - one) > 0.15, one  # a light blue; the empty cells alone are white
    (cell,) = [t for t in fig.axes[0].texts if t.get_text() == "1"]
    assert cell.get_color() == "black"  # its count stays readable


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_activation_panels_titles_are_one_size(activation: str) -> None:
    acts = [np.tanh(rng.standard_normal((200, 16))).astype(np.float32)] * 2
    if activation == "relu":
        acts = [np.maximum(a, 0) for a in acts]
    fig = model_plots.plot_activations(acts, activation)
    titles = [ax.title for ax in fig.axes]
    assert len(titles) == 4 and {(t.get_fontsize(), t.get_fontweight()) for t in titles} == {
        (plots.PANEL_TITLE_SIZE, "bold")
    }
