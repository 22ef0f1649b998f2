"""Hyperparameter search on Optuna: one study in an SQL database, any number of worker processes.

Every worker (``--jobs`` processes here, or ``handnet search`` on other machines pointed at the
same ``--storage``) loads the data once, then loops: ask the study for a trial, train it while
reporting validation accuracy per epoch (so the pruner can stop it), save its model under
``runs/<study>/trials/`` (recorded relative to the study's folder, so that the folder reads the
same from any working directory, or moved), and tell the study. The trial budget ``--trials N``
counts trials in the study, across runs and workers, so re-running a killed search finishes the
same N.

Ctrl-C stops a worker at its trial's next epoch end (the trial is failed as "interrupted");
after a ``kill -9``, `handnet.search.storage` fails the trial left RUNNING when the search
starts again.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from handnet.data import Dataset
from handnet.errors import ConfigError, HandnetError, TrainingDiverged
from handnet.files import atomic_write_text
from handnet.search.space import SearchSpace
from handnet.search.storage import (
    open_storage,
    redact,
    retry_setup,
    worker_tags,
)
from handnet.train.classifier import Classifier
from handnet.train.config import Rngs, TrainConfig
from handnet.train.fit import TrainState, evaluate, fit
from handnet.train.interrupt import StopSignals
from handnet.train.modelfile import save_model
from handnet.train.rundir import history_csv, run_name
from handnet.train.runs import load_run_data, prepare_augmentation


@dataclass(frozen=True)
class SearchConfig:
    """How to search (the what is a `SearchSpace` laid over a base `TrainConfig`).

    Parameters
    ----------
    study : str, default="search"
        The study's name; its folder is ``out / study``.
    storage : str, default=""
        A database URL (``sqlite:///FILE`` or ``postgresql://...``); empty means
        ``sqlite:///OUT/search.db``.
    trials : int or None, default=20
        The trial budget, counted over the whole study, across runs and workers (see
        `counts_toward_budget`); None for no limit.
    timeout : float or None, default=None
        Seconds after which this run starts no new trial; None for no limit.
    sampler : str, default="tpe"
        ``tpe`` or ``random`` (the seed's method); see `make_sampler`.
    pruner : str, default="median"
        ``median``, ``halving`` or ``none``; see `make_pruner`.
    jobs : int, default=1
        Worker processes on this machine.
    sampler_seed : int or None, default=None
        The sampler's seed; None gives fresh entropy per worker.
    out : Path, default=Path("runs")
        The folder that holds the study's folder (and the default SQLite database).
    progress : bool, default=True
        Print one line per finished trial on stderr.

    Raises
    ------
    ConfigError
        When trials or jobs is below 1, the timeout is not positive, or the sampler or pruner
        is unknown.
    """

    study: str = "search"
    storage: str = ""  # a database URL; empty: sqlite:///OUT/search.db
    trials: int | None = 20  # budget counted over the whole study, across runs and workers
    timeout: float | None = None  # seconds after which this run starts no new trial
    sampler: str = "tpe"  # tpe or random (the seed's method)
    pruner: str = "median"  # median, halving or none
    jobs: int = 1  # worker processes on this machine
    sampler_seed: int | None = None  # None: fresh entropy per worker
    out: Path = Path("runs")
    progress: bool = True  # one line per finished trial on stderr

    def __post_init__(self) -> None:
        if not self.storage:
            object.__setattr__(self, "storage", f"sqlite:///{self.out / 'search.db'}")
        if self.trials is not None and self.trials < 1:
            raise ConfigError(f"--trials {self.trials}: must be >= 1")
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"--timeout {self.timeout}: must be > 0 seconds")
        if self.sampler not in ("tpe", "random"):
            raise ConfigError(f"--sampler {self.sampler!r}: must be tpe or random")
        if self.pruner not in ("median", "halving", "none"):
            raise ConfigError(f"--pruner {self.pruner!r}: must be median, halving or none")
        if self.jobs < 1:
            raise ConfigError(f"--jobs {self.jobs}: must be >= 1")

    @property
    def study_dir(self) -> Path:
        """The study's folder, ``out / study``: its trials, best model and report."""
        return self.out / self.study


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler that proposes each trial's hyperparameters.

    ``tpe`` draws 10 random trials first (the seed's method), then TPE (multivariate), with
    a constant liar so that parallel workers do not propose the point another worker is
    already training.

    Parameters
    ----------
    name : str
        ``random``, or any other name for TPE (`SearchConfig` admits ``tpe``).
    seed : int or None
        The sampler's seed; None for fresh entropy.

    Returns
    -------
    optuna.samplers.BaseSampler
        A `RandomSampler` or a `TPESampler`.
    """
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # 10 random trials first (the seed's method), then TPE; constant_liar keeps parallel workers
    # from proposing the point another worker is already training.
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=10, multivariate=True, constant_liar=True
    )


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner that stops unpromising trials at an epoch's end.

    ``median`` stops a trial whose epoch-k accuracy is below the median of earlier trials at
    epoch k, once 5 trials have finished; ``halving`` is successive halving (from epoch 1,
    reduction factor 3).

    Parameters
    ----------
    name : str
        ``median``, ``halving``, or any other name for no pruning (`SearchConfig` admits
        ``none``).

    Returns
    -------
    optuna.pruners.BasePruner
        A `MedianPruner`, a `SuccessiveHalvingPruner` or a `NopPruner`.
    """
    if name == "median":
        # Stop a trial whose epoch-k accuracy is below the median of earlier trials at epoch k,
        # once 5 trials have finished; from epoch 1 on (a trial reports after each epoch k >= 1).
        return optuna.pruners.MedianPruner(n_startup_trials=5)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _setup(space: SearchSpace, base: TrainConfig) -> dict[str, Any]:
    """What defines a study's trials; a resumed command must match it."""
    return {"space": space.to_dict(), "base": base.to_dict()}


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x))


def open_study(
    cfg: SearchConfig,
    storage: RDBStorage,
    *,
    space: SearchSpace | None = None,
    base: TrainConfig | None = None,
    sampler_seed: int | None = None,
    create: bool = True,
) -> optuna.Study:
    """Create or load ``cfg.study``; on resume check that the space and base config are the same.

    The first run stores the space and the base config in the study (user attribute
    ``setup``); a setting added to handnet since then is taken at its default.

    Parameters
    ----------
    cfg : SearchConfig
        The study's name, its sampler, pruner and storage URL (for messages).
    storage : RDBStorage
        The opened storage (`handnet.search.storage.open_storage`).
    space : SearchSpace or None, optional
        The search space; with ``base``, checked against (or stored as) the study's setup.
    base : TrainConfig or None, optional
        The settings the space is laid over.
    sampler_seed : int or None, optional
        The sampler's seed; None for fresh entropy.
    create : bool, default=True
        Create the study if missing; False only loads it.

    Returns
    -------
    optuna.Study
        The study, maximizing validation accuracy.

    Raises
    ------
    HandnetError
        When ``create`` is False and there is no such study, or creating it keeps failing.
    ConfigError
        When the study was started with another space or base config; the message names the
        settings that differ.
    """
    sampler, pruner = make_sampler(cfg.sampler, sampler_seed), make_pruner(cfg.pruner)
    if not create:
        try:
            return optuna.load_study(
                study_name=cfg.study, storage=storage, sampler=sampler, pruner=pruner
            )
        except KeyError:
            raise HandnetError(
                f"--study {cfg.study}: no such study in {redact(cfg.storage)}"
            ) from None
    study = retry_setup(
        f"--study {cfg.study}",
        lambda: optuna.create_study(
            study_name=cfg.study,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=True,
        ),
    )
    if space is not None and base is not None:
        want = _jsonable(_setup(space, base))
        have = study.user_attrs.get("setup")
        if have is None:
            study.set_user_attr("setup", want)
            return study
        # a setting added since the study began (deskew, width_normalize) ran with its default
        have = {**have, "base": {**_jsonable(TrainConfig().to_dict()), **have["base"]}}
        if have != want:
            diff = sorted(
                k
                for part in ("space", "base")
                for k in set(have[part]) | set(want[part])
                if have[part].get(k) != want[part].get(k)
            )
            raise ConfigError(
                f"--study {cfg.study}: was started with other settings ({', '.join(diff)}); "
                "run the same command to resume, or pick a new --study"
            )
    return study


def load_study(cfg: SearchConfig) -> optuna.Study:
    """An existing study, for reading: creates no database, no table and no study.

    Parameters
    ----------
    cfg : SearchConfig
        The study's name and storage.

    Returns
    -------
    optuna.Study
        The study.

    Raises
    ------
    HandnetError
        When there is no such database or study.
    ConfigError
        When the storage URL is not of a supported database.
    """
    return open_study(cfg, open_storage(cfg.storage, create=False), create=False)


def counts_toward_budget(t: FrozenTrial) -> bool:
    """Finished, running, or diverged trials count; killed, interrupted and skipped ones do not.

    Parameters
    ----------
    t : FrozenTrial
        A trial of the study.

    Returns
    -------
    bool
        True for a complete, pruned or running trial, or a failed one that diverged.
    """
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return t.state == TrialState.FAIL and "diverged" in t.user_attrs


def n_counted(study: optuna.Study, before: int | None = None) -> int:
    """How many of the study's trials count toward the budget (`counts_toward_budget`).

    Parameters
    ----------
    study : optuna.Study
        The study.
    before : int or None, optional
        Count only the trials numbered below this; None counts all.

    Returns
    -------
    int
        The number of trials counted.
    """
    return sum(
        counts_toward_budget(t)
        for t in study.get_trials(deepcopy=False)
        if before is None or t.number < before
    )


def load_search_data(base: TrainConfig, data_dir: Path | None, mirror: str | None) -> Dataset:
    """The same split ``handnet train --seed`` makes, so a trial can be re-run as a training run.

    Parameters
    ----------
    base : TrainConfig
        The settings that decide the data: dataset, validation size, seed, shape
        normalization.
    data_dir : Path or None
        Where the dataset files are.
    mirror : str or None
        Where to download the dataset from.

    Returns
    -------
    Dataset
        The standardized training, validation and test splits.
    """
    return load_run_data(base, Rngs.for_config(base).split, data_dir, mirror)


# -------------------------------------------------------------------------------------- objective


def ctrl_c(*, second_stops_now: bool = True) -> StopSignals:
    """Ctrl-C as a request: the trial stops at its next epoch's end (`StopSignals.check`).

    A second Ctrl-C stops at once, except in worker processes, whose parent decides.

    Parameters
    ----------
    second_stops_now : bool, default=True
        Whether a second Ctrl-C raises `KeyboardInterrupt` at once; off in worker processes.

    Returns
    -------
    StopSignals
        The handler of SIGINT, to be entered as a context manager.
    """
    return StopSignals(
        (signal.SIGINT,),
        second_stops_now=second_stops_now,
        notice="handnet search: stopping at the end of this epoch",
    )


@dataclass
class Objective:
    """Train one trial: validation accuracy of its final model, reported per epoch for pruning.

    Called with an Optuna trial, it draws the trial's config, trains it on ``data`` (reporting
    validation accuracy after each epoch, so the pruner can stop it), saves the run under
    ``study_dir/trials/`` and returns the validation accuracy. A trial that diverged, or that
    another worker made over budget, returns NaN (Optuna marks it FAIL) with the reason in
    its user attributes.

    Parameters
    ----------
    data : Dataset
        The split every trial trains on, loaded once per worker (`load_search_data`).
    space : SearchSpace
        The hyperparameters to draw.
    base : TrainConfig
        The settings the draw is laid over.
    study_dir : Path
        The study's folder; each completed trial's run directory goes to
        ``study_dir/trials/``.
    budget : int or None, optional
        The study's trial budget; a trial started once it is reached is skipped (and
        ``budget_reached`` set). None for no budget.
    stop : StopSignals or None, optional
        Checked at each epoch's end: a Ctrl-C stops the trial there.
    """

    data: Dataset  # loaded once per worker
    space: SearchSpace
    base: TrainConfig
    study_dir: Path  # each completed trial's run directory goes to study_dir/trials/
    budget: int | None = None
    stop: StopSignals | None = None
    budget_reached: bool = field(default=False, init=False)

    def __call__(self, trial: Trial) -> float:
        try:
            return self._run(trial)
        except KeyboardInterrupt:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            raise

    def _run(self, trial: Trial) -> float:
        for k, v in worker_tags().items():  # already there, unless an enqueued trial was popped
            trial.set_user_attr(k, v)
        if self.budget is not None and n_counted(trial.study, before=trial.number) >= self.budget:
            # Another worker took the last trial between our check and our ask.
            self.budget_reached = True
            trial.set_user_attr("skipped", "trial budget already reached")
            return math.nan  # Optuna marks a NaN value FAIL
        cfg = self.space.config(trial, self.base)
        t0 = time.perf_counter()

        def report(state: TrainState, record: dict[str, float]) -> None:
            trial.report(record["val_acc"], state.epoch)
            if self.stop is not None:
                self.stop.check()
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"val accuracy {record['val_acc']:.2%} at epoch {state.epoch}"
                )

        rngs = Rngs.for_config(cfg)
        data, batches = prepare_augmentation(cfg, self.data, rngs)  # as a plain run would
        state = TrainState.fresh(cfg, data.n_features, data.n_classes, rngs)
        try:
            fit(state, data, cfg, progress=False, callbacks=(report,), batch_source=batches)
        except TrainingDiverged as e:
            trial.set_user_attr("diverged", str(e))
            trial.set_user_attr("fail_reason", f"diverged: {e}")
            return math.nan
        val = evaluate(state.model, self.data.X_val, self.data.y_val)
        seconds = time.perf_counter() - t0
        metrics = {
            "val_accuracy": val.accuracy,
            "val_loss": val.loss,
            "best_epoch_val_accuracy": max(r["val_acc"] for r in state.history),
            "epochs": state.epoch,
            "train_seconds": sum(r["seconds"] for r in state.history),
        }
        path = self._save(trial, cfg, state, metrics)
        trial.set_user_attr("model", path.relative_to(self.study_dir).as_posix())
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("seconds", seconds)
        return val.accuracy

    def _save(
        self, trial: Trial, cfg: TrainConfig, state: TrainState, metrics: dict[str, Any]
    ) -> Path:
        """The run directory `handnet train` writes, minus the test set (only the best sees it)."""
        from datetime import timezone

        import tomli_w

        name = run_name()
        clf = Classifier(
            state.model,
            self.data.norm,
            self.data.classes,
            self.data.image_shape,
            meta={
                "dataset": self.data.name,
                "config": cfg.to_dict(),
                "history": state.history,
                "metrics": {"run": name, **metrics},
                "study": trial.study.study_name,
                "trial": trial.number,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            geometry=self.data.geometry,
        )
        run_dir = self.study_dir / "trials" / name
        run_dir.mkdir(parents=True, exist_ok=False)
        path = save_model(clf, run_dir / f"{name}.safetensors")
        atomic_write_text(run_dir / "history.csv", history_csv(state.history))
        atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        atomic_write_text(run_dir / "config.toml", tomli_w.dumps(cfg.to_dict()))
        return path
