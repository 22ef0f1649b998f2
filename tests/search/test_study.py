"""The search, for real: trials that save models, prune, diverge; a killed search that resumes; two
workers on one PostgreSQL server. Tiny data and models; nothing waits on a clock: a kill happens
when the database says trials are complete and one is running. Commands run in this process
(`handnet.cli.main`) unless a signal, a kill or a second worker needs a real one; those are slow."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import require, run_main, tiny_dataset
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

import handnet.search.storage
from handnet.cli import main
from handnet.data import Dataset, write_idx
from handnet.data.geometry import Geometry
from handnet.data.split import Normalization
from handnet.errors import ConfigError, HandnetError
from handnet.search.report import study_report
from handnet.search.results import best_line, finalize_best, leaderboard, trial_model
from handnet.search.space import SearchSpace, space_from_dict
from handnet.search.storage import (
    HOST,
    _proc_start,
    fail_dead_local_trials,
    open_storage,
    redact,
    storage_url,
)
from handnet.search.study import Objective, SearchConfig, counts_toward_budget, open_study
from handnet.search.workers import search
from handnet.train.config import TrainConfig
from handnet.train.modelfile import load_model

pytestmark = pytest.mark.usefixtures("unrendered_plots")  # pages and files, not pixels
PLAIN = TrainConfig(aug_shift=0.0)  # blobs and tiny_dataset are feature vectors, not images
MODEL_NAME = re.compile(r"model-\d{8}-\d{6}-[0-9a-f]{6}\.safetensors$")
SPACE = space_from_dict(
    {
        "params": {
            "lr": {"low": 0.01, "high": 0.3, "log": True},
            "hidden_units": {"type": "int", "low": 8, "high": 32, "log": True},
        }
    }
)


def blobs(n: int = 300, d: int = 12, c: int = 3, seed: int = 0) -> Dataset:
    """Three well separated Gaussian blobs: a good lr learns them in an epoch, lr=1e-6 never."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d)).astype(np.float32) * 3
    y = rng.integers(0, c, n)
    X = (centers[y] + rng.standard_normal((n, d)).astype(np.float32)).astype(np.float32)
    return Dataset("blobs", [str(i) for i in range(c)], (d,), Normalization(0.0, 1.0),
                   X[:200], y[:200], X[200:250], y[200:250], X[250:], y[250:])  # fmt: skip


def study_in(tmp_path: Path, name: str = "s") -> tuple[SearchConfig, optuna.Study]:
    cfg = SearchConfig(
        study=name, storage=f"sqlite:///{tmp_path}/s.db", out=tmp_path / "runs", progress=False
    )
    return cfg, open_study(cfg, open_storage(cfg.storage), space=SPACE, base=PLAIN)


def test_completed_trials_keep_their_model_metrics_and_seconds(tmp_path: Path) -> None:
    cfg, study = study_in(tmp_path)
    base = TrainConfig(epochs=3, hidden_sizes=(8,), aug_shift=0.0)
    obj = Objective(blobs(), SPACE, base, cfg.study_dir)
    study.optimize(obj, n_trials=3)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 3
    for t in trials:
        assert t.user_attrs["model"].startswith("trials/model-")  # relative to the study folder
        path = trial_model(cfg.study_dir, t)
        assert MODEL_NAME.search(path.name) and path.parent.parent == cfg.study_dir / "trials"
        clf = load_model(path)
        assert clf.meta["config"]["lr"] == t.params["lr"]
        assert clf.meta["config"]["hidden_sizes"] == [t.params["hidden_units"]]
        assert t.user_attrs["metrics"]["val_accuracy"] == t.value
        assert t.user_attrs["seconds"] > 0
        assert sorted(t.intermediate_values) == [1, 2, 3]  # one report per epoch, for the pruner
        assert "test_accuracy" not in t.user_attrs["metrics"]  # the test set is for the best only


