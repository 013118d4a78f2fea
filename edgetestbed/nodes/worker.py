"""The worker process: trains on its sensors' samples window by window, exchanging per policy.

Samples arrive on a SUB socket connected to the worker's sensors. Each carries the window
it was sent in (see :class:`~edgetestbed.data.schedule.Schedule`), so grouping does not
depend on when the worker gets round to reading: window ``j`` is processed at its end
(plus a small grace for samples still in flight) with every sample sent in it, sorted
by sensor and sequence number so that training is reproducible; a sample that arrives
after its window was processed joins the next one (counted as ``late``).

Per window: policy events ``STEP_START`` (pull), training (``epochs`` passes; for
``downpour`` mini-batch by mini-batch with ``BATCH_*`` events), ``STEP_END`` (push),
evaluation on the test set. While waiting for a window to end the worker reports
``TICK`` events (time-based policies exchange then). It pulls once on start (to begin
from its parent's model; a worker restarted after a crash begins so too, at the window in
progress), and after the last window it pushes what is left and pulls
until its model covers the last window of every worker, or ``sync_wait`` has passed,
then sends ``DONE`` to its parent.

Log events: ``STATISTIC`` per window ``{window, samples, late, sensor_messages,
sensor_bytes, train_time, trained_at, train_loss, version, coverage, <evaluation>,
wall_time, cpu_time, cpu_total, memory_peak}`` where ``<evaluation>`` is the
application's figures on the test set (``score``, ``accuracy`` and ``per_class``, or
``rmse``, ...; see :meth:`Runtime.evaluate`) and ``trained_at`` the time the model first
held the window; ``DONE`` ``{windows, samples, complete, coverage, <evaluation>,
exchange_time, cpu_total, memory_peak}`` and, if it coded, ``codec_*`` (see
:mod:`edgetestbed.codecs.usage`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import zmq

from edgetestbed.nodes.model import ModelState
from edgetestbed.nodes.upstream import Exchange
from edgetestbed.policies import Moment, create_policy
from edgetestbed.process import protocol
from edgetestbed.process.eventlog import Stopwatch
from edgetestbed.process.protocol import Schema
from edgetestbed.process.runtime import Runtime
from edgetestbed.process.sampling import stream_definition
from edgetestbed.spec.plan import sensor_id

TICK_SECONDS = 0.05


class Inbox:
    """Samples from the worker's sensors, kept by the window they were sent in."""

    def __init__(self, runtime: Runtime, sensors: Tuple[int, ...]) -> None:
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


class Worker:
    """A leaf of the tree: its sensors' samples in, model updates out."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        node = runtime.node
        self.inbox = Inbox(runtime, node.sensors)
        self.model = ModelState(runtime.new_application(runtime.spec.nodes.index(node)))
        policy = create_policy(node.policy.type, node.policy.params, trains=True)
        self.exchange = Exchange(runtime, self.model, policy)
        self.limit = runtime.spec.windows.limit
        self.samples = 0
        self.batches = 0

    def run(self) -> Dict[str, Any]:
        """All windows, the final synchronisation and DONE to the parent; the DONE summary."""
        self.exchange.begin(self.runtime.start_at)
        self.exchange.pull()
        for window in range(min(self.runtime.window_now(), self.limit - 1), self.limit):
            end = self.runtime.window_end(window) + self.runtime.grace
            self.inbox.receive_until(end, lambda: self.exchange.at(Moment.TICK, window))
            self._process(window)
        complete = self._synchronise()
        self.exchange.leave()
        return {"windows": self.limit, "samples": self.samples, "complete": complete,
                "coverage": dict(self.model.coverage), **self.runtime.evaluate(self.model.app),
                **self.exchange.usage()}

    def _process(self, window: int) -> None:
        watch = Stopwatch()
        x, y, traffic = self.inbox.take(window)
        self.exchange.at(Moment.STEP_START, window)
        started = time.time()
        loss = self._train(window, x, y)
        trained_at = time.time()
        self.samples += len(x)
        self.exchange.at(Moment.STEP_END, window)
        self.runtime.log_window(self.model.app, watch, window, samples=len(x), **traffic,
                                train_time=trained_at - started, trained_at=trained_at, train_loss=loss,
                                version=self.model.base_version, coverage=dict(self.model.coverage))

    def _train(self, window: int, x: np.ndarray, y: np.ndarray) -> Optional[float]:
        """Train on the window's samples; the model then covers the window."""
        epochs = self.runtime.spec.windows.epochs
        if not self.exchange.policy.batched:
            loss = self.model.app.train(x, y, epochs)["loss"]
            self.model.trained(len(x))
            self.model.covered(self.runtime.ident, window)
            return loss
        return self._train_batches(window, x, y, epochs)

    def _train_batches(self, window: int, x: np.ndarray, y: np.ndarray, epochs: int) -> Optional[float]:
        """Mini-batch by mini-batch with BATCH_* events; a sample counts once, in the first epoch."""
        app = self.model.app
        size = getattr(app.params, "batch_size", None) or max(len(x), 1)
        batches = [(epoch, order[i:i + size]) for epoch in range(epochs)
                   for order in [app.rng.permutation(len(x))] for i in range(0, len(x), size)]
        losses = []
        for number, (epoch, batch) in enumerate(batches):
            self.exchange.at(Moment.BATCH_START, self.batches)
            losses.append(app.train(x[batch], y[batch], 1)["loss"])
            self.model.trained(len(batch) if epoch == 0 else 0)
            if number == len(batches) - 1:
                self.model.covered(self.runtime.ident, window)
            self.exchange.at(Moment.BATCH_END, self.batches)
            self.batches += 1
        if not batches:
            self.model.covered(self.runtime.ident, window)
        return float(np.mean(losses)) if losses else None

    def _synchronise(self) -> bool:
        """After the last window: push the rest, pull until complete or ``sync_wait`` is over."""
        deadline = self.runtime.window_end(self.limit - 1) + self.runtime.sync_wait
        while not self.exchange.sync_step() and time.time() < deadline:
            self.runtime.sleep_until(time.time() + TICK_SECONDS)
        return self.exchange.complete()
