"""``average``: the rule parameter servers always had, and the default."""

from __future__ import annotations

from typing import FrozenSet

from edgetestbed.aggregation.base import AGGREGATIONS, Aggregation, Queue, waited_half_a_window


@AGGREGATIONS.register
class Average(Aggregation):
    """Merges when every live child has an update queued, or half a window after the oldest
    queued update arrived; applies the sample-weighted average of the queued updates."""

    name = "average"
    rank = 0   # the default, listed first

    def due(self, queue: Queue, live: FrozenSet[str], interval: float) -> bool:
        return queue.arrivals > 0 and (live <= queue.children or waited_half_a_window(queue, interval))