def test_a_bad_trial_is_pruned_by_the_median_pruner(tmp_path: Path) -> None:
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    for lr in (0.1, 0.2, 1e-6):
        study.enqueue_trial({"lr": lr, "hidden_units": 16})
    space = space_from_dict({"params": {"lr": {"low": 1e-6, "high": 1.0, "log": True},
                                        "hidden_units": {"type": "int", "low": 8, "high": 32}}})  # fmt: skip
    study.optimize(
        Objective(blobs(), space, TrainConfig(epochs=4, aug_shift=0.0), tmp_path), n_trials=3
    )
    states = [t.state for t in study.trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2
    assert states[2] == optuna.trial.TrialState.PRUNED
    assert max(study.trials[2].intermediate_values) < 4  # stopped before its last epoch
    assert "model" not in study.trials[2].user_attrs


def test_a_diverging_trial_fails_with_its_reason_and_the_search_goes_on(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 1e6})
    study.enqueue_trial({"lr": 0.1})
    space = space_from_dict({"params": {"lr": {"low": 1e-3, "high": 1e6, "log": True}}})
    base = TrainConfig(
        aug_shift=0.0,
        epochs=3,
        hidden_sizes=(16,),
        activation="relu",
        warmup_epochs=0,
        batch_size=16,
    )
    study.optimize(Objective(tiny_dataset(), space, base, tmp_path), n_trials=2)
    bad, good = study.trials
    assert bad.state == optuna.trial.TrialState.FAIL
    assert "diverged: loss became" in bad.user_attrs["fail_reason"]
    assert counts_toward_budget(bad)  # a diverged trial used its slot; re-running it is pointless
    assert good.state == optuna.trial.TrialState.COMPLETE


def test_budget_counts_the_whole_study_and_the_best_is_tested_once(
    idx_dir: Path, tmp_path: Path
) -> None:
    cfg = SearchConfig(
        study="b",
        storage=f"sqlite:///{tmp_path}/b.db",
        out=tmp_path / "runs",
        trials=3,
        sampler="random",
        sampler_seed=0,
        progress=False,
    )
    base = TrainConfig(dataset=str(idx_dir), epochs=2, val_size=100)
    study = search(cfg, SPACE, base)
    assert len(study.trials) == 3
    study = search(cfg, SPACE, base)  # the same command again: nothing left to do
    assert len(study.trials) == 3
    record = finalize_best(study, cfg.study_dir)
    assert record is not None and (cfg.study_dir / "best.safetensors").exists()
    assert record["val_accuracy"] == max(t.value for t in study.trials if t.value is not None)
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert study.user_attrs["best_test"]["trial"] == record["trial"]
    (cfg.study_dir / "best.safetensors").unlink()
    again = finalize_best(study, cfg.study_dir)  # same best: reused, the test set is not re-read
    assert again == record and (cfg.study_dir / "best.safetensors").exists()
    board = leaderboard(study, cfg.study_dir)
    assert "study b: 3 trials (3 complete)" in board and "rank" in board


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_running_trial_of_a_dead_local_process_is_marked_failed(tmp_path: Path) -> None:
    cfg, study = study_in(tmp_path)
    storage = open_storage(cfg.storage)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for pid in (dead.pid, os.getpid()):
        t = study.ask()
        t.set_user_attr("host", HOST)
        t.set_user_attr("pid", pid)
        t.set_user_attr("pid_start", _proc_start(pid))
    assert fail_dead_local_trials(study, storage) == [0]
    gone, alive = study.get_trials()
    assert gone.state == optuna.trial.TrialState.FAIL and "died" in gone.user_attrs["fail_reason"]
    assert alive.state == optuna.trial.TrialState.RUNNING  # still training: left alone


def test_resuming_with_another_space_is_refused(tmp_path: Path) -> None:
    cfg, _ = study_in(tmp_path)
    other = SearchSpace(SPACE.params[:1])
    with pytest.raises(Exception, match="other settings"):
        open_study(cfg, open_storage(cfg.storage), space=other, base=PLAIN)


def test_a_search_without_validation_images_is_refused_before_any_trial(tmp_path: Path) -> None:
    cfg = SearchConfig(out=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="--val-size 0: a search ranks its trials on validation"):
        search(cfg, base=TrainConfig(val_size=0))
    assert not (tmp_path / "search.db").exists()


def test_postgres_urls_use_psycopg3() -> None:
    assert storage_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert storage_url("sqlite:///x.db") == "sqlite:///x.db"


# ------------------------------------------------------ the command, and real processes killed midway


