"""A light probe of one tree link during a run: a few pings from the child's host to the parent's.

The probe must not disturb what it measures: 8 pings of 98 bytes each, 20 ms apart, are
0.3 kbit/s on average against links of 1 Mbit/s and more. A ping that waits behind a model
being pushed measures the queue, not the link, so the probe keeps the **minimum** round trip:
the link's delay in both directions plus the unshaped access links (tens of microseconds).
Half of it is the link's one-way delay, as the spec gives it. The pings run in the child's
network namespace but outside its CPU limit (:mod:`edgetestbed.measure.hosttools`), so a
throttled host does not stretch them.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from edgetestbed.measure.hosttools import MeasurementError, run

if TYPE_CHECKING:
    from mininet.node import Host

PINGS = 8
INTERVAL_S = 0.02
DEADLINE_S = 2        # a ping that has no answer by then counts as lost (a link down)
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")
RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/")


@dataclass(frozen=True)
class Probe:
    """What one probe measured: when it started (unix time), pings sent and answered, and the
    minimum round trip in ms (None when no ping was answered)."""

    at: float
    sent: int
    received: int
    rtt_min_ms: float | None

    @property
    def delay_ms(self) -> float | None:
        """The one-way delay measured: half the minimum round trip."""
        return None if self.rtt_min_ms is None else self.rtt_min_ms / 2

    def as_dict(self) -> dict:
        return {**asdict(self), "delay_ms": self.delay_ms}


def parse_ping(output: str, at: float) -> Probe:
    """A :class:`Probe` from ``ping -q``'s summary; MeasurementError if it has none."""
    counts = SUMMARY.search(output)
    if counts is None:
        raise MeasurementError(f"ping printed no summary: {output.strip()[-200:]!r}")
    rtt = RTT.search(output)
    return Probe(at, int(counts.group(1)), int(counts.group(2)), float(rtt.group(1)) if rtt else None)


def probe_link(child: Host, parent_ip: str) -> Probe:
    """Ping ``parent_ip`` from ``child`` :data:`PINGS` times; what came back."""
    at = time.time()
    argv = ["ping", "-n", "-q", "-c", str(PINGS), "-i", str(INTERVAL_S), "-w", str(DEADLINE_S), parent_ip]
    return parse_ping(run(child, argv, timeout=DEADLINE_S + 3), at)
