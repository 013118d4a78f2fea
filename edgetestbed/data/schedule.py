"""The clock of a stream: when each sample is sent, which window it belongs to, and how late
is too late.

Sensor ``K`` sends sample ``n`` of its stream at ``T + n / rate`` (``T``: window 0's start)
in the worker window that send time falls in (:class:`Schedule`, shared by the sensor and
the cloud baseline, which regenerates the same samples locally). Receivers close a window
:func:`window_grace` after its end.

A sensor only sleeps and sends, so a sample leaving more than :func:`window_grace` late
means the machine could not run every process as fast as the spec asks
(:func:`kept_pace`), and a sample leaving a whole window late stops the run
(:func:`lost_a_window`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """When each sample is sent and which window it belongs to: sample ``n`` leaves at
    ``start_at + n / rate`` and belongs to window ``floor(n / (rate · interval))``."""

    start_at: float
    rate: float
    interval: float
    limit: int

    def first_in(self, window: int) -> int:
        """The number of the first sample sent in window ``window``."""
        return math.ceil(round(window * self.interval * self.rate, 9))

    def samples_in(self, window: int) -> range:
        return range(self.first_in(window), self.first_in(window + 1))

    def send_time(self, n: int) -> float:
        return self.start_at + n / self.rate

    def window_end(self, window: int) -> float:
        return self.start_at + (window + 1) * self.interval


def window_grace(interval: float) -> float:
    """How long after a window's end its last samples may still be on the way: receivers
    wait this long before closing a window, so a sample later than this misses it."""
    return min(0.1 * interval, 0.5)


def kept_pace(behind: float, interval: float) -> bool:
    """Whether samples that left up to ``behind`` seconds late still reached their window."""
    return behind <= window_grace(interval)


def lost_a_window(behind: float, interval: float) -> bool:
    """Whether samples left a whole window late: every later window's data would be late
    too, so a run is stopped rather than reported."""
    return behind > interval


def pace_warning(sensor: str, window: int, behind: float, interval: float) -> str:
    """What to tell a user whose run did not keep pace (run summary and report alike)."""
    return (f"THE MACHINE FELL BEHIND: {sensor} sent window {window}'s samples up to {behind:.1f} s late "
            f"(tolerance {window_grace(interval):g} s), so timings and accuracy are not those of the spec's "
            f"network; give the run fewer hosts or more CPU")