HANDNET = [sys.executable, "-m", "handnet.cli"]


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small IDX dataset (which quadrant is bright), noisy enough that trials differ."""
    d = tmp_path_factory.mktemp("quadrants")
    rng = np.random.default_rng(0)
    for split, n in (("train", 800), ("t10k", 200)):
        y = rng.integers(0, 4, n)
        X = rng.integers(0, 200, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            X[i, r * 14 : r * 14 + 14, q * 14 : q * 14 + 14] //= 2
            X[i, r * 14 : r * 14 + 14, q * 14 : q * 14 + 14] += 70
        write_idx(d / f"{split}-images-idx3-ubyte.gz", X)
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", y.astype(np.uint8))
    return d


def search_args(idx_dir: Path, work: Path, storage: str | None, *extra: str) -> list[str]:
    """``handnet search`` of 6 trials, study k; ``extra`` flags override (argparse keeps the last)."""
    space = work / "space.toml"
    space.write_text(
        "[params.lr]\nlow = 0.005\nhigh = 0.2\nlog = true\n"
        '[params.hidden_units]\ntype = "int"\nlow = 8\nhigh = 32\nlog = true\n'
    )
    return ["search", "--dataset", str(idx_dir), "--val-size", "100",
            "--space", str(space), "--epochs", "15", "--trials", "6", "--study", "k",
            *(["--storage", storage] if storage else []), "--out", str(work / "runs"), "--sampler", "random",
            "--pruner", "none", "--quiet", *extra]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}


def states(db: Path) -> list[str]:
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return [s for (s,) in con.execute("SELECT state FROM trials ORDER BY number")]
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def start_and_wait_midway(cmd: list[str], db: Path) -> subprocess.Popen[str]:
    """Start the search and return once 2 trials are COMPLETE and another is RUNNING."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )
    while True:
        s = states(db) if db.exists() else []
        if s.count("COMPLETE") >= 2 and "RUNNING" in s:
            return proc
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the search ended before it was midway (rc {proc.returncode}): {err}")
        time.sleep(0.002)


def snapshot(storage: str) -> dict[int, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="k", storage=storage_url(storage))
    return {t.number: t for t in study.get_trials()}


def check_finished_study(
    storage: str, before: dict[int, optuna.trial.FrozenTrial], study_dir: Path
) -> None:
    after = snapshot(storage)
    complete = [t for t in after.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6  # the budget, exactly: nothing run twice, nothing missing
    for n, t in before.items():  # every trial completed before the kill is still there, unchanged
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert after[n].state == t.state and after[n].params == t.params
            assert after[n].user_attrs["model"] == t.user_attrs["model"]
    models = [trial_model(study_dir, t) for t in complete]
    assert len(set(models)) == 6 and all(m.exists() for m in models)
    params = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(params)) == 6
    assert not [t for t in after.values() if t.state == optuna.trial.TrialState.RUNNING]


