"""The search's worker processes: each loads the data once and runs trials until the budget, the
deadline or Ctrl-C; `search` starts ``--jobs`` of them here and waits.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from handnet.errors import ConfigError, HandnetError
from handnet.search.results import fail_reason, fmt_param
from handnet.search.space import DEFAULT_SPACE, SearchSpace
from handnet.search.storage import fail_dead_local_trials, fail_own_trials, open_storage
from handnet.search.study import (
    Objective,
    SearchConfig,
    ctrl_c,
    load_search_data,
    make_sampler,
    n_counted,
    open_study,
)
from handnet.train.config import TrainConfig
from handnet.train.interrupt import StopSignals


def describe(t: FrozenTrial) -> str:
    """The line a worker prints when a trial finishes (``--quiet`` leaves it out).

    Parameters
    ----------
    t : FrozenTrial
        The finished trial.

    Returns
    -------
    str
        Its number and state, with the validation accuracy and seconds (complete), the last
        epoch (pruned) or the reason (failed), and its hyperparameters.
    """
    params = "  ".join(f"{k}={fmt_param(v)}" for k, v in t.params.items())
    a = t.user_attrs
    if t.state == TrialState.COMPLETE:
        return f"trial {t.number:>3} complete  val {t.value:.2%}  {params}  ({a.get('seconds', 0):.1f}s)"
    if t.state == TrialState.PRUNED:
        last = max(t.intermediate_values, default=0)
        return f"trial {t.number:>3} pruned at epoch {last}  {params}"
    return f"trial {t.number:>3} {t.state.name.lower()}  {fail_reason(t)}  {params}"


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive a ``kill -9``'d parent (Linux: PR_SET_PDEATHSIG = SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def run_worker(
    cfg: SearchConfig,
    space: SearchSpace,
    base: TrainConfig,
    *,
    worker: int = 0,
    deadline: float | None = None,
    data_dir: Path | None = None,
    mirror: str | None = None,
    stop: StopSignals | None = None,
) -> None:
    """One worker: load the data once, then run trials until the budget, the deadline, or Ctrl-C.

    Before each trial, the trials of this host's dead workers are failed. With a sampler seed,
    each worker seeds its sampler from it, its number and the trials so far: reproducible,
    yet distinct per worker and per resume.

    Parameters
    ----------
    cfg : SearchConfig
        How to search: the study, its storage, budget, sampler, pruner.
    space : SearchSpace
        The hyperparameters to draw.
    base : TrainConfig
        The settings the draw is laid over; they also decide the data.
    worker : int, default=0
        The worker's number on this machine (for the sampler's seed).
    deadline : float or None, optional
        A `time.time` after which no new trial starts; None for none.
    data_dir : Path or None, optional
        Where the dataset files are.
    mirror : str or None, optional
        Where to download the dataset from.
    stop : StopSignals or None, optional
        The Ctrl-C handler; by default `handnet.search.study.ctrl_c`.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, once this process's running trials are marked failed.
    HandnetError
        When the storage, the study or the data cannot be opened.
    """
    with stop or ctrl_c() as stop:
        _run_worker(cfg, space, base, worker, deadline, data_dir, mirror, stop)


def _run_worker(
    cfg: SearchConfig,
    space: SearchSpace,
    base: TrainConfig,
    worker: int,
    deadline: float | None,
    data_dir: Path | None,
    mirror: str | None,
    stop: StopSignals,
) -> None:
    storage = open_storage(cfg.storage)
    study = open_study(cfg, storage, space=space, base=base)
    if cfg.sampler_seed is not None:  # reproducible, yet distinct per worker and per resume
        ss = np.random.SeedSequence(
            [cfg.sampler_seed, worker, len(study.get_trials(deepcopy=False))]
        )
        study.sampler = make_sampler(cfg.sampler, int(ss.generate_state(1)[0]))
    data = load_search_data(base, data_dir, mirror)
    objective = Objective(data, space, base, cfg.study_dir, cfg.trials, stop)

    def log(study: optuna.Study, t: FrozenTrial) -> None:
        if cfg.progress:
            print(describe(t), file=sys.stderr, flush=True)

    try:
        while not objective.budget_reached:
            stop.check()
            if cfg.trials is not None and n_counted(study) >= cfg.trials:
                break
            if deadline is not None and time.time() >= deadline:
                break
            fail_dead_local_trials(study, storage)
            study.optimize(objective, n_trials=1, callbacks=[log], gc_after_trial=False)
    except KeyboardInterrupt:  # the objective records it; this catches a second Ctrl-C elsewhere
        fail_own_trials(study, storage, "interrupted (Ctrl-C)")
        raise


def _worker_main(parent: int, worker: int, *args: Any, **kwargs: Any) -> None:
    _die_with_parent(parent)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            run_worker(*args, worker=worker, stop=ctrl_c(second_stops_now=False), **kwargs)
        except HandnetError as e:
            print(f"handnet search: worker {worker}: error: {e}", file=sys.stderr)
            sys.exit(2)


def search(
    cfg: SearchConfig,
    space: SearchSpace = DEFAULT_SPACE,
    base: TrainConfig | None = None,
    *,
    data_dir: Path | None = None,
    mirror: str | None = None,
) -> optuna.Study:
    """Run (or resume) the study with ``cfg.jobs`` workers here; returns the study when they stop.

    One job runs in this process; more run in spawned processes (not threads: the GIL would
    serialize the NumPy glue, and SQLite's locking expects one connection per process), each
    with an equal share of the BLAS threads unless ``OPENBLAS_NUM_THREADS`` is set. Trials
    left RUNNING by this host's killed workers are failed first.

    Parameters
    ----------
    cfg : SearchConfig
        How to search: the study, its storage, budget, sampler, pruner.
    space : SearchSpace, default=DEFAULT_SPACE
        The hyperparameters to draw.
    base : TrainConfig or None, optional
        The settings the draw is laid over; they also decide the data.
        None for the defaults.
    data_dir : Path or None, optional
        Where the dataset files are.
    mirror : str or None, optional
        Where to download the dataset from.

    Returns
    -------
    optuna.Study
        The study, once every worker has stopped.

    Raises
    ------
    ConfigError
        When ``base`` holds out no validation images (trials are ranked on them), or the
        study was started with other settings.
    HandnetError
        When the storage or study cannot be opened, or a worker process failed.
    KeyboardInterrupt
        On Ctrl-C, once the workers have stopped (a second one kills them).
    """
    base = base or TrainConfig()
    if base.val_size == 0:
        raise ConfigError("--val-size 0: a search ranks its trials on validation images; give >= 1")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(cfg.storage)
    study = open_study(cfg, storage, space=space, base=base)
    for n in fail_dead_local_trials(study, storage):
        print(f"trial {n:>3} was left RUNNING by a killed worker: marked failed", file=sys.stderr)
    deadline = time.time() + cfg.timeout if cfg.timeout else None
    kwargs = {"deadline": deadline, "data_dir": data_dir, "mirror": mirror}
    if cfg.jobs == 1:
        run_worker(cfg, space, base, **kwargs)  # type: ignore[arg-type]
        return study
    # Processes, not threads: the GIL would serialize the NumPy glue, and one SQLite connection per
    # process is what its locking expects. Each process gets an equal share of the BLAS threads.
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // cfg.jobs))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker_main, args=(os.getpid(), i, cfg, space, base), kwargs=kwargs, daemon=True
        )
        for i in range(cfg.jobs)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reached the workers too; a `kill -INT` of this process alone did
        # not, so pass it on (a worker takes any number of them as one request to stop). They
        # fail their trials at the next epoch's end and exit; a second Ctrl-C here kills them.
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGINT)
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            for p in procs:
                p.kill()
        raise
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise HandnetError(f"{len(bad)} of {cfg.jobs} workers failed (exit codes {bad})")
    return study
