"""Signals during a run: SIGTERM and SIGHUP unwind like Ctrl-C; teardown is not interrupted."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every ``finally`` runs."""


def _raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(f"received {signal.Signals(signum).name}")


@contextlib.contextmanager
def _handlers(handler, signals) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; signals are delivered there anyway
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signals_as_interrupts() -> contextlib.AbstractContextManager:
    """Within: SIGTERM and SIGHUP raise `Interrupted`."""
    return _handlers(_raise_interrupted, (signal.SIGTERM, signal.SIGHUP))


def uninterrupted() -> contextlib.AbstractContextManager:
    """Within: Ctrl-C, SIGTERM and SIGHUP are ignored (a half-removed network helps nobody)."""
    return _handlers(signal.SIG_IGN, STOPPING)
