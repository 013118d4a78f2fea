"""The cloud baseline: one model trained on every sensor's samples, at the workers' pace.

It regenerates each sensor's stream locally (the streams are deterministic, see
:mod:`edgetestbed.data.streams`) and, at the end of each window, trains ``epochs``
on exactly the samples every sensor sent in that window
(:class:`~edgetestbed.data.schedule.Schedule`; none of those a stopped sensor withheld), then evaluates on the test set. It opens no socket: it adds no traffic to measured links.
Its accuracy against a node's at the same time is the accuracy lag.

Log events: ``STATISTIC`` per window ``{window, samples, train_time, trained_at,
train_loss, <evaluation>, wall_time, cpu_time, cpu_total, memory_peak}``; ``DONE``
``{windows, samples, <evaluation>, cpu_total, memory_peak}``.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Tuple

import numpy as np

from edgetestbed.data.streams import take_each
from edgetestbed.process.eventlog import Stopwatch
from edgetestbed.process.runtime import Runtime
from edgetestbed.process.sampling import schedule_of, sensor_stream, sent_mask, withheld


class CloudBaseline:
    """Centralised training on the union of all streams."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        spec = runtime.spec
        self.app = runtime.new_application(len(spec.nodes))
        self.streams = [sensor_stream(spec, index) for index in spec.sensor_ids]
        self.withheld = [withheld(spec, index) for index in spec.sensor_ids]
        self.samples = 0

    def run(self) -> Dict[str, Any]:
        limit = self.runtime.spec.windows.limit
        for window in range(limit):
            self.runtime.sleep_until(self.runtime.window_end(window) + self.runtime.grace)
            self._train(window)
        return {"windows": limit, "samples": self.samples, **self.runtime.evaluate(self.app)}

    def _window_samples(self, window: int) -> Tuple[np.ndarray, np.ndarray]:
        """The samples every sensor sent in ``window``: all it was due to send, less those a
        stopped sensor withheld."""
        due = schedule_of(self.runtime.spec, self.runtime.start_at).samples_in(window)
        x, y = take_each(self.streams, len(due))
        sent = np.array(sent_mask(self.withheld, due), dtype=bool)
        return (x[sent], y[sent]) if len(x) else (x, y)

    def _train(self, window: int) -> None:
        watch = Stopwatch()
        x, y = self._window_samples(window)
        started = time.time()
        loss = self.app.train(x, y, self.runtime.spec.windows.epochs)["loss"]
        trained_at = time.time()
        self.samples += len(x)
        self.runtime.log_window(self.app, watch, window, samples=len(x), train_time=trained_at - started,
                                trained_at=trained_at, train_loss=loss)
