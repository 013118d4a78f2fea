"""The samples a process receives from sensors: a SUB socket connected to them, the samples
kept by the window they were sent in (a worker's from its own sensors, a centralized cloud's
from all of them).

Each sample carries the window it was sent in (see :class:`~edgetestbed.data.schedule.Schedule`),
so grouping does not depend on when the receiver gets round to reading; :meth:`Inbox.take`
hands over a window's samples sorted by sensor and sequence number, so that training on them
is reproducible, with any earlier window's left over (counted as ``late``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import zmq

from edgetestbed.process import protocol
from edgetestbed.process.protocol import Schema
from edgetestbed.process.runtime import Runtime
from edgetestbed.process.sampling import stream_definition
from edgetestbed.spec.plan import sensor_id

TICK_SECONDS = 0.05


class Inbox:
    """Samples from some sensors, kept by the window they were sent in."""

    def __init__(self, runtime: Runtime, sensors: Sequence[int]) -> None:
        self.runtime = runtime
        # A sample's frames are bounded like a header: the schema is known only after
        # the test set is loaded, and the socket must connect before the sensors start.
        self.socket = runtime.sockets.open(zmq.SUB, protocol.MAX_HEADER_BYTES, rcvhwm=0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        for index in sensors:
            self.socket.connect(runtime.wiring.address(sensor_id(index)))
        x_test, y_test = runtime.evaluation_data
        self.definition = stream_definition(runtime.spec)
        self.schema = Schema.for_samples(x_test.shape[1:], self.definition.wire_dtype, protocol.label_dtype(y_test))
        self.samples: Dict[int, List[Tuple[str, int, np.ndarray, np.ndarray]]] = defaultdict(list)
        self.bytes: Dict[int, int] = defaultdict(int)

    def receive_until(self, deadline: float, on_idle: Callable[[], None]) -> None:
        """Take in samples until ``deadline`` (at least those already waiting, even if it has
        passed), calling ``on_idle`` every tick."""
        while (remaining := deadline - time.time()) > 0:
            if self.runtime.poll(self.socket, min(remaining, TICK_SECONDS)):
                self._receive_waiting()
            on_idle()
        self._receive_waiting()

    def _receive_waiting(self) -> None:
        while self.runtime.poll(self.socket, 0):
            frames = self.socket.recv_multipart(copy=False)
            sample = self.runtime.decode(frames, self.schema)
            if sample is None:
                continue
            x, y = sample.arrays
            self.samples[sample.window].append((sample.sender, sample.seq, x.copy(), y.copy()))
            self.bytes[sample.window] += protocol.wire_bytes(frames)

    def take(self, window: int) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
        """Every sample sent in ``window`` or before and not yet taken, as ``(x, y)`` arrays
        in (sensor, sequence) order, and the traffic figures of the window."""
        windows = sorted(w for w in self.samples if w <= window)
        late = sum(len(self.samples[w]) for w in windows if w < window)
        taken = sorted((s for w in windows for s in self.samples.pop(w)), key=lambda s: (s[0], s[1]))
        traffic = {"late": late, "sensor_messages": len(taken),
                   "sensor_bytes": sum(self.bytes.pop(w) for w in windows)}
        x_spec = self.schema.arrays_by_type[protocol.SAMPLE][0]
        x = np.array([s[2] for s in taken], dtype=x_spec.dtype).reshape(len(taken), *x_spec.shape)
        return self.definition.from_wire(x), np.array([s[3] for s in taken]), traffic
