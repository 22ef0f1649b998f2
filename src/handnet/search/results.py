"""A study's results: the leaderboard, and the best model copied out and evaluated on test once.

A trial's model path is stored relative to the study's folder (``trials/RUN/RUN.safetensors``)
and read against the folder given on the command line (`trial_model`), so a study is read the
same from any working directory, and after the folder is moved.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from handnet.data import load_splits
from handnet.files import atomic_write_bytes, atomic_write_text
from handnet.search.storage import HOST
from handnet.train.fit import evaluate_logits
from handnet.train.modelfile import load_model

BEST_NAME = "best.safetensors"


def state_counts(study: optuna.Study) -> dict[str, int]:
    """How many of the study's trials are in each state.

    Parameters
    ----------
    study : optuna.Study
        The study.

    Returns
    -------
    dict of str to int
        Count by state name in lower case (``complete``, ``fail``, ``running``, ...), sorted
        by name; states no trial is in are left out.
    """
    c = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return dict(sorted(c.items()))


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best validation accuracy first (ties: the earlier trial).

    Parameters
    ----------
    study : optuna.Study
        The study.

    Returns
    -------
    list of FrozenTrial
        The completed trials, ranked.
    """
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: (-(t.value or 0.0), t.number))


def fmt_param(v: Any) -> str:
    """A hyperparameter's value as the tables show it: floats to 3 significant digits.

    Parameters
    ----------
    v : Any
        The value.

    Returns
    -------
    str
        ``f"{v:.3g}"`` for a float, else ``str(v)``.
    """
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def fail_reason(t: FrozenTrial) -> str:
    """Why a trial failed, as recorded (diverged, interrupted, its worker died, skipped).

    Parameters
    ----------
    t : FrozenTrial
        A failed trial.

    Returns
    -------
    str
        Its ``fail_reason`` (or ``skipped``) user attribute; else ``no reason recorded``, with
        its worker when known (a trial failed by Optuna's heartbeat check, say).
    """
    a = t.user_attrs
    if a.get("fail_reason") or a.get("skipped"):
        return str(a.get("fail_reason") or a.get("skipped"))
    # e.g. failed by Optuna's heartbeat check: its worker, on another machine, went silent
    return "no reason recorded" + (f" (worker {a.get('host')}:{a['pid']})" if "pid" in a else "")


def trial_model(study_dir: Path, t: FrozenTrial) -> Path:
    """Where trial ``t``'s model file is, in the study folder ``study_dir``.

    Trials store ``trials/RUN/RUN.safetensors``; studies of handnet <= 0.4 stored the path as it
    was written (``OUT/STUDY/trials/RUN/RUN.safetensors``, relative to the search's working
    directory), which ends the same way.

    Parameters
    ----------
    study_dir : Path
        The study's folder, as given on the command line.
    t : FrozenTrial
        A trial that stored its model (user attribute ``model``).

    Returns
    -------
    Path
        ``study_dir / "trials/RUN/RUN.safetensors"``; the file need not exist.
    """
    return study_dir.joinpath(*Path(t.user_attrs["model"]).parts[-3:])


def leaderboard(study: optuna.Study, study_dir: Path, top: int = 10) -> str:
    """The ``top`` completed trials as a fixed-width table, with the state counts above it.

    Parameters
    ----------
    study : optuna.Study
        The study.
    study_dir : Path
        The study's folder, against which the model paths are shown.
    top : int, default=10
        How many trials are listed.

    Returns
    -------
    str
        The text: a line of counts, then a header and one row per trial (rank, trial,
        validation accuracy, parameters, seconds, model); ``no completed trial yet`` instead
        of the table when there is none.
    """
    counts = state_counts(study)
    total = sum(counts.values())
    lines = [
        f"study {study.study_name}: {total} trials ("
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + ")"
    ]
    rows = ranked(study)[:top]
    if not rows:
        return lines[0] + "\nno completed trial yet"
    names = list(rows[0].params)
    head = ["rank", "trial", "val_acc", *names, "seconds", "model"]
    table = [
        [
            str(i + 1),
            str(t.number),
            f"{t.value:.2%}",
            *(fmt_param(t.params.get(n, "")) for n in names),
            f"{t.user_attrs.get('seconds', float('nan')):.1f}",
            str(trial_model(study_dir, t)),
        ]
        for i, t in enumerate(rows)
    ]
    widths = [max(len(r[j]) for r in [head, *table]) for j in range(len(head))]
    for r in [head, *table]:
        lines.append(
            "  ".join(
                c.rjust(w) if j < len(head) - 1 else c for j, (c, w) in enumerate(zip(r, widths))
            )
        )
    return "\n".join(lines)


