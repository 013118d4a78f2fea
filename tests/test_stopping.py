"""The stop request of a testbed process: SIGTERM honoured at the next wait, never lost.

These tests send real signals to the test process itself; the fixture puts pytest's own
handlers back afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from edgetestbed.process.stopping import Stopped, StopRequest


@pytest.fixture
def stop():
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield StopRequest().install()
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_a_signal_during_a_wait_ends_it_at_once(stop):
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    with pytest.raises(Stopped, match="SIGTERM"):
        stop.waiting(lambda: time.sleep(10))
    assert time.monotonic() - started < 2


def test_a_signal_between_waits_stops_the_next_wait(stop):
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.signal == "SIGINT"  # recorded while computing, not raised there
    with pytest.raises(Stopped, match="SIGINT"):
        stop.waiting(lambda: pytest.fail("waited after a stop request"))


class SignalsWhileFinalized:
    """Sends SIGTERM from its finalizer, where a raised exception would be swallowed."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # bytecodes after the signal, where a handler would run


def test_a_signal_inside_a_finalizer_is_not_lost(stop):
    SignalsWhileFinalized()
    with pytest.raises(Stopped, match="SIGTERM"):
        stop.waiting(lambda: time.sleep(10))


def test_a_second_signal_does_not_interrupt_the_cleanup(stop):
    with pytest.raises(Stopped):
        stop.waiting(lambda: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(10))
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    assert stop.signal == "SIGTERM"
