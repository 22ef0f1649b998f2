"""The configuration of a run: every hyperparameter, checked, and the random streams it seeds."""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handnet.data.augment import AugmentSpec
from handnet.data.geometry import Geometry
from handnet.errors import ConfigError, ModelFileError
from handnet.nn.layers import ACTIVATIONS
from handnet.train.classifier import Classifier
from handnet.train.device import DEVICES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# The groups of `handnet train --help`, in this order; every TrainConfig field names its own.
GROUPS = (
    "data",
    "model",
    "optimizer and schedule",
    "regularization",
    "augmentation",
    "output and runs",
)


def option(
    default: Any,
    help: str,
    *,
    group: str,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    negatable: bool = False,
) -> Any:
    """A TrainConfig field that carries the one description of its setting.

    ``handnet train`` builds its flag from it (``--`` and the name with dashes, the help, the
    group of --help, the metavar), and the CLI reference in the docs is printed from the same
    metadata.

    ``choices`` are only shown (the metavar becomes ``{a,b}``): the check stays in
    `TrainConfig.__post_init__`, whose error names the setting as a recipe does. A bool field is
    an on/off switch; ``negatable`` adds a ``--no-`` form, for switches a recipe may turn on.

    Parameters
    ----------
    default : object
        The field's default value.
    help : str
        The flag's help, one sentence without a final period.
    group : str
        Its group in ``handnet train --help``, one of `GROUPS`.
    metavar : str, optional
        The value's name in --help (``N``, ``LR``); None: argparse's default.
    choices : tuple of str, default=()
        Values to show in --help as the metavar ``{a,b}`` (not checked here).
    negatable : bool, default=False
        For a bool field: add a ``--no-`` flag as well.

    Returns
    -------
    dataclasses.Field
        The field, its default set and the above in its ``metadata``.
    """
    assert group in GROUPS, group
    if choices:
        metavar = "{" + ",".join(choices) + "}"
    meta = {"help": help, "group": group, "metavar": metavar, "negatable": negatable}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a run, checked when it is made.

    The CLI flags, recipes and the search all produce one. Each field's `option` metadata is the
    one description of that setting, which --help and the CLI reference print: a field is the
    flag ``--`` and its name with dashes (``batch_size``: ``--batch-size``). The list below
    says the same.

    Parameters
    ----------
    dataset : str, default="mnist"
        mnist, fashion-mnist, kmnist, or a path: .npz, .mat, .csv (Kaggle's layout), a
        directory of IDX files, or a folder of images with one subfolder per class.
    deskew : bool, default=False
        Shear every digit upright first; a model trained so records it and does the same to
        every image it is given.
    width_normalize : int, default=0
        Then scale every digit horizontally to this many pixels of ink (0: off, else 2 to 28;
        Meier et al. 2011 used 10 to 20); recorded and applied like ``deskew``.
    hidden_sizes : tuple of int, default=(1024,)
        Hidden layer widths, first to last ((800, 800) for two layers).
    activation : {"tanh", "relu"}, default="tanh"
        The hidden layers' activation (tanh is the seed's).
    dropout : float, default=0.2
        Drop probability after each hidden activation (inverted dropout), in [0, 1).
    epochs : int, default=20
        Passes over the training split.
    batch_size : int, default=128
        Minibatch size (one larger than the training set is the whole set).
    lr : float, default=0.05
        Peak learning rate, reached at the end of warmup; a cosine then takes it to ``min_lr``.
    min_lr : float, default=0.0
        Learning rate at the end of the cosine, in [0, lr] (0 is the seed's schedule).
    warmup_epochs : float, default=1.0
        Length of the linear warmup, in epochs (fractions allowed), in [0, epochs].
    momentum : float, default=0.9
        Heavy-ball momentum coefficient (beta in the seed's formula), in [0, 1).
    nesterov : bool, default=False
        Nesterov momentum instead of heavy-ball (needs ``momentum`` above 0).
    weight_decay : float, default=1e-4
        L2 coefficient lambda in (lambda/2) sum ||W||^2, on the weights only (not the biases).
    val_size : int, default=5000
        Stratified validation images carved from the training set (0: none).
    seed : int, default=0
        Seed of every random stream (split, init, shuffle, dropout, augmentation).
    split_seed : int or None, default=None
        Seed of the train/validation split alone (None: ``seed``); models with one split seed
        hold out the same validation images, so their committee can be judged on them.
    aug_rotate : float, default=0.0
        Random rotation of each training image, angle in [-DEG, DEG], DEG in [0, 180].
    aug_scale : float, default=0.0
        Random scaling, factor in [1 - S, 1 + S] per axis, S in [0, 1).
    aug_shift : float, default=1.0
        Random translation, up to this many pixels per axis (0: off), in [0, 14].
    aug_shear : float, default=0.0
        Random shear, angle in [-DEG, DEG], DEG in [0, 90).
    aug_elastic_alpha : float, default=0.0
        Strength of Simard's elastic distortions (34 in the 2003 paper; 0: off).
    aug_elastic_sigma : float, default=4.0
        Smoothness of the elastic distortions, in pixels (Simard's sigma).
    augment_copies : int, default=0
        Append K augmented copies of the training set once, before training (the seed's way),
        instead of transforming every batch anew (0).
    aug_thread : bool, default=False
        Prepare augmented batches in a background thread (pays only with a free core).
    finetune : bool, default=False
        After training, refit the output layer by least squares; kept only if validation
        accuracy does not drop.
    finetune_ridge : float, default=1.0
        Ridge R added to sum x x^T in the least-squares refit of the output layer.
    device : {"cpu", "cuda", "cupy", "torch", "torch-cuda", "array-api-strict"}, default="cpu"
        Where the math runs: cpu (NumPy), or cuda, the GPU through CuPy (or PyTorch's CUDA
        tensors); see `handnet.train.device`.

    Raises
    ------
    ConfigError
        Naming the first setting of the wrong type or out of its range, and why.
    """

    dataset: str = option(
        "mnist",
        "mnist, fashion-mnist, kmnist, or a path: .npz, .mat, .csv (Kaggle's layout), a "
        "directory of IDX files, or a folder of images with one subfolder per class",
        group="data",
        metavar="NAME|PATH",
    )
    # Shape normalization before anything else (handnet.data.geometry): shear every image upright,
    # then scale each digit's width to width_normalize pixels (0: keep). The model file records both
    # and applies them to what it is given to predict. configs/simard-800.toml deskews.
    deskew: bool = option(
        False,
        "shear every digit upright first; a model trained so records it and does the same to "
        "every image it is given",
        group="data",
        negatable=True,
    )
    width_normalize: int = option(
        0,
        "then scale every digit horizontally to PX pixels of ink (0: off, else 2 to 28; Meier et "
        "al. 2011 used 10 to 20); recorded and applied like --deskew",
        group="data",
        metavar="PX",
    )
    # The defaults were chosen on the validation split: one tanh layer like the seed, 1024 wide,
    # with light dropout, L2 and 1 px shifts, reaches 98.89% test accuracy in 20 epochs of ~2 s.
    hidden_sizes: tuple[int, ...] = option(
        (1024,),
        "hidden layer widths, comma-separated (800,800 for two layers)",
        group="model",
        metavar="N[,N...]",
    )
    activation: str = option(
        "tanh",
        "the hidden layers' activation (tanh is the seed's)",
        group="model",
        choices=tuple(ACTIVATIONS),
    )
    dropout: float = option(
        0.2,
        "drop probability after each hidden activation (inverted dropout), in [0, 1)",
        group="regularization",
        metavar="P",
    )
    epochs: int = option(
        20, "passes over the training split", group="optimizer and schedule", metavar="N"
    )
    batch_size: int = option(
        128,
        "minibatch size (one larger than the training set is the whole set)",
        group="optimizer and schedule",
        metavar="N",
    )
    lr: float = option(
        0.05,
        "peak learning rate, reached at the end of warmup; a cosine then takes it to --min-lr",
        group="optimizer and schedule",
        metavar="LR",
    )
    min_lr: float = option(
        0.0,
        "learning rate at the end of the cosine, in [0, --lr] (0 is the seed's schedule)",
        group="optimizer and schedule",
        metavar="LR",
    )
    warmup_epochs: float = option(
        1.0,
        "length of the linear warmup, in epochs (fractions allowed)",
        group="optimizer and schedule",
        metavar="E",
    )
    momentum: float = option(
        0.9,
        "heavy-ball momentum coefficient (beta in the seed's formula), in [0, 1)",
        group="optimizer and schedule",
        metavar="BETA",
    )
    nesterov: bool = option(
        False,
        "Nesterov momentum instead of heavy-ball (needs --momentum above 0)",
        group="optimizer and schedule",
    )
    weight_decay: float = option(
        1e-4,
        "L2 coefficient lambda in (lambda/2) sum ||W||^2, on the weights only (not the biases)",
        group="regularization",
        metavar="LAMBDA",
    )
    val_size: int = option(
        5000,
        "stratified validation images carved from the training set (0: none)",
        group="data",
        metavar="N",
    )
    seed: int = option(
        0,
        "seed of every random stream (split, init, shuffle, dropout, augmentation)",
        group="output and runs",
        metavar="N",
    )
    # The split alone can come from another seed (None: ``seed``): models of different seeds with
    # one split_seed hold out the same validation images, so their committee can be judged on it.
    split_seed: int | None = option(
        None,
        "seed of the train/validation split alone (default: --seed); models with one split seed "
        "hold out the same validation images, so their committee can be judged on them",
        group="output and runs",
        metavar="N",
    )
    # Augmentation (handnet.data.augment), drawn from the augment stream; all 0 is none. With
    # augment_copies = 0 every batch is transformed anew on the fly; with K > 0 the training set
    # gets K transformed copies appended once, before training (the seed's way), and no more.
    aug_rotate: float = option(
        0.0,
        "random rotation of each training image, angle in [-DEG, DEG]",
        group="augmentation",
        metavar="DEG",
    )
    aug_scale: float = option(
        0.0,
        "random scaling, factor in [1 - S, 1 + S] per axis",
        group="augmentation",
        metavar="S",
    )
    # One pixel of random shift is on by default: chosen on the validation split, it takes the
    # default model from 98.34% to 98.78% validation accuracy; inline it costs about 0.8 s per epoch
    # on the 2-core VM (20 epochs: 34-42 s of training instead of about 20 s).
    aug_shift: float = option(
        1.0,
        "random translation, up to PX pixels per axis (0: off)",
        group="augmentation",
        metavar="PX",
    )
    aug_shear: float = option(
        0.0,
        "random shear, angle in [-DEG, DEG]",
        group="augmentation",
        metavar="DEG",
    )
    aug_elastic_alpha: float = option(
        0.0,
        "strength of Simard's elastic distortions (34 in the 2003 paper; 0: off)",
        group="augmentation",
        metavar="A",
    )
    aug_elastic_sigma: float = option(
        4.0,
        "smoothness of the elastic distortions, in pixels (Simard's sigma)",
        group="augmentation",
        metavar="S",
    )
    augment_copies: int = option(
        0,
        "append K augmented copies of the training set once, before training (the seed's way), "
        "instead of transforming every batch anew",
        group="augmentation",
        metavar="K",
    )
    aug_thread: bool = option(
        False,
        "prepare augmented batches in a background thread (pays only with a free core)",
        group="augmentation",
    )
    # Least-squares refit of the output layer after training (handnet.nn.finetune), kept only if the
    # validation accuracy does not drop.
    finetune: bool = option(
        False,
        "after training, refit the output layer by least squares; kept only if validation "
        "accuracy does not drop",
        group="optimizer and schedule",
    )
    finetune_ridge: float = option(
        1.0,
        "ridge R added to sum x x^T in the least-squares refit of the output layer",
        group="optimizer and schedule",
        metavar="R",
    )
    # Where the math runs (handnet.train.device): the same hand-written code on NumPy or on a
    # GPU's arrays. The model file is the same either way, and predicts on the CPU.
    device: str = option(
        "cpu",
        "cpu (NumPy), or cuda: the GPU through CuPy (or PyTorch's CUDA tensors); "
        "also cupy, torch, torch-cuda, array-api-strict",
        group="model",
        metavar="DEVICE",
    )

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
            ("device", self.device in DEVICES, f"must be one of {', '.join(DEVICES)}"),
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
        """The shape normalization that ``deskew`` and ``width_normalize`` ask for."""
        return Geometry(deskew=self.deskew, width=self.width_normalize)

    def augment_spec(self) -> AugmentSpec:
        """The augmentation of the ``aug_*`` settings.

        Returns
        -------
        AugmentSpec
            Rotation, scaling, shift, shear and elastic distortion; inactive when all are 0.
        """
        return AugmentSpec(
            rotate=self.aug_rotate,
            scale=self.aug_scale,
            shift=self.aug_shift,
            shear=self.aug_shear,
            elastic_alpha=self.aug_elastic_alpha,
            elastic_sigma=self.aug_elastic_sigma,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name, as config.toml, checkpoints and model files store it.

        Returns
        -------
        dict of str to object
            Plain TOML and JSON values (``hidden_sizes`` a list); ``split_seed`` is left out
            when it is None.
        """
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        if self.split_seed is None:  # TOML has no null; absent means "the run's seed"
            del d["split_seed"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        """A config from settings by name (a recipe, a stored config); absent ones take defaults.

        Parameters
        ----------
        d : dict of str to object
            Settings by field name, as `to_dict` gives them.
        where : str, default="config"
            Where they come from, to begin the error message with (a file's path).

        Returns
        -------
        TrainConfig
            The checked config.

        Raises
        ------
        ConfigError
            Naming ``where`` and the unknown or invalid setting.
        """
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
        """The config ``clf`` was trained with, as its file stores it.

        Parameters
        ----------
        clf : Classifier
            A model read from a file (`handnet.train.modelfile.load_model`).

        Returns
        -------
        TrainConfig
            The stored config.

        Raises
        ------
        ModelFileError
            If the file stores no config or an invalid one: the file is bad.
        """
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
    """Independent random streams, so that e.g. turning dropout on does not change the init.

    Parameters
    ----------
    split : numpy.random.Generator
        Draws the train/validation split.
    init : numpy.random.Generator
        Draws the initial weights.
    shuffle : numpy.random.Generator
        Draws each epoch's order of the training rows.
    dropout : numpy.random.Generator
        Draws the dropout masks.
    augment : numpy.random.Generator
        Draws the augmentation's transforms.
    """

    split: np.random.Generator
    init: np.random.Generator
    shuffle: np.random.Generator
    dropout: np.random.Generator
    augment: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> Rngs:
        """Five independent streams spawned from one seed (`numpy.random.Generator.spawn`).

        Parameters
        ----------
        seed : int
            The run's seed.

        Returns
        -------
        Rngs
            New streams.
        """
        return cls(*np.random.default_rng(seed).spawn(5))

    @classmethod
    def for_config(cls, cfg: TrainConfig) -> Rngs:
        """``from_seed(cfg.seed)``, except the split stream when ``cfg.split_seed`` is set.

        Parameters
        ----------
        cfg : TrainConfig
            The run's config.

        Returns
        -------
        Rngs
            New streams; ``split`` is ``from_seed(cfg.split_seed).split`` if that is set.
        """
        rngs = cls.from_seed(cfg.seed)
        if cfg.split_seed is not None:
            rngs.split = cls.from_seed(cfg.split_seed).split
        return rngs


def load_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file (a recipe, a search space), or one line saying why not.

    Parameters
    ----------
    path : Path
        The TOML file.

    Returns
    -------
    dict of str to object
        Its tables and values, unchecked.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable, not UTF-8 or not valid TOML.
    """
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    except UnicodeDecodeError as e:  # TOML is UTF-8 text; a binary file fails before parsing
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}), so not TOML") from None