@pytest.mark.slow
def test_kill_9_midway_then_rerun_loses_nothing_and_duplicates_nothing(
    idx_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "k.db"
    storage = f"sqlite:///{db}"
    cmd = [*HANDNET, *search_args(idx_dir, tmp_path, storage)]
    proc = start_and_wait_midway(cmd, db)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.communicate()
    before = snapshot(storage)
    # The trial that was training when the process died (unless the kill fell in the instant
    # between two trials; the unit test above covers the marking deterministically).
    killed = [n for n, t in before.items() if t.state == optuna.trial.TrialState.RUNNING]

    r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert ("left RUNNING by a killed worker: marked failed" in r.stderr) == bool(killed)
    after = snapshot(storage)
    for n in killed:
        assert after[n].state == optuna.trial.TrialState.FAIL
        assert "died" in after[n].user_attrs["fail_reason"]
    check_finished_study(storage, before, tmp_path / "runs" / "k")
    assert "study k: " in r.stdout and "best: trial" in r.stdout
    assert (tmp_path / "runs" / "k" / "best.safetensors").exists()
    # the study page lists the killed trial, with the reason it failed
    page = study_report(optuna.load_study(study_name="k", storage=storage), None, None)
    for n in killed:
        assert f"<td class=num>{n}</td><td>fail</td>" in page
        assert f"{HOST}:{before[n].user_attrs['pid']} died (killed?) mid-trial" in page


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_prints_the_summary_and_resumes(idx_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    storage = f"sqlite:///{db}"
    cmd = [*HANDNET, *search_args(idx_dir, tmp_path, storage)]
    proc = start_and_wait_midway(cmd, db)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; run the same command to resume" in err
    assert "study k: " in out and "rank" in out  # the leaderboard so far
    before = snapshot(storage)
    assert not [t for t in before.values() if t.state == optuna.trial.TrialState.RUNNING]
    interrupted = [t for t in before.values() if t.state == optuna.trial.TrialState.FAIL]
    # The trial in progress (none if the signal fell just between two trials) is failed as such.
    assert len(interrupted) <= 1
    assert all(t.user_attrs["fail_reason"] == "interrupted (Ctrl-C)" for t in interrupted)

    r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 0, r.stderr
    check_finished_study(storage, before, tmp_path / "runs" / "k")


def test_reading_a_missing_study_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv, shown in (
        (["search", "--summary", "--study", "typo"], "runs/search.db"),
        (["search", "--summary", "--study", "typo", "--storage", "sqlite:///x/s.db"], "x/s.db"),
        (["report", "--study", "typo", "--runs", str(tmp_path / "new")], f"{tmp_path}/new/search.db"),
    ):  # fmt: skip
        assert main(argv) == 2
        assert (
            capsys.readouterr().err == f"handnet {argv[0]}: error: no study database at {shown}\n"
        )
    assert list(tmp_path.iterdir()) == []
    # a database of other studies: no such study, and the database is left as it was
    cfg, _ = study_in(tmp_path, "other")
    db = tmp_path / "s.db"
    before = db.read_bytes()
    assert main(["search", "--summary", "--study", "typo", "--storage", cfg.storage]) == 2
    assert capsys.readouterr().err == (
        f"handnet search: error: --study typo: no such study in sqlite:///{db}\n"
    )
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://handnet:bad@127.0.0.1:5432/handnet", "postgresql://handnet:***@127.0.0.1:5432/handnet"),
        ("postgresql://u:p@ss/w@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://:pw@h/db", "postgresql://:***@h/db"),
        ("postgresql://h/db?user=u&password=pw&port=5", "postgresql://h/db?user=u&password=***&port=5"),
        ("postgresql://u@h/db?application_name=a@b", "postgresql://u@h/db?application_name=a@b"),
        ("sqlite:///runs/search.db", "sqlite:///runs/search.db"),
    ],
)  # fmt: skip
def test_storage_urls_are_printed_without_their_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_a_database_error_does_not_print_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(handnet.search.storage, "SETUP_RETRIES", 1)  # no server: fail at once
    url = f"postgresql://handnet:s3cret@127.0.0.1:{_free_port()}/handnet"
    assert main(["search", "--summary", "--study", "big", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"handnet search: error: --storage {redact(url)}: ")
    assert "handnet:***@" in err and "s3cret" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("why", "tries"),
    [
        ('FATAL:  password authentication failed for user "handnet"', 1),
        ('FATAL:  database "handnet2" does not exist', 1),
        ("database is locked", 3),  # a peer holds SQLite's lock: worth waiting for
    ],
)
def test_only_passing_database_errors_are_retried(
    monkeypatch: pytest.MonkeyPatch, why: str, tries: int
) -> None:
    import sqlalchemy.exc

    monkeypatch.setattr(handnet.search.storage, "SETUP_RETRIES", 3)
    monkeypatch.setattr(handnet.search.storage.time, "sleep", lambda s: None)
    calls = []

    def connect() -> None:
        calls.append(1)
        raise sqlalchemy.exc.OperationalError("connect", None, Exception(why))

    with pytest.raises(HandnetError, match=re.escape(why)):
        handnet.search.storage.retry_setup("--storage x", connect)
    assert len(calls) == tries


