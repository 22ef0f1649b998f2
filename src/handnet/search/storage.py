"""Where a study lives: RDB storage (SQLite or PostgreSQL) that tags each trial with its worker,
and the bookkeeping that fails trials whose worker died or was interrupted.

A killed worker leaves its trial RUNNING. On the next start, RUNNING trials of this host whose
process is gone are marked FAIL at once (each trial is born with its host, pid and process start
time); trials of other hosts are failed by Optuna's heartbeat once they miss it for ``GRACE_S``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from handnet.errors import ConfigError, HandnetError

HEARTBEAT_S = 10  # a running trial writes a heartbeat this often ...
GRACE_S = 60  # ... and is failed by other workers when none came for this long
SQLITE_TIMEOUT_S = 60  # how long a writer waits for SQLite's lock before an error
SETUP_RETRIES = 6  # opening/creating a study races with other workers; retry with backoff
HOST = socket.gethostname()


# user:PASSWORD@ in the authority, or a password=... query parameter (libpq's keyword form)
_PASSWORD = re.compile(r"(?<=://)([^:/@?#]*:)[^?#]*(?=@)|(?<=[?&]password=)[^&#]*")


def redact(url: str) -> str:
    """``url`` fit to print: its password, if any, shown as ``***``.

    Both forms are hidden: ``user:PASSWORD@`` in the authority and a ``password=...`` query
    parameter (libpq's keyword form).

    Parameters
    ----------
    url : str
        A database URL.

    Returns
    -------
    str
        The URL with every password replaced by ``***``.
    """
    return _PASSWORD.sub(lambda m: (m.group(1) or "") + "***", url)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///FILE`` URL.

    Parameters
    ----------
    url : str
        A database URL.

    Returns
    -------
    Path or None
        The file; None for other databases and ``:memory:``.
    """
    import sqlalchemy

    if not url.startswith("sqlite:"):
        return None
    db = sqlalchemy.engine.make_url(url).database
    return Path(db) if db and db != ":memory:" else None


def storage_url(url: str) -> str:
    """The URL SQLAlchemy is given: ``postgresql://`` means psycopg 3.

    SQLAlchemy's bare default would be psycopg2; ``postgres://`` is read as ``postgresql://``.

    Parameters
    ----------
    url : str
        A database URL as the user gives it.

    Returns
    -------
    str
        ``postgresql+psycopg://...`` for a PostgreSQL URL without a driver, else ``url``.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _lasting(e: BaseException) -> bool:
    """A database error that no retry can cure: a wrong password, a database that is not there."""
    why = str(e)
    return (
        "authentication failed" in why
        or "no password supplied" in why
        or ('database "' in why and "does not exist" in why)
    )


def retry_setup(what: str, fn: Callable[[], Any]) -> Any:
    """Call ``fn``, retrying with backoff when racing workers collide.

    A locked database, a table or row a peer created meanwhile, or a duplicate study is
    retried up to `SETUP_RETRIES` times, waiting 0.2 s, 0.4 s, ... between tries. A wrong
    password or a missing database is not retried.

    Parameters
    ----------
    what : str
        What is being set up, to start the error message (``--storage URL``).
    fn : Callable[[], Any]
        The setup to run.

    Returns
    -------
    Any
        What ``fn`` returns.

    Raises
    ------
    HandnetError
        When every try failed, or the failure cannot be cured by retrying; the message is
        ``what`` and the first line of the last error.
    """
    import sqlalchemy.exc

    last: BaseException | None = None
    for attempt in range(SETUP_RETRIES):
        try:
            return fn()
        except sqlalchemy.exc.DBAPIError as e:  # locked, or a peer created the same table/row
            last = e
            if _lasting(e):
                break
        except optuna.exceptions.DuplicatedStudyError as e:  # created by a peer meanwhile
            last = e
        except optuna.exceptions.StorageInternalError as e:  # Optuna's wrapper of the above
            last = e.__cause__ or e
        time.sleep(0.2 * 2**attempt)
    raise HandnetError(f"{what}: {str(last).splitlines()[0]}")


def worker_tags() -> dict[str, Any]:
    """Who runs a trial: enough to tell, on this host, whether that process still exists.

    Returns
    -------
    dict of str to Any
        ``host`` (the host name), ``pid`` and ``pid_start`` (the process's start time in clock
        ticks since boot, from ``/proc``; None where there is no ``/proc``).
    """
    return {"host": HOST, "pid": os.getpid(), "pid_start": _proc_start(os.getpid())}


class TaggedStorage(RDBStorage):
    """RDB storage whose new trials carry `worker_tags` from the transaction that creates them.

    So a ``kill -9`` at any instant leaves no RUNNING trial that cannot be traced to its process.
    (Optuna's cache layer calls ``_create_new_trial``; that is the one place a trial is born.)
    It is made as `optuna.storages.RDBStorage` is, with the same parameters; `open_storage`
    makes it.
    """

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        if template_trial is None:
            template_trial = FrozenTrial(
                number=-1,
                state=TrialState.RUNNING,
                value=None,
                datetime_start=datetime.now(),
                datetime_complete=None,
                params={},
                distributions={},
                user_attrs=worker_tags(),
                system_attrs={},
                intermediate_values={},
                trial_id=-1,
            )
        return super()._create_new_trial(study_id, template_trial)


def open_storage(url: str, *, create: bool = True) -> RDBStorage:
    """An RDB storage with heartbeats; SQLite gets a lock timeout and its directory created.

    With ``create=False`` (reading a study) nothing is created: a missing SQLite file is an error,
    and no tables are added to a database that lacks them.

    Parameters
    ----------
    url : str
        ``sqlite:///FILE``, ``postgresql://...`` (or ``postgres://``; psycopg 3) or
        ``mysql...``.
    create : bool, default=True
        Create the SQLite file's directory, the file and the tables when missing.

    Returns
    -------
    RDBStorage
        A `TaggedStorage`: heartbeat every `HEARTBEAT_S` seconds, grace period `GRACE_S`.

    Raises
    ------
    ConfigError
        When the URL is not of a supported database, or its driver is not installed.
    HandnetError
        When the SQLite file is missing with ``create=False``, or the database cannot be
        opened (see `retry_setup`).
    """
    if not url.startswith(("sqlite:", "postgresql", "postgres:", "mysql")):
        raise ConfigError(f"--storage {redact(url)!r}: expected sqlite:///FILE or postgresql://...")
    db = sqlite_file(url)
    if db is not None and not create and not db.exists():
        raise HandnetError(f"no study database at {db}")
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
        if url.startswith("sqlite:")
        else {"pool_pre_ping": True}
    )
    full = storage_url(url)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeat
    try:
        return retry_setup(
            f"--storage {redact(url)}",
            lambda: TaggedStorage(
                full,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                skip_table_creation=not create,
            ),
        )
    except (ImportError, ModuleNotFoundError) as e:
        raise ConfigError(f"--storage {redact(url)}: missing database driver ({e})") from None


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields 3.. of proc(5); the name may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


def _alive(pid: int, start: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        now = _proc_start(pid)
        return now is not None and now == start  # the start time guards against a reused pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail_running(
    study: optuna.Study, storage: RDBStorage, pick: Callable[[dict[str, Any]], str | None]
) -> list[int]:
    """Mark FAIL each RUNNING trial for which ``pick(user_attrs)`` gives a reason."""
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = pick(t.user_attrs)
        if reason is None:
            continue
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if "fail_reason" not in t.user_attrs:
                storage.set_trial_user_attr(t._trial_id, "fail_reason", reason)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            failed.append(t.number)
    return failed


def fail_dead_local_trials(study: optuna.Study, storage: RDBStorage) -> list[int]:
    """Mark FAIL the RUNNING trials started on this host by a process that no longer exists.

    A process counts as gone when its pid is free or now belongs to a process started at
    another time (a reused pid). Each trial failed gets a ``fail_reason`` unless it has one.

    Parameters
    ----------
    study : optuna.Study
        The study whose trials are looked at.
    storage : RDBStorage
        The study's storage, through which the trials are marked.

    Returns
    -------
    list of int
        The numbers of the trials marked FAIL.
    """

    def dead(a: dict[str, Any]) -> str | None:
        if a.get("host") != HOST or "pid" not in a or _alive(a["pid"], a.get("pid_start")):
            return None
        return f"worker {HOST}:{a['pid']} died (killed?) mid-trial"

    return _fail_running(study, storage, dead)


def fail_own_trials(study: optuna.Study, storage: RDBStorage, reason: str) -> list[int]:
    """Mark FAIL the RUNNING trials of this very process (on Ctrl-C, wherever it landed).

    Parameters
    ----------
    study : optuna.Study
        The study whose trials are looked at.
    storage : RDBStorage
        The study's storage, through which the trials are marked.
    reason : str
        The ``fail_reason`` recorded on each trial that has none yet.

    Returns
    -------
    list of int
        The numbers of the trials marked FAIL.
    """
    me = worker_tags()
    return _fail_running(
        study, storage, lambda a: reason if all(a.get(k) == v for k, v in me.items()) else None
    )
