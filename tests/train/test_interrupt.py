"""StopSignals: the first signal is a request, a second one stops at once unless told otherwise."""

from __future__ import annotations

import signal

import pytest

from handnet.train.interrupt import StopSignals


def test_first_signal_asks_second_stops_now_and_the_handlers_come_back() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopSignals() as stop:
        assert not stop()
        stop.check()  # nothing asked yet: no exception
        signal.raise_signal(signal.SIGTERM)
        assert stop() and stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_worker_takes_any_number_of_signals_as_one_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    term = signal.getsignal(signal.SIGTERM)
    with StopSignals((signal.SIGINT,), second_stops_now=False, notice="stopping soon") as stop:
        assert signal.getsignal(signal.SIGTERM) == term  # only the signals given are caught
        for _ in range(3):
            signal.raise_signal(signal.SIGINT)
        assert stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            stop.check()
    assert capsys.readouterr().err == "stopping soon\n"  # said once
