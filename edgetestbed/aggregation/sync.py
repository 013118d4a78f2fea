"""``sync``: rounds. A server merges once per round, with an update from every live child.

A round of a server is a version of its model: round ``r`` opens when the server's model
reaches version ``r`` (its children learn it by pulling) and closes with the merge that makes
version ``r + 1``. The server merges only when every child that has not said DONE has an
update queued, however long that takes, up to ``timeout`` (default: two windows) for a child
that is dead or cut off; a merge that gave up on some logs them as ``missing`` in its
``STATISTIC``. A worker whose parent runs rounds does not start a window before the round
its last update belongs to has closed: it pulls until its parent's version has passed it (or
``timeout`` and a window more have passed, so that the server gives up on a dead sibling
first; :mod:`edgetestbed.nodes.upstream`). So the root's pace
paces the tree, as in synchronous training, and what that costs shows as late windows.

Only children whose policy pulls before and pushes after the same steps (``simple``,
``window``) fit rounds: ``validate`` refuses a ``sync`` server with a child of another policy.
A parameter server under a ``sync`` parent takes part in its rounds as a worker does, and
passes them down: after pushing a merge it merges nothing more, and shows its children the
model they had, until the parent's round has closed (:mod:`edgetestbed.nodes.server`). So in
a tree of ``sync`` servers the root opens each round down the tree, every server waits for
all its live children, merges and reports up, and each worker starts its next window from a
model holding every worker's last one.
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, Optional

from pydantic import Field

from edgetestbed.aggregation.base import AGGREGATIONS, Aggregation, Queue
from edgetestbed.params.fields import Interval
from edgetestbed.params.plugins import PluginParams

ROUND_WINDOWS = 2   # the default timeout, in windows


class SyncParams(PluginParams):
    timeout: Optional[Interval] = Field(None, description="how long to wait for a dead child, like 6s")


@AGGREGATIONS.register
class Sync(Aggregation):
    """Merges once every live child has an update queued (one round), or, for a dead or cut-off
    child, once the oldest update has waited ``timeout`` (default: two windows), logging
    the children ``missing``; sample-weighted. Its workers wait for each round to open."""

    name = "sync"
    rank = 3
    rounds = True
    Params = SyncParams

    def patience(self, interval: float) -> float:
        """How long a round waits for a child (and a child for a round)."""
        return self.params.timeout if self.params.timeout is not None else ROUND_WINDOWS * interval

    def due(self, queue: Queue, live: FrozenSet[str], interval: float) -> bool:
        return queue.arrivals > 0 and (live <= queue.children or queue.waited >= self.patience(interval))

    def describe(self, queue: Queue, live: FrozenSet[str]) -> Dict[str, Any]:
        return {"missing": sorted(live - queue.children)}
