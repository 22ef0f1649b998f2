"""Graceful stops: a signal asks the loop to stop at a point of its choosing, not where it lands.

`StopSignals` is a context manager that catches SIGINT and SIGTERM (or the signals it is given)
while it is open, and a ``stop()`` predicate for `handnet.train.fit`. The first signal only sets a
flag: the loop finishes its step, the run writes a checkpoint and exits with 128 + the signal
number. A second one raises `KeyboardInterrupt` at once, for a user who does not want to wait,
unless ``second_stops_now`` is off: a search worker process leaves that to its parent.

The search uses it too (SIGINT only), and stops a trial at its next epoch's end with `check`,
rather than wherever the signal lands: a KeyboardInterrupt inside a database write can leave
SQLite locked.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While open, catch stop signals and remember the first; calling it asks "stop now?".

    Signals reach only the main thread: opened in another one, it catches nothing.

    Parameters
    ----------
    signals : Sequence of int, default=STOP_SIGNALS
        The signals to catch (SIGINT and SIGTERM).
    second_stops_now : bool, default=True
        A second signal raises `KeyboardInterrupt` at once; off, it is ignored.
    notice : str, optional
        A line printed to stderr when the first signal arrives.

    Attributes
    ----------
    signum : int or None
        The first signal caught; None while none was.
    """

    def __init__(
        self,
        signals: Sequence[int] = STOP_SIGNALS,
        *,
        second_stops_now: bool = True,
        notice: str | None = None,  # printed to stderr when the first signal arrives
    ) -> None:
        self.signals = tuple(signals)
        self.second_stops_now = second_stops_now
        self.notice = notice
        self.signum: int | None = None  # the first signal caught
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """Raise `KeyboardInterrupt` if a stop was asked for: for code that unwinds by exception."""
        if self.signum is not None:
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            if self.second_stops_now:
                raise KeyboardInterrupt
            return
        self.signum = signum
        if self.notice:
            print(self.notice, file=sys.stderr, flush=True)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signals only reach main
            for s in self.signals:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
