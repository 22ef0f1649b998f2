"""The project's own error types: one base class so the CLI can turn any of them into one line."""


def install_extra(extra: str) -> str:
    """The command that adds an optional part of handnet, which installs from its checkout.

    Parameters
    ----------
    extra : str
        The name of the optional dependency group in ``pyproject.toml``, such as ``"sklearn"``.

    Returns
    -------
    str
        The advice, as ``pip install -e '.[sklearn]' in handnet's directory``.
    """
    return f"pip install -e '.[{extra}]' in handnet's directory"


class HandnetError(Exception):
    """A user-facing problem (bad file, bad flag, diverged run). The CLI prints it on one line."""


class DatasetError(HandnetError):
    """A dataset file is missing, malformed, truncated or fails its checksum."""


class ModelFileError(HandnetError):
    """A model file is not a valid handnet safetensors file."""


class ConfigError(HandnetError, ValueError):
    """A hyperparameter or recipe value is out of range."""


class TrainingDiverged(HandnetError):
    """The loss or the weights became NaN or inf during training."""


class CheckpointError(HandnetError):
    """A checkpoint is missing, corrupt, or belongs to another dataset."""


class RunInterrupted(HandnetError):
    """SIGINT or SIGTERM stopped a run after a checkpoint was written; ``signum`` says which.

    Parameters
    ----------
    message : str
        The one line the CLI prints.
    signum : int
        The signal that stopped the run (``signal.SIGINT`` or ``signal.SIGTERM``).
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