def test_a_study_is_read_from_any_directory(
    idx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search ran in work/ with the default --out runs; read it from elsewhere."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    r = run_main(
        *search_args(idx_dir, work, None, "--out", "runs", "--trials", "2", "--epochs", "2")
    )
    assert r.returncode == 0, r.stderr
    runs = work / "runs"
    monkeypatch.chdir(elsewhere)
    r = run_main("search", "--summary", "--study", "k", "--out", runs)
    assert r.returncode == 0, r.stderr
    assert f"-> {runs}/k/best.safetensors" in r.stdout
    models = re.findall(r"\S+/trials/\S+\.safetensors$", r.stdout, re.M)
    assert len(models) == 2 and all(Path(elsewhere, m).exists() for m in models)
    r = run_main("report", "--study", "k", "--runs", runs)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{runs}/k/report.html\n"
    assert "best-report.html" in (runs / "k" / "report.html").read_text()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "stored",
    [
        "trials/m/m.safetensors",  # relative to the study folder (handnet >= 0.5)
        "runs/s/trials/m/m.safetensors",  # relative to where the search ran (before)
        "/old/place/runs/s/trials/m/m.safetensors",  # absolute --out (before), folder moved since
    ],
)
def test_a_trials_model_is_looked_for_in_the_study_folder_given(
    stored: str, tmp_path: Path
) -> None:
    t = create_trial(value=0.5, user_attrs={"model": stored})
    assert trial_model(tmp_path / "s", t) == tmp_path / "s" / "trials" / "m" / "m.safetensors"


LR = FloatDistribution(0.01, 0.3, log=True)


def remote_best(study: optuna.Study) -> None:
    """A best trial as a worker on machine gpu-2 leaves it: its model is on gpu-2's disk."""
    study.add_trial(create_trial(value=0.9, params={"lr": 0.1}, distributions={"lr": LR},
                                 user_attrs={"host": "gpu-2", "pid": 4242,
                                             "model": "trials/m/m.safetensors"}))  # fmt: skip


def test_a_best_model_on_another_machine_is_named_as_such(tmp_path: Path) -> None:
    cfg, study = study_in(tmp_path)
    remote_best(study)
    record = finalize_best(study, cfg.study_dir)
    assert record is not None and record["missing"] == (
        f"its model was trained on machine gpu-2 (worker pid 4242) and is not on this one ({HOST}, "
        f"no {cfg.study_dir}/trials/m/m.safetensors): run `handnet search --summary` there to "
        "copy and test it"
    )
    assert best_line(record) == f"best: trial 0  val 90.00%; {record['missing']}"
    assert "trained on machine gpu-2 (worker pid 4242)" in study_report(study, record, None)
    assert not cfg.study_dir.exists()
    # trained here, yet not in this folder: the --out/--runs given is the likely mistake
    study.add_trial(create_trial(value=0.95, params={"lr": 0.1}, distributions={"lr": LR},
                                 user_attrs={"host": HOST, "model": "trials/n/n.safetensors"}))  # fmt: skip
    record = finalize_best(study, cfg.study_dir)
    assert record is not None and record["missing"] == (
        f"its model {cfg.study_dir}/trials/n/n.safetensors is missing: "
        "is this the folder the study's search wrote to?"
    )


def test_the_study_page_lists_failed_trials_greyed_with_their_reason() -> None:
    study = optuna.create_study(direction="maximize", study_name="f")
    for v in (0.8, 0.9):
        study.add_trial(create_trial(value=v, params={"lr": v / 10}, distributions={"lr": LR},
                                     user_attrs={"seconds": 1.0}))  # fmt: skip
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 0.2}, distributions={"lr": LR},
                                 user_attrs={"fail_reason": "worker h:7 died (killed?) mid-trial"}))  # fmt: skip
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"host": "gpu-2", "pid": 9}))
    page = study_report(study, None, None)
    assert (
        "<td class=num>1</td><td class=num>1</td><td>complete</td><td class=num>90.00%</td>" in page
    )
    assert (
        "<td class=num></td><td class=num>2</td><td>fail</td><td class=num></td>"
        "<td class=num>0.2</td><td class=num></td><td>worker h:7 died (killed?) mid-trial</td>"
    ) in page
    assert "<td>no reason recorded (worker gpu-2:9)</td>" in page
    assert page.count("<tr class=muted>") == 2  # the two failed trials, greyed
    assert page.index("<tr class=muted><td class=num></td><td class=num>2</td>") > page.index(
        "<td>complete</td>"
    )
    assert "Failed trials have no point" in page


# -------------------------------------------------------------------- PostgreSQL, two workers


