"""handnet: hand-written NumPy multilayer perceptrons for MNIST-style data."""

from handnet.data import Dataset, load_dataset
from handnet.errors import ConfigError, DatasetError, HandnetError, ModelFileError, TrainingDiverged
from handnet.io import load_model, save_model
from handnet.model import MLP, Classifier
from handnet.predict import Prediction, predict_images
from handnet.preprocess import ImageError, load_image, preprocess_digit
from handnet.runs import train_run
from handnet.train import Rngs, TrainConfig, TrainState, evaluate, fit
from handnet.version import __version__

__all__ = [
    "MLP",
    "Classifier",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "HandnetError",
    "ImageError",
    "ModelFileError",
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
    "save_model",
    "train_run",
]
