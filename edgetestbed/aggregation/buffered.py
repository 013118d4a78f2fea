"""``buffered``: FedBuff (Nguyen et al., 2022), merge once ``k`` updates have arrived.

Waiting for a fixed number of updates, not for particular children, lets fast children carry
the model forward without waiting for slow ones (unlike ``average``), while still averaging
several updates per merge (unlike ``async``). A server whose children are gone would never
see ``k`` arrivals again, so it also merges what it has once the oldest update has waited
``timeout`` (default: half a window, ``average``'s fallback).
"""

from __future__ import annotations

from typing import FrozenSet, Optional

from pydantic import Field

from edgetestbed.aggregation.base import AGGREGATIONS, Aggregation, Queue, waited_half_a_window
from edgetestbed.params.fields import Interval, count
from edgetestbed.params.plugins import PluginParams

UPDATES = "a number of updates like 2"
Updates = count(1, 10_000, UPDATES)


class BufferedParams(PluginParams):
    k: Updates = Field(description=UPDATES)
    timeout: Optional[Interval] = None   # default: half a window


@AGGREGATIONS.register
class Buffered(Aggregation):
    """Merges the oldest ``k`` updates (PUSHes) queued once there are ``k``, or what there is
    once the oldest has waited ``timeout`` (default: half a window); applies their
    sample-weighted average (a child's several ones added up)."""

    name = "buffered"
    rank = 1
    Params = BufferedParams

    def due(self, queue: Queue, live: FrozenSet[str], interval: float) -> bool:
        if queue.arrivals >= self.params.k:
            return True
        if self.params.timeout is None:
            return waited_half_a_window(queue, interval)
        return queue.arrivals > 0 and queue.waited >= self.params.timeout

    def taking(self, queue: Queue) -> int:
        return min(queue.arrivals, self.params.k)
