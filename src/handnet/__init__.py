"""handnet: hand-written NumPy multilayer perceptrons for MNIST-style data."""

from typing import Any

from handnet.data import Dataset, load_dataset
from handnet.errors import ConfigError, DatasetError, HandnetError, ModelFileError, TrainingDiverged
from handnet.images.numbers import DigitReading, NumberReading, read_number
from handnet.images.predict import Prediction, predict_images
from handnet.images.preprocess import ImageError, load_image, preprocess_digit
from handnet.nn.model import MLP
from handnet.report import publish
from handnet.train import runs
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, evaluate, fit
from handnet.train.modelfile import load_model, save_model
from handnet.train.runs import RunResult
from handnet.version import __version__

__all__ = [
    "MLP",
    "Classifier",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DigitReading",
    "HandnetError",
    "ImageError",
    "ModelFileError",
    "NumberReading",
    "Prediction",
    "Rngs",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "__version__",
    "evaluate",
    "fit",
    "load_dataset",
    "load_image",
    "load_model",
    "predict_images",
    "preprocess_digit",
    "read_number",
    "save_model",
    "train_run",
]


def train_run(cfg: TrainConfig, **kwargs: Any) -> RunResult:
    """Train ``cfg`` and write its run folder, plots and ``report.html`` included.

    This is what ``handnet train`` does. It is `handnet.train.runs.train_run` with ``publish``
    set, so the run folder also gets its plots and report.

    Parameters
    ----------
    cfg : TrainConfig
        The hyperparameters and the dataset to train on.
    **kwargs : Any
        The keyword arguments of `handnet.train.runs.train_run` (``out``, ``data``,
        ``data_dir``, ``mirror``, ``progress``, ``callbacks``, ``checkpoint_every``, ``stop``,
        ``publish``).

    Returns
    -------
    RunResult
        The run folder, the model file's path, the trained classifier and the final metrics.
    """
    kwargs.setdefault("publish", publish)
    return runs.train_run(cfg, **kwargs)
