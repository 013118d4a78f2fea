"""The centralized cloud (``cloud: {mode: centralized}``): every sensor's raw samples travel
across the emulated network to the cloud, which trains one model on what arrives.

This is the alternative the hierarchy exists to avoid, measured rather than assumed: the
samples leave each sensor, cross its worker's switch, the tree's links up to the root's
switch and the WAN link, all shaped as the spec says, and the captures count them there.
The tree's nodes run no process, so those links carry raw data and nothing else.

The cloud subscribes to every sensor (:class:`~edgetestbed.nodes.inbox.Inbox`) and, at the
end of each window plus the grace the workers also wait, trains ``epochs`` on the window's
samples that arrived, then evaluates on the test set, as the baseline does on regenerated
samples (:mod:`edgetestbed.nodes.cloud`). A sample that arrives after its window was trained
joins the next one (``late``); one that never arrives is counted in ``lost`` at the end.

Log events: ``STATISTIC`` per window ``{window, samples, expected, late, sensor_messages,
sensor_bytes, train_time, trained_at, train_loss, <evaluation>, wall_time, cpu_time,
cpu_total, memory_peak}`` (``expected``: the samples the sensors sent in the window, by the
shared :class:`~edgetestbed.data.schedule.Schedule`, less those a stopped sensor withheld); ``DONE`` ``{windows, samples,
expected, lost, sensor_bytes, <evaluation>, cpu_total, memory_peak}``.
"""

from __future__ import annotations

import time
from typing import Any, Dict

from edgetestbed.nodes.inbox import Inbox
from edgetestbed.process.eventlog import Stopwatch
from edgetestbed.process.runtime import Runtime
from edgetestbed.process.sampling import schedule_of, sent_mask, withheld


class CentralizedCloud:
    """One model trained on the raw samples every sensor sends it over the network."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        spec = runtime.spec
        self.inbox = Inbox(runtime, spec.sensor_ids)
        self.withheld = [withheld(spec, index) for index in spec.sensor_ids]
        self.app = runtime.new_application(len(spec.nodes))
        self.totals = {"samples": 0, "expected": 0, "sensor_bytes": 0}

    def run(self) -> Dict[str, Any]:
        limit = self.runtime.spec.windows.limit
        for window in range(limit):
            self.inbox.receive_until(self.runtime.window_end(window) + self.runtime.grace, lambda: None)
            self._train(window)
        return {"windows": limit, **self.totals, "lost": self.totals["expected"] - self.totals["samples"],
                **self.runtime.evaluate(self.app)}

    def _train(self, window: int) -> None:
        watch = Stopwatch()
        x, y, traffic = self.inbox.take(window)
        due = schedule_of(self.runtime.spec, self.runtime.start_at).samples_in(window)
        expected = sum(sent_mask(self.withheld, due))
        started = time.time()
        loss = self.app.train(x, y, self.runtime.spec.windows.epochs)["loss"]   # None for no samples
        trained_at = time.time()
        self.totals["samples"] += len(x)
        self.totals["expected"] += expected
        self.totals["sensor_bytes"] += traffic["sensor_bytes"]
        self.runtime.log_window(self.app, watch, window, samples=len(x), expected=expected, **traffic,
                                train_time=trained_at - started, trained_at=trained_at, train_loss=loss)
