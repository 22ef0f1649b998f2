"""A run's settings as a person reads them: the report's configuration table and ``handnet info``.

Only the settings in effect are listed (no elastic sigma without elastic distortions, no ridge
without the refit), in the order and groups of ``handnet train --help``, booleans as yes/no.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from handnet.data.augment import AugmentSpec
from handnet.train.config import GROUPS, TrainConfig

# The settings in the order of `handnet train --help`: by group, then as TrainConfig has them.
ORDER = [
    f.name for g in GROUPS for f in dataclasses.fields(TrainConfig) if f.metadata["group"] == g
]
# The settings that switch an augmentation on (elastic sigma only shapes the elastic one).
AUGMENTING = [f"aug_{f.name}" for f in dataclasses.fields(AugmentSpec) if f.name != "elastic_sigma"]


def idle_settings(config: Mapping[str, Any]) -> set[str]:
    """The settings of ``config`` that change nothing, given the others.

    The elastic sigma without an elastic alpha, the augmentation copies and thread without
    an augmentation, the ridge without the refit, Nesterov without momentum, the split seed
    without a validation split.

    Parameters
    ----------
    config : Mapping of str to Any
        A stored training config, by setting name.

    Returns
    -------
    set of str
        The names of the idle settings (some may be absent from ``config``).
    """
    idle = set()
    if not config.get("aug_elastic_alpha"):
        idle.add("aug_elastic_sigma")
    if not any(config.get(name) for name in AUGMENTING):
        idle |= {"augment_copies", "aug_thread"}
    if not config.get("finetune"):
        idle.add("finetune_ridge")
    if not config.get("momentum"):
        idle.add("nesterov")
    if not config.get("val_size", 1):
        idle.add("split_seed")  # there is no split to seed
    return idle


def shown_value(value: Any) -> str:
    """A setting's value as the tables show it.

    yes/no, ``800, 800``, else as TOML would write it.

    Parameters
    ----------
    value : Any
        The stored value: a bool, a list or tuple, or a scalar.

    Returns
    -------
    str
        ``yes`` or ``no`` for a bool, the items joined by ``", "`` for a list or tuple, else
        ``str(value)``.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def settings_in_effect(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(setting, value) rows of a stored config: those in effect, in --help's order.

    A setting this version does not know (a newer file's) comes last, as it is.

    Parameters
    ----------
    config : Mapping of str to Any
        A stored training config, by setting name.

    Returns
    -------
    list of tuple of (str, str)
        (name, value as `shown_value` writes it) for every setting that is not idle (see
        `idle_settings`).
    """
    idle = idle_settings(config)
    names = [n for n in ORDER if n in config] + sorted(n for n in config if n not in ORDER)
    return [(n, shown_value(config[n])) for n in names if n not in idle]
