"""The hyperparameters a search varies, their ranges, and how a trial's draw becomes a TrainConfig.

A space file is TOML with one ``[params.<name>]`` table per searched hyperparameter and an optional
``[fixed]`` table of settings every trial shares::

    [params.lr]                      # float by default
    low = 1e-3
    high = 0.5
    log = true                       # log-uniform: equal mass per decade
    [params.hidden_units]            # one hidden layer of this width (the seed's network)
    type = "int"
    low = 32
    high = 1024
    log = true
    [params.activation]
    choices = ["tanh", "relu"]
    [fixed]
    dropout = 0.0

A name is ``hidden_units`` or any `TrainConfig` field (lr, weight_decay, dropout, momentum,
batch_size, ...), except the settings that decide the data: every trial trains on the one split the
search loads from its flags (``--dataset``, ``--val-size``, ``--seed``, ``--deskew``,
``--width-normalize``), so a space may neither search nor fix them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handnet.errors import ConfigError
from handnet.train.config import TrainConfig, load_config_file

# Settings that decide the data every trial shares, each with the search flag that sets it.
DATA_SETTINGS = {
    "dataset": "--dataset",
    "val_size": "--val-size",
    "seed": "--seed",
    "split_seed": "--seed",
    "deskew": "--deskew",
    "width_normalize": "--width-normalize",
}
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - set(DATA_SETTINGS)
_NAMES = (_FIELDS - {"hidden_sizes"}) | {"hidden_units"}
_WHOLE = {f.name for f in dataclasses.fields(TrainConfig) if f.type == "int"} | {"hidden_units"}


def _check_not_data(name: str, where: str) -> None:
    if name in DATA_SETTINGS:
        raise ConfigError(
            f"{where}: {name!r} decides the data that every trial shares; "
            f"set it with handnet search {DATA_SETTINGS[name]}"
        )


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter: a float or int range (optionally log) or a list of choices.

    Parameters
    ----------
    name : str
        ``hidden_units`` or a `TrainConfig` field; it is also the name of the trial's
        parameter in the study.
    kind : str
        ``"float"``, ``"int"`` or ``"choice"``.
    low : float, default=0.0
        The lowest value of a range (inclusive).
    high : float, default=0.0
        The highest value of a range (inclusive).
    log : bool, default=False
        Draw a range log-uniformly (equal mass per decade); then ``low > 0``.
    choices : tuple of Any, default=()
        The values of a ``"choice"`` parameter.
    """

    name: str
    kind: str  # "float", "int" or "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter's value for ``trial``.

        Parameters
        ----------
        trial : optuna.Trial
            The trial the value is drawn for (and recorded in).

        Returns
        -------
        Any
            A float, an int, or one of ``choices``.
        """
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        """The parameter as its ``[params.<name>]`` table of a space file.

        Returns
        -------
        dict of str to Any
            ``{"choices": [...]}``, or ``type``, ``low``, ``high`` and ``log`` for a range.
        """
        if self.kind == "choice":
            return {"choices": list(self.choices)}
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class SearchSpace:
    """The hyperparameters a search varies, and the settings every trial shares.

    Parameters
    ----------
    params : tuple of Param
        The searched hyperparameters.
    fixed : tuple of tuple of (str, Any), default=()
        (setting, value) pairs every trial shares, sorted by setting.
    """

    params: tuple[Param, ...]
    fixed: tuple[tuple[str, Any], ...] = ()  # settings shared by every trial

    def config(self, trial: Any, base: TrainConfig) -> TrainConfig:
        """Draw every parameter from ``trial`` and lay the draw over ``base`` and ``fixed``.

        ``hidden_units`` becomes one hidden layer of that width.

        Parameters
        ----------
        trial : optuna.Trial
            The trial the values are drawn for.
        base : TrainConfig
            The settings the search was started with; ``fixed`` and the draw override them.

        Returns
        -------
        TrainConfig
            The trial's config.

        Raises
        ------
        ConfigError
            When the resulting config is not valid.
        """
        values = base.to_dict() | dict(self.fixed)
        for p in self.params:
            v = p.suggest(trial)
            if p.name == "hidden_units":
                values["hidden_sizes"] = [v]
            else:
                values[p.name] = v
        return TrainConfig.from_dict(values, where=f"trial {getattr(trial, 'number', '?')}")

    def to_dict(self) -> dict[str, Any]:
        """The space as a space file's tables (`space_from_dict` reads it back).

        Returns
        -------
        dict of str to Any
            ``{"params": {name: table, ...}, "fixed": {setting: value, ...}}``.
        """
        return {"params": {p.name: p.to_dict() for p in self.params}, "fixed": dict(self.fixed)}


# The default space: the seed's three (lr, L2, width) plus the three knobs the core added.
DEFAULT_SPACE = SearchSpace(
    (
        Param("lr", "float", 1e-3, 0.5, log=True),
        Param("weight_decay", "float", 1e-6, 1e-2, log=True),
        Param("hidden_units", "int", 32, 1024, log=True),
        Param("dropout", "float", 0.0, 0.5),
        Param("momentum", "float", 0.5, 0.99),
        Param("batch_size", "int", 32, 512, log=True),
    )
)


def _param(name: str, spec: Any, where: str) -> Param:
    _check_not_data(name, where)
    if name not in _NAMES:
        raise ConfigError(f"{where}: unknown parameter {name!r}; known: {sorted(_NAMES)}")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: [params.{name}] must be a table")
    unknown = sorted(set(spec) - {"type", "low", "high", "log", "choices"})
    if unknown:
        raise ConfigError(f"{where}: [params.{name}] has unknown key(s) {unknown}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: [params.{name}] choices must be a non-empty list")
        for c in choices:  # each must make a valid config on its own
            setting = {"hidden_sizes": [c]} if name == "hidden_units" else {name: c}
            TrainConfig.from_dict(
                TrainConfig().to_dict() | setting, where=f"{where} [params.{name}]"
            )
        return Param(name, "choice", choices=tuple(choices))
    kind = spec.get("type", "float")
    if kind not in ("float", "int"):
        raise ConfigError(f"{where}: [params.{name}] type must be float or int, not {kind!r}")
    if name in _WHOLE and kind != "int":
        raise ConfigError(f'{where}: [params.{name}] is a whole number; add type = "int"')
    try:
        low, high = spec["low"], spec["high"]
    except KeyError as e:
        raise ConfigError(f"{where}: [params.{name}] needs {e.args[0]} (or choices)") from None
    num = (int,) if kind == "int" else (int, float)
    if not all(isinstance(v, num) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"{where}: [params.{name}] low and high must be {kind} numbers")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: [params.{name}] log must be true or false")
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ConfigError(f"{where}: [params.{name}] needs finite low <= high, got {low}, {high}")
    if log and low <= 0:
        raise ConfigError(f"{where}: [params.{name}] a log range needs low > 0, got {low}")
    return Param(name, kind, low, high, log)


def space_from_dict(d: dict[str, Any], where: str = "space") -> SearchSpace:
    """Read and check a search space from a space file's tables.

    Each parameter's range or choices is checked, and ``fixed`` must make a valid config on
    its own; no setting that decides the data (`DATA_SETTINGS`) may be searched or fixed.

    Parameters
    ----------
    d : dict of str to Any
        The parsed file: ``params`` (a table per searched name) and optionally ``fixed``.
    where : str, default="space"
        What the errors name as the source (the file's path).

    Returns
    -------
    SearchSpace
        The space, its fixed settings sorted by name.

    Raises
    ------
    ConfigError
        For an unknown table, parameter, key or setting, an empty or invalid range, a name both
        searched and fixed, or a data setting.
    """
    unknown = sorted(set(d) - {"params", "fixed"})
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {unknown}; expected [params.*] and [fixed]")
    params = d.get("params", {})
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{where}: no [params.<name>] tables; nothing to search")
    fixed = d.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ConfigError(f"{where}: [fixed] must be a table")
    for k in fixed:
        _check_not_data(k, where)
        if k not in _FIELDS:
            raise ConfigError(f"{where}: [fixed] unknown setting {k!r}; known: {sorted(_FIELDS)}")
        if k in params:
            raise ConfigError(f"{where}: {k!r} is both searched and fixed")
    if "hidden_units" in params and "hidden_sizes" in fixed:
        raise ConfigError(f"{where}: hidden_units is searched, so hidden_sizes cannot be fixed")
    space = SearchSpace(
        tuple(_param(n, s, where) for n, s in params.items()), tuple(sorted(fixed.items()))
    )
    TrainConfig.from_dict(TrainConfig().to_dict() | dict(space.fixed), where=f"{where} [fixed]")
    return space


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a space file (TOML; see the module's docstring for its form).

    Parameters
    ----------
    path : str or Path
        The space file.

    Returns
    -------
    SearchSpace
        The space it describes.

    Raises
    ------
    ConfigError
        When the file cannot be read or parsed, or describes no valid space.
    """
    return space_from_dict(load_config_file(Path(path)), where=str(path))
