"""The sensor process: publishes its deterministic stream over ZeroMQ at the spec's rate.

Sensor ``K`` binds a PUB socket on its endpoint and, from the run's start time ``T``,
sends sample ``n`` of its stream at ``T + n / rate`` as one ``SAMPLE`` message (see
:mod:`edgetestbed.nodes.protocol`) whose ``window`` is the worker window that send time
falls in and whose ``seq`` is ``n``. It stops after the last window. Which samples fall
in which window is :class:`Schedule`, shared with the cloud baseline, which regenerates
the same samples locally.

Log events (``logs/sensor<K>.jsonl``): ``STATISTIC`` per window ``{window, samples,
bytes, behind}`` (``bytes`` on the wire incl. ZMTP framing; ``behind``: the most any of
the window's samples left after its send time, in seconds), ``BEHIND`` ``{window, behind}``
the moment a sample leaves a whole window late (:func:`lost_a_window`: the run is stopped
then, and a sensor that slow would log the window's ``STATISTIC`` only after it had sent
the whole late window, 16 s late for 5000 samples/s on 0.05 core), ``DONE`` ``{samples, bytes}``.

``behind`` is the run's pace evidence: a sensor only sleeps and sends, so a sample
leaving more than :func:`window_grace` late means the machine could not run every
process as fast as the spec asks (:func:`kept_pace`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator

import numpy as np
import zmq

from edgetestbed.nodes import protocol
from edgetestbed.nodes.eventlog import BEHIND, STATISTIC
from edgetestbed.sensors.streams import StreamDefinition
from edgetestbed.spec.model import Spec

if TYPE_CHECKING:
    from edgetestbed.nodes.runtime import Runtime

LINGER_AT_END_MS = 2000  # let the last samples leave before the socket closes


def stream_definition(spec: Spec) -> StreamDefinition:
    """The spec's ``data:`` section as a stream definition."""
    return StreamDefinition(spec.data.dataset, spec.data.partition, dict(spec.data.params))


def sensor_stream(spec: Spec, index: int) -> Iterator[Any]:
    """Sensor ``index``'s samples. Indices need not be contiguous: a stream is defined for
    sensor ``index`` of ``max index + 1``, so a sensor's data does not depend on the others."""
    return stream_definition(spec).stream(index, max(spec.sensor_ids) + 1, spec.seed)


@dataclass(frozen=True)
class Schedule:
    """When each sample is sent and which window it belongs to: sample ``n`` leaves at
    ``start_at + n / rate`` and belongs to window ``floor(n / (rate · interval))``."""

    start_at: float
    rate: float
    interval: float
    limit: int

    @classmethod
    def of(cls, spec: Spec, start_at: float) -> "Schedule":
        return cls(start_at, spec.sensors.rate, spec.windows.interval, spec.windows.limit)

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


class Sensor:
    """One sensor process's publishing loop."""

    def __init__(self, runtime: "Runtime", index: int) -> None:
        self.runtime = runtime
        self.index = index
        self.stream = sensor_stream(runtime.spec, index)
        self.definition = stream_definition(runtime.spec)
        self.publisher = runtime.sockets.open(zmq.PUB, sndhwm=0)
        self.publisher.bind(runtime.wiring.bind_address(runtime.ident))
        self.label_dtype = ""
        self.sent = {"samples": 0, "bytes": 0}

    def run(self) -> Dict[str, int]:
        schedule = Schedule.of(self.runtime.spec, self.runtime.start_at)
        for window in range(schedule.limit):
            self._publish_window(schedule, window)
        self.publisher.close(linger=LINGER_AT_END_MS)
        return dict(self.sent)

    def _publish_window(self, schedule: Schedule, window: int) -> None:
        samples = schedule.samples_in(window)
        sent_bytes, behind, said = 0, 0.0, False
        for n in samples:
            behind = max(behind, time.time() - schedule.send_time(n))
            if not said and lost_a_window(behind, schedule.interval):
                self.runtime.log.write(BEHIND, window=window, behind=behind)
                said = True
            self.runtime.sleep_until(schedule.send_time(n))
            sent_bytes += self._send(n, window)
        self.sent["samples"] += len(samples)
        self.sent["bytes"] += sent_bytes
        self.runtime.log.write(STATISTIC, window=window, samples=len(samples), bytes=sent_bytes, behind=behind)

    def _send(self, n: int, window: int) -> int:
        x, y = next(self.stream)
        x = self.definition.to_wire(x)
        self.label_dtype = self.label_dtype or protocol.label_dtype(np.asarray(y))
        frames = protocol.encode(protocol.sample_message(self.runtime.ident, n, window, x, y, self.label_dtype))
        self.publisher.send_multipart(frames, copy=False)
        return protocol.wire_bytes(frames)
