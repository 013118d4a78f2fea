"""``async``: FedAsync (Xie et al., 2019), merge every update on arrival, scaled by staleness.

An update computed from an old model pulls the current one towards where the model was, so
it is applied scaled down by how stale it is: ``w ← w + alpha × (1 + s)^-a × Δ``, with ``s``
the number of this server's merges since the version the sender had pulled (the polynomial
staleness function of the paper). ``a = 0`` ignores staleness. No update waits for another,
so no child is ever waited for.

(Not ``async.py``: ``async`` is a Python keyword, so a module of that name cannot be imported
with an import statement.)
"""

from __future__ import annotations

from typing import Annotated, FrozenSet, List, Sequence

from pydantic import BeforeValidator, Field

from edgetestbed.aggregation.base import AGGREGATIONS, Aggregation, Queue
from edgetestbed.params.fields import bounded, number
from edgetestbed.params.plugins import PluginParams

ALPHA = "a mixing weight above 0 and at most 1, like 0.6"
EXPONENT = "a staleness exponent of at least 0, like 0.5"


class AsyncParams(PluginParams):
    alpha: Annotated[float, BeforeValidator(bounded(number(ALPHA), 0, 1, low_open=True))] = \
        Field(0.6, description=ALPHA)
    a: Annotated[float, BeforeValidator(bounded(number(EXPONENT), 0, 100))] = Field(0.5, description=EXPONENT)


def staleness_weight(alpha: float, a: float, staleness: int) -> float:
    """``alpha × (1 + staleness)^-a``: the scale of an update ``staleness`` merges old."""
    return alpha * (1.0 + max(staleness, 0)) ** -a


@AGGREGATIONS.register
class Async(Aggregation):
    """Merges every update as soon as it has arrived, one at a time, oldest first; adds it
    scaled by ``alpha × (1 + staleness)^-a`` (default ``alpha`` 0.6, ``a`` 0.5)."""

    name = "async"
    rank = 2
    Params = AsyncParams

    def due(self, queue: Queue, live: FrozenSet[str], interval: float) -> bool:
        return queue.arrivals > 0

    def taking(self, queue: Queue) -> int:
        return min(queue.arrivals, 1)

    def weights(self, samples: Sequence[int], staleness: Sequence[int]) -> List[float]:
        return [staleness_weight(self.params.alpha, self.params.a, s) for s in staleness]
