"""A light probe of one tree link during a run: a few pings from the child's host to the
parent's and, where the event changes the link's rate, a short train of datagrams.

The probe must not disturb what it measures: 8 pings of 98 bytes each, 20 ms apart, are
0.3 kbit/s on average against links of 1 Mbit/s and more. A ping that waits behind a model
being pushed measures the queue, not the link, so the probe keeps the **minimum** round trip:
the link's delay in both directions plus the unshaped access links (tens of microseconds).
Half of it is the link's one-way delay, as the spec gives it. The pings run in the child's
network namespace but outside its CPU limit (:mod:`edgetestbed.measure.hosttools`), so a
throttled host does not stretch them.

The rate (:mod:`edgetestbed.dynamics.train`) follows the pings, so they never queue behind
it: a receiver in the parent's host, then the sender in the child's, both outside the hosts'
limits. It is measured only for an event that changes the rate (``set: {bw: ...}``): a
train is 24 or more full-size datagrams, 0.28 s of a 1 Mbit/s link, plus two Python starts
of about 0.1 s, which would hold up the events that follow a delay or loss change.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Optional

from edgetestbed.dynamics import train
from edgetestbed.measure.hosttools import MeasurementError, popen, run

if TYPE_CHECKING:
    from mininet.node import Host

PINGS = 8
INTERVAL_S = 0.02
DEADLINE_S = 2        # a ping that has no answer by then counts as lost (a link down)
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")
RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/")
TRAIN_PORTS = range(40000, 60000)


@dataclass(frozen=True)
class Probe:
    """What one probe measured: when it started (unix time), pings sent and answered, the
    minimum round trip in ms (None when no ping was answered), and the rate in Mbit/s of
    frames the train measured (None when not measured, or too few datagrams arrived)."""

    at: float
    sent: int
    received: int
    rtt_min_ms: float | None
    rate_mbit: float | None = None

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


def probe_link(child: Host, parent: Host, rate_mbit: Optional[float] = None) -> Probe:
    """Ping ``parent`` from ``child`` :data:`PINGS` times, then, given the link's configured
    ``rate_mbit``, measure its rate with a train sized for it; what came back."""
    at = time.time()
    argv = ["ping", "-n", "-q", "-c", str(PINGS), "-i", str(INTERVAL_S), "-w", str(DEADLINE_S), parent.IP()]
    pinged = parse_ping(run(child, argv, timeout=DEADLINE_S + 3), at)
    return pinged if rate_mbit is None else replace(pinged, rate_mbit=probe_rate(child, parent, rate_mbit))


def probe_rate(child: Host, parent: Host, rate_mbit: float) -> Optional[float]:
    """The rate of the link from ``child`` to ``parent`` as a train sized for ``rate_mbit`` saw it."""
    packets, ident, port = train.train_length(rate_mbit), random.getrandbits(63), random.choice(TRAIN_PORTS)
    module = [sys.executable, "-m", train.__name__, "--port", str(port), "--train", str(ident),
              "--packets", str(packets)]
    receiver = popen(parent, [*module, "receive", "--idle", str(train.idle_wait(rate_mbit))],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if receiver.stdout.readline().strip() == "ready":
            run(child, [*module, "send", "--to", parent.IP()], timeout=DEADLINE_S + 3)
        out, err = receiver.communicate(timeout=train.FIRST_WAIT_S + 2)
    except subprocess.TimeoutExpired:
        raise MeasurementError(f"the train's receiver in {parent.name} did not finish") from None
    finally:
        if receiver.poll() is None:   # killed by its PID, which we started
            receiver.kill()
            receiver.wait()
    try:
        return train.delivered_rate(json.loads(out)["arrivals"])
    except (ValueError, KeyError, TypeError):
        raise MeasurementError(f"the train's receiver in {parent.name} failed: {err.strip()[-200:]!r}") from None
