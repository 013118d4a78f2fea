"""A parameter server's queue of its children's updates, and each update's staleness.

Updates are kept in arrival order with the version their sender had pulled (the PUSH's
``version``), so that the aggregation (:mod:`edgetestbed.aggregation`) can merge them all at
once, a few or one at a time, and each one's staleness is measured against the version it is
merged into: ``staleness = version merged into − version pulled`` (never below 0: a parent
restarted from scratch counts its versions from 0 again, and its children's older counts
mean nothing to it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from edgetestbed.aggregation import Queue
from edgetestbed.nodes.model import Update, joined


@dataclass
class Arrival:
    """One PUSH queued: who sent it, its update, the version it was computed from, when."""

    child: str
    update: Update
    base_version: int
    at: float


@dataclass
class Batch:
    """What one merge takes: one update per child (a child's several ones added up) and the
    staleness of every PUSH behind each, in arrival order."""

    updates: Dict[str, Update]
    staleness: Dict[str, List[int]]

    def stalest(self) -> List[int]:
        """Per update, in ``updates``' order, the staleness of its oldest part."""
        return [max(self.staleness[child]) for child in self.updates]


def added(first: Update, second: Update) -> Update:
    """Two updates of one child as one: their deltas and samples added, coverage joined."""
    return Update([a + b for a, b in zip(first.delta, second.delta)], first.samples + second.samples,
                  joined(first.coverage, second.coverage))


class PendingUpdates:
    """Children's updates received since they were last merged, oldest first."""

    def __init__(self) -> None:
        self.arrivals: List[Arrival] = []

    def __bool__(self) -> bool:
        return bool(self.arrivals)

    def add(self, child: str, update: Update, base_version: int, now: Optional[float] = None) -> None:
        self.arrivals.append(Arrival(child, update, base_version, time.time() if now is None else now))

    def queue(self, now: Optional[float] = None) -> Queue:
        """What is queued, as an aggregation sees it."""
        if not self.arrivals:
            return Queue()
        now = time.time() if now is None else now
        return Queue(frozenset(a.child for a in self.arrivals), len(self.arrivals), now - self.arrivals[0].at)

    def take(self, version: int, count: Optional[int] = None) -> Batch:
        """The oldest ``count`` arrivals (default: all), to merge into ``version``; the
        staleness of each PUSH taken."""
        count = len(self.arrivals) if count is None else count
        taken, self.arrivals = self.arrivals[:count], self.arrivals[count:]
        updates: Dict[str, Update] = {}
        staleness: Dict[str, List[int]] = {}
        for arrival in taken:
            queued = updates.get(arrival.child)
            updates[arrival.child] = arrival.update if queued is None else added(queued, arrival.update)
            staleness.setdefault(arrival.child, []).append(max(0, version - arrival.base_version))
        return Batch(updates, staleness)

