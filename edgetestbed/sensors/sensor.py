"""The sensor process: publishes its deterministic stream over ZeroMQ at the spec's rate.

Sensor ``K`` binds a PUB socket on its endpoint and, from the run's start time ``T``,
sends sample ``n`` of its stream at ``T + n / rate`` as one ``SAMPLE`` message (see
:mod:`edgetestbed.process.protocol`) whose ``window`` is the worker window that send time
falls in and whose ``seq`` is ``n``. It stops after the last window. While the spec's events
have it stopped (``stop_sensor``), it withholds the samples due
(:func:`~edgetestbed.process.sampling.withheld`). Which samples fall
in which window is :class:`~edgetestbed.data.schedule.Schedule`, shared with the cloud
baseline, which regenerates the same samples locally.

Log events (``logs/sensor<K>.jsonl``): ``STATISTIC`` per window ``{window, samples,
withheld, bytes, behind}`` (``bytes`` on the wire incl. ZMTP framing; ``behind``: the most any of
the window's samples left after its send time, in seconds), ``BEHIND`` ``{window, behind}``
the moment a sample leaves a whole window late
(:func:`~edgetestbed.data.schedule.lost_a_window`: the run is stopped then, and a sensor
that slow would log the window's ``STATISTIC`` only after it had sent the whole late
window, 16 s late for 5000 samples/s on 0.05 core), ``DONE`` ``{samples, bytes}``.

``behind`` is the run's pace evidence: a sensor only sleeps and sends, so a sample
leaving more than :func:`~edgetestbed.data.schedule.window_grace` late means the machine
could not run every process as fast as the spec asks
(:func:`~edgetestbed.data.schedule.kept_pace`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict

import numpy as np
import zmq

from edgetestbed.data.schedule import Schedule, lost_a_window
from edgetestbed.process import protocol
from edgetestbed.process.eventlog import BEHIND, STATISTIC
from edgetestbed.process.sampling import schedule_of, sensor_stream, stream_definition, withheld

if TYPE_CHECKING:
    from edgetestbed.process.runtime import Runtime

LINGER_AT_END_MS = 2000  # let the last samples leave before the socket closes


class Sensor:
    """One sensor process's publishing loop."""

    def __init__(self, runtime: "Runtime", index: int) -> None:
        self.runtime = runtime
        self.index = index
        self.stream = sensor_stream(runtime.spec, index)
        self.is_withheld = withheld(runtime.spec, index)
        self.definition = stream_definition(runtime.spec)
        self.publisher = runtime.sockets.open(zmq.PUB, sndhwm=0)
        self.publisher.bind(runtime.wiring.bind_address(runtime.ident))
        self.label_dtype = ""
        self.sent = {"samples": 0, "bytes": 0}

    def run(self) -> Dict[str, int]:
        schedule = schedule_of(self.runtime.spec, self.runtime.start_at)
        for window in range(schedule.limit):
            self._publish_window(schedule, window)
        self.publisher.close(linger=LINGER_AT_END_MS)
        return dict(self.sent)

    def _publish_window(self, schedule: Schedule, window: int) -> None:
        sent, withheld, sent_bytes, behind, said = 0, 0, 0, 0.0, False
        for n in schedule.samples_in(window):
            sample = next(self.stream)   # drawn even when withheld: the stream's time passes
            if self.is_withheld(n):
                withheld += 1
                continue
            behind = max(behind, time.time() - schedule.send_time(n))
            if not said and lost_a_window(behind, schedule.interval):
                self.runtime.log.write(BEHIND, window=window, behind=behind)
                said = True
            self.runtime.sleep_until(schedule.send_time(n))
            sent_bytes += self._send(n, window, *sample)
            sent += 1
        self.sent["samples"] += sent
        self.sent["bytes"] += sent_bytes
        self.runtime.log.write(STATISTIC, window=window, samples=sent, withheld=withheld, bytes=sent_bytes,
                               behind=behind)

    def _send(self, n: int, window: int, x: np.ndarray, y: Any) -> int:
        x = self.definition.to_wire(x)
        self.label_dtype = self.label_dtype or protocol.label_dtype(np.asarray(y))
        frames = protocol.encode(protocol.sample_message(self.runtime.ident, n, window, x, y, self.label_dtype))
        self.publisher.send_multipart(frames, copy=False)
        return protocol.wire_bytes(frames)
