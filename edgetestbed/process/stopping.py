"""SIGTERM and SIGINT in a testbed process: a stop request, honoured where the process waits.

The handler records the signal and raises `Stopped` only while the process is inside
`StopRequest.waiting` (a socket poll or a sleep, where the main loops spend their time);
otherwise the next wait raises it. Raised at an arbitrary bytecode, the exception can
land in a finalizer (``__del__``), where Python prints and swallows it, and the process
runs on: checked with a handler that raised and a signal sent from a finalizer (the case
`tests/test_stopping.py` keeps). A CI run saw a root still running 5 s after SIGTERM; the
landing site there was not pinned down.
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Optional, TypeVar

T = TypeVar("T")


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived; unwinds the main loop like KeyboardInterrupt."""


class StopRequest:
    """The process's SIGTERM/SIGINT handler and the signal it received, if any."""

    def __init__(self) -> None:
        self.signal: Optional[str] = None
        self._waiting = False

    def install(self) -> "StopRequest":
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        return self

    def waiting(self, wait: Callable[[], T]) -> T:
        """``wait()``'s result, unless a stop request came before or comes during it: then
        `Stopped`. ``wait`` must be a blocking call that a signal interrupts (poll, sleep)."""
        if self.signal is not None:
            raise Stopped(self.signal)
        self._waiting = True
        try:
            return wait()
        finally:
            self._waiting = False

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal is not None:
            return  # already stopping: let the cleanup finish
        self.signal = signal.Signals(signum).name
        if self._waiting:
            raise Stopped(self.signal)
