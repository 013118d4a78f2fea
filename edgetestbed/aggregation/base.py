"""What every aggregation is: when a parameter server merges its children's updates, and how.

A parameter server queues each child's PUSH as it arrives (:mod:`edgetestbed.nodes.pending`)
and asks its aggregation, at every tick and after every merge, whether to merge now
(:meth:`Aggregation.due`, from a :class:`Queue`: what is queued, since when), then how many
of the queued arrivals, oldest first, the merge takes (:meth:`Aggregation.taking`): all of
them by default (a child that pushed twice has its updates added up), exactly ``k`` for
``buffered`` (what arrives after the k-th waits for the next merge, even within one tick),
one for ``async``, so that each update is applied on its own, against the model as it is
then. How the merged updates are combined is
:meth:`Aggregation.weights`: None is the sample-weighted average, as the server always did;
otherwise each update ``i`` is added scaled by ``weights[i]``.

The aggregation sees no model and keeps no queue: the server owns both, so a rule is a
few lines of pure decisions, testable on hand-made numbers, and a new one is one file.

Staleness: an update's staleness is the number of the server's merges (model versions)
between the version its sender last pulled (the PUSH's ``version``) and the version it is
merged into. Every aggregation gets it, whether or not it uses it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, FrozenSet, List, Optional, Sequence

from pydantic import BaseModel

from edgetestbed.params.plugins import Plugin, Registry


@dataclass(frozen=True)
class Queue:
    """What a server has queued since its last merge: ``children`` with an update queued,
    ``arrivals`` (PUSHes, a child's second one counted too) and ``waited``, the seconds since
    the oldest of them arrived (0 when nothing is queued)."""

    children: FrozenSet[str] = frozenset()
    arrivals: int = 0
    waited: float = 0.0


class Aggregation(Plugin, ABC):
    """Decides when a parameter server merges, and the weights of the updates it merges.

    Built once per server from its validated ``Params`` (the spec's ``aggregation:`` keys but
    ``type``, defaults applied).
    """

    rounds: ClassVar[bool] = False   # True: the children's steps are its rounds (``sync``)

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    def due(self, queue: Queue, live: FrozenSet[str], interval: float) -> bool:
        """Merge now? ``live``: the children that have not said DONE; ``interval``: the
        run's window interval in seconds (a scale for waiting)."""

    def taking(self, queue: Queue) -> int:
        """How many of the queued arrivals, oldest first, a merge due now takes: all."""
        return queue.arrivals

    def patience(self, interval: float) -> float:
        """For ``rounds``: how long the server waits for a child's update (a child waits for
        the round to close this and a window more)."""
        return interval

    def describe(self, queue: Queue, live: FrozenSet[str]) -> Dict[str, Any]:
        """Fields for the STATISTIC of a merge about to take from ``queue``: none."""
        return {}

    def weights(self, samples: Sequence[int], staleness: Sequence[int]) -> Optional[List[float]]:
        """The scale of each update merged (its ``samples``, its ``staleness``); None: their
        sample-weighted average."""
        return None


def waited_half_a_window(queue: Queue, interval: float) -> bool:
    """The fallback of the waiting rules: something has waited half a window, so that a slow
    or absent child delays nobody for long."""
    return queue.arrivals > 0 and queue.waited >= interval / 2


# Every module of this package is imported on first use; each registers its aggregations.
AGGREGATIONS: Registry[Aggregation] = Registry("aggregation", Aggregation, "type", "edgetestbed.aggregation",
                                               classes=True)
