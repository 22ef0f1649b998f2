"""Every plot of one run, drawn from what a model file stores plus a test split.

A `RunView` is a trained `Classifier` (its metadata holds the config, the per-epoch history and
the metrics) together with standardized test inputs. ``handnet train`` builds one from the data it
already has; ``handnet plot``/``handnet report`` build one from a model file alone, reloading the
test split of the dataset named in its metadata (or another one given with ``--dataset``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from handnet.files import atomic_write_bytes
from handnet.nn.layers import ReLU, Tanh
from handnet.nn.losses import softmax
from handnet.report import model_plots, plots
from handnet.train.classifier import Classifier
from handnet.train.heldout import data_source
from handnet.train.modelfile import load_model
from handnet.train.rundir import run_model

ACTIVATION_SAMPLE = 2000  # test images whose hidden activations are histogrammed

# File name (without .png) -> (title, caption). The order is the report's order.
PLOTS: dict[str, tuple[str, str]] = {
    "loss": (
        "Loss",
        "Training loss is the mean over each epoch's batches, with dropout on and the L2 term "
        "added; validation loss is measured after the epoch, in eval mode.",
    ),
    "accuracy": (
        "Accuracy",
        "Training accuracy is counted during the epoch with dropout on, so it can sit below "
        "validation accuracy.",
    ),
    "lr": (
        "Learning rate",
        "Recomputed per step from the stored config (linear warmup, then cosine); the dots are "
        "the values the training loop recorded at each epoch's end.",
    ),
    "weights_first": (
        "First-layer weights",
        "Each tile is the input pattern one hidden unit responds to, on one colour scale centred "
        "at zero.",
    ),
    "weights_output": (
        "Output-layer weights",
        "How strongly each hidden unit votes for each class, and the class biases.",
    ),
    "confusion": (
        "Confusion matrix (test)",
        "Rows are true classes, columns predictions; off-diagonal cells are the mistakes.",
    ),
    "mistakes": (
        "Most confident mistakes (test)",
        "The misclassified test images with the highest predicted probability.",
    ),
    "activations": (
        "Hidden activations",
        "For tanh, saturated units (|a| > 0.97) pass almost no gradient; a large share points to "
        "a too-large initialisation or learning rate. For relu, units that are 0 on every input "
        "are dead.",
    ),
}


@dataclass
class RunView:
    """A trained classifier and the standardized test split its pictures are drawn from.

    Parameters
    ----------
    clf : Classifier
        The trained classifier; its metadata holds the config, the per-epoch history and the
        metrics.
    X_test : ndarray of float32, shape (N, D)
        The test inputs, standardized like the training data (``clf.prepare``).
    y_test : ndarray of int64, shape (N,)
        Their true class indices.
    test_source : str
        The dataset name or path the test split came from.
    """

    clf: Classifier
    X_test: npt.NDArray[np.float32]  # (N, D), standardized like the training data
    y_test: npt.NDArray[np.int64]  # (N,)
    test_source: str  # the dataset name or path the test split came from

    @property
    def meta(self) -> dict[str, Any]:
        """The model file's metadata (the classifier's own dict, not a copy)."""
        return self.clf.meta

    @property
    def history(self) -> list[dict[str, float]]:
        """One row per epoch (epoch, losses, accuracies, lr, seconds); empty if none stored."""
        return list(self.meta.get("history") or [])

    @property
    def config(self) -> dict[str, Any]:
        """The training config the run stored (a copy); empty if none."""
        return dict(self.meta.get("config") or {})

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's final metrics (a copy); empty if none."""
        return dict(self.meta.get("metrics") or {})

    @cached_property
    def probs(self) -> npt.NDArray[np.float32]:
        """Class probabilities of the test inputs, (N, C), computed once."""
        return softmax(self.clf.net.predict_logits(self.X_test))

    @cached_property
    def confusion(self) -> npt.NDArray[np.int64]:
        """Test confusion counts, (C, C): rows the true class, columns the prediction."""
        C = len(self.clf.classes)
        pred = self.probs.argmax(axis=1)
        return np.bincount(self.y_test * C + pred, minlength=C * C).reshape(C, C)

    def steps_per_epoch(self) -> int | None:
        """The optimizer steps per epoch, as the training loop took them.

        ceil(train size / batch size), as in the training loop; older files: steps / epochs.

        Returns
        -------
        int or None
            The steps per epoch, or None when the stored metrics and config cannot tell.
        """
        m, cfg = self.metrics, self.config
        if m.get("train_size") and cfg.get("batch_size"):
            return math.ceil(int(m["train_size"]) / int(cfg["batch_size"]))
        if m.get("steps") and m.get("epochs"):
            return int(m["steps"]) // int(m["epochs"])
        return None