def finalize_best(
    study: optuna.Study,
    study_dir: Path,
    *,
    data_dir: Path | None = None,
    mirror: str | None = None,
) -> dict[str, Any] | None:
    """Copy the best trial's model to ``best.safetensors`` and evaluate it on the test set.

    The test set is touched once per best model: the result is stored in the study (user attr
    ``best_test``) and in ``best.json``, and reused until a better trial appears. The record
    returned has the paths of both models in ``study_dir``; where the best model is not on this
    machine, it says so under ``missing`` (and has no ``best``).

    Parameters
    ----------
    study : optuna.Study
        The study.
    study_dir : Path
        The study's folder: the trials' models are read from it and ``best.safetensors`` and
        ``best.json`` are written into it.
    data_dir : Path or None, optional
        Where the dataset files are.
    mirror : str or None, optional
        Where to download the dataset from.

    Returns
    -------
    dict of str to Any or None
        None when no trial has completed. Else ``trial``, ``params``, ``val_accuracy``,
        ``model`` (the trial's model path) and ``best`` (the copy's path, or None); the test
        results ``test_accuracy``, ``test_loss`` and ``test_per_class_accuracy`` once
        evaluated; and ``missing`` (see `not_here`) when the model is not here.
    """
    best = ranked(study)[:1]
    if not best:
        return None
    t = best[0]
    src, target = trial_model(study_dir, t), study_dir / BEST_NAME
    done = study.user_attrs.get("best_test")
    record = dict(done) if done and done.get("trial") == t.number else None
    if record is None or not target.exists():
        if not src.exists():
            known = record or {"trial": t.number, "params": t.params, "val_accuracy": t.value}
            return {**known, "model": str(src), "best": None, "missing": not_here(t, src)}
        atomic_write_bytes(target, src.read_bytes())
    if record is None:
        record = _test_once(study, t, study_dir, data_dir, mirror)
    return {**record, "model": str(src), "best": str(target)}


def _test_once(
    study: optuna.Study,
    t: FrozenTrial,
    study_dir: Path,
    data_dir: Path | None,
    mirror: str | None,
) -> dict[str, Any]:
    """Evaluate the best model (copied to ``study_dir``) on the test set; record it in the study."""
    clf = load_model(study_dir / BEST_NAME)
    splits, _ = load_splits(str(clf.meta.get("dataset", "mnist")), data_dir, mirror)
    test = evaluate_logits(clf.net.predict_logits(clf.prepare(splits.X_test)), splits.y_test)
    record = {
        "trial": t.number,
        "model": t.user_attrs["model"],  # both paths relative to the study folder
        "best": BEST_NAME,
        "params": t.params,
        "val_accuracy": t.value,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "test_per_class_accuracy": test.per_class_accuracy,
    }
    study.set_user_attr("best_test", record)
    atomic_write_text(study_dir / "best.json", json.dumps(record, indent=2) + "\n")
    return record


def not_here(t: FrozenTrial, path: Path) -> str:
    """Why trial ``t``'s model at ``path`` cannot be read here, and what to do about it.

    Parameters
    ----------
    t : FrozenTrial
        The trial; its ``host`` and ``pid`` user attributes say where it ran.
    path : Path
        Where its model file was looked for.

    Returns
    -------
    str
        One sentence: trained on another machine (run ``handnet search --summary`` there), or
        missing from this folder.
    """
    host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
    if host is not None and host != HOST:
        return (
            f"its model was trained on machine {host} (worker pid {pid}) and is not on this one "
            f"({HOST}, no {path}): run `handnet search --summary` there to copy and test it"
        )
    return f"its model {path} is missing: is this the folder the study's search wrote to?"


def best_line(record: dict[str, Any] | None) -> str:
    """The one line that says which trial is best, printed after a search and a summary.

    Parameters
    ----------
    record : dict of str to Any or None
        What `finalize_best` returned.

    Returns
    -------
    str
        ``best: trial N  val X%``, with the test accuracy once evaluated, then where the best
        model is or why it is not here; ``best: none (no completed trial)`` for None.
    """
    if record is None:
        return "best: none (no completed trial)"
    line = f"best: trial {record['trial']}  val {record['val_accuracy']:.2%}"
    if "test_accuracy" in record:
        line += f"  test {record['test_accuracy']:.2%} (evaluated once)"
    if "missing" in record:
        return f"{line}; {record['missing']}"
    return f"{line}  -> {record['best']}"