def _pg_bindir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster in a temp dir, run by the `postgres` user when we are root."""
    bindir = _pg_bindir()
    require(bindir is not None, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
    assert bindir is not None
    as_pg: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="handnet-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        require(shutil.which("runuser") is not None, "runuser (util-linux)")
        as_pg = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)  # fmt: skip
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                    "-o", f"-p {port} -k {root} -c listen_addresses='' -c fsync=off", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(
    idx_dir: Path, tmp_path: Path, postgres_url: str
) -> None:
    cmd = [*HANDNET, *search_args(idx_dir, tmp_path, postgres_url)]
    workers = [
        subprocess.Popen(
            [*cmd, "--sampler-seed", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        for i in range(2)
    ]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    check_finished_study(postgres_url, {}, tmp_path / "runs" / "k")
    trials = snapshot(postgres_url).values()
    assert {t.user_attrs["pid"] for t in trials} <= {w.pid for w in workers}
    assert all(t.user_attrs.get("skipped") for t in trials if t.state.name == "FAIL")


@pytest.mark.postgres
def test_a_postgresql_study_read_on_another_machine_names_it_and_hides_the_password(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    remote_best(optuna.create_study(study_name="remote", storage=storage_url(url)))
    runs = tmp_path / "runs"
    assert (
        main(["search", "--summary", "--study", "remote", "--storage", url, "--out", str(runs)])
        == 0
    )
    assert main(["report", "--study", "remote", "--storage", url, "--runs", str(runs)]) == 0
    assert main(["search", "--summary", "--study", "nope", "--storage", url]) == 2
    out, err = capsys.readouterr()
    assert (
        "best: trial 0  val 90.00%; its model was trained on machine gpu-2 (worker pid 4242)" in out
    )
    assert err == f"handnet search: error: --study nope: no such study in {redact(url)}\n"
    page = (runs / "remote" / "report.html").read_text()
    assert "trained on machine gpu-2 (worker pid 4242) and is not on this one" in page
    assert "postgres:***@" in err and "s3cret" not in out + err + page


def test_study_report_page_links_the_best_runs_page(idx_dir: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/s.db"
    r = run_main(*search_args(idx_dir, tmp_path, storage, "--trials", "3", "--epochs", "2"))
    assert r.returncode == 0, r.stderr
    report = ("report", "--study", "k", "--storage", storage, "--runs", tmp_path / "runs")
    r = run_main(*report)
    assert r.returncode == 0, r.stderr
    page_path = Path(r.stdout.strip())
    assert page_path == tmp_path / "runs" / "k" / "report.html"
    page = page_path.read_text()
    best = json.loads((tmp_path / "runs" / "k" / "best.json").read_text())
    assert page.count("data:image/png;base64,") == 3  # params, history, importances
    assert 'href="best-report.html"' in page and "Leaderboard" in page
    assert f"{best['val_accuracy']:.2%}" in page and f"{best['test_accuracy']:.2%}" in page
    best_page = (tmp_path / "runs" / "k" / "best-report.html").read_text()
    assert f"{best['test_accuracy']:.2%}" in best_page
    r = run_main(*report, "--study", "nope")
    assert r.returncode == 2 and "no such study" in r.stderr


def test_a_study_from_before_a_setting_existed_resumes(tmp_path: Path) -> None:
    cfg, study = study_in(tmp_path)
    setup = study.user_attrs["setup"]
    del setup["base"]["deskew"], setup["base"]["width_normalize"]  # as handnet 0.2.0 stored it
    study.set_user_attr("setup", setup)
    open_study(cfg, open_storage(cfg.storage), space=SPACE, base=PLAIN)  # no "other settings"
    normalized = dataclasses.replace(PLAIN, deskew=True, width_normalize=16)
    with pytest.raises(Exception, match=r"other settings \(deskew, width_normalize\)"):
        open_study(cfg, open_storage(cfg.storage), space=SPACE, base=normalized)


def test_search_on_normalized_digits_keeps_the_flags_in_its_models(
    idx_dir: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path}/d.db"
    flags = ("--deskew", "--width-normalize", "16", "--trials", "2", "--epochs", "2")
    r = run_main(*search_args(idx_dir, tmp_path, storage, *flags))
    assert r.returncode == 0, r.stderr
    best = load_model(tmp_path / "runs" / "k" / "best.safetensors")
    assert best.geometry == Geometry(deskew=True, width=16)
    assert best.meta["config"]["deskew"] is True and best.meta["config"]["width_normalize"] == 16
    study = optuna.load_study(study_name="k", storage=storage_url(storage))
    base = study.user_attrs["setup"]["base"]
    assert base["deskew"] is True and base["width_normalize"] == 16