def hidden_activations(clf: Classifier, X: npt.NDArray[np.float32]) -> list[npt.NDArray[Any]]:
    """The output of every hidden activation layer (eval mode) for inputs X.

    Parameters
    ----------
    clf : Classifier
        The trained classifier whose network is run.
    X : ndarray of float32, shape (N, D)
        Standardized inputs.

    Returns
    -------
    list of ndarray, each of shape (N, H)
        One array per tanh or relu layer, in order; H is that layer's width. Copies: the
        layers' buffers are reused by the next forward.
    """
    out = []
    for layer in clf.net.layers:
        X = layer.forward(X, train=False)
        if isinstance(layer, (Tanh, ReLU)):
            out.append(X.copy())  # the layer's buffer is reused by the next forward
    return out


def draw(view: RunView) -> dict[str, bytes]:
    """Every plot this run's stored data allows, as PNG bytes keyed by name (see `PLOTS`).

    The loss and accuracy curves need a history, the learning-rate plot a config with the
    schedule and a known number of steps per epoch, the first-layer weights and the
    activations a hidden layer; the output-layer weights, the confusion matrix and the
    mistakes are always drawn.

    Parameters
    ----------
    view : RunView
        The trained classifier and the test split the plots are drawn on.

    Returns
    -------
    dict of str to bytes
        PNG bytes keyed by plot name, in the order of `PLOTS`.
    """
    clf, history, config = view.clf, view.history, view.config
    dense = clf.net.dense_layers()
    figures: dict[str, Any] = {}
    if history:
        figures["loss"] = lambda: plots.plot_loss(history)
        figures["accuracy"] = lambda: plots.plot_accuracy(history)
    spe = view.steps_per_epoch()
    if spe and {"lr", "epochs", "warmup_epochs"} <= set(config):
        figures["lr"] = lambda: plots.plot_lr(config, spe, history)
    if len(dense) > 1:
        figures["weights_first"] = lambda: model_plots.plot_first_layer(
            dense[0].params["W"], clf.image_shape
        )
    figures["weights_output"] = lambda: model_plots.plot_output_layer(
        dense[-1].params["W"], dense[-1].params["b"], clf.classes
    )
    figures["confusion"] = lambda: model_plots.plot_confusion(view.confusion, clf.classes)
    figures["mistakes"] = lambda: model_plots.plot_mistakes(
        view.X_test,  # standardized with scalars: an affine map of the pixels, drawn the same
        view.y_test,
        view.probs,
        clf.classes,
        clf.image_shape,
    )
    if len(dense) > 1:
        acts = hidden_activations(clf, view.X_test[:ACTIVATION_SAMPLE])
        figures["activations"] = lambda: model_plots.plot_activations(acts, clf.net.activation)
    return {name: plots.png_bytes(figures[name]()) for name in PLOTS if name in figures}


def write(pngs: dict[str, bytes], out_dir: str | Path) -> list[Path]:
    """Write ``<name>.png`` files into ``out_dir`` (atomically, each; the directory is made).

    Parameters
    ----------
    pngs : dict of str to bytes
        PNG bytes keyed by plot name, as `draw` returns them.
    out_dir : str or Path
        The directory the files go into.

    Returns
    -------
    list of Path
        The files written, in the order of ``pngs``.
    """
    out = Path(out_dir)
    return [atomic_write_bytes(out / f"{name}.png", data) for name, data in pngs.items()]


def load_view(
    model: str | Path,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    mirror: str | None = None,
) -> RunView:
    """Load a model file (or a run directory, or RUNS/latest) and the test split the plots are
    drawn from.

    Parameters
    ----------
    model : str or Path
        A model file, a run directory, or ``RUNS/latest`` (see `handnet.train.rundir.run_model`).
    dataset : str or None, optional
        The dataset name or path whose test split is used; by default the one named in the
        model's metadata (``mnist`` if none).
    data_dir : str or Path or None, optional
        Where the dataset files are; by default the folder the run used, while it exists.
    mirror : str or None, optional
        Where to download the dataset from; by default the one the run used.

    Returns
    -------
    RunView
        The classifier and the test split, standardized as in training.

    Raises
    ------
    ModelFileError
        When the model file is missing or not a valid handnet file.
    DatasetError
        When the dataset cannot be loaded, or the model cannot score it (another number of
        pixels, or labels beyond its classes).
    """
    from handnet.data import load_splits

    clf = load_model(run_model(model))
    source = dataset or str(clf.meta.get("dataset", "mnist"))
    splits, _ = load_splits(source, *data_source(clf, data_dir, mirror))
    y = splits.y_test.astype(np.int64)
    clf.check_data(source, splits.X_test, y)
    return RunView(clf, clf.prepare(splits.X_test), y, source)
