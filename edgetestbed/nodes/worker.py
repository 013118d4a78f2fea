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
from typing import Any, Dict, Optional

import numpy as np

from edgetestbed.nodes.inbox import TICK_SECONDS, Inbox
from edgetestbed.nodes.model import ModelState
from edgetestbed.nodes.upstream import Exchange
from edgetestbed.policies import Moment, create_policy
from edgetestbed.process.eventlog import Stopwatch
from edgetestbed.process.runtime import Runtime


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
