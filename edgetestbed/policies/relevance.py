"""``relevance``: drop local updates irrelevant to where the model is going (CMFL, Wang et
al., ICDCS'19).

CMFL saves uploads by not sending a client's update whose direction disagrees with the
global one: it measures the fraction of parameters whose update has the same sign as the
last global update, and a client below the threshold does not upload, and drops its update
(it would pull the model the wrong way). Here the global update is the change between the
last two models this node pulled; before it has pulled two, every update is pushed.

A dropped update is gone: the node's weights go back to the model its parent knows
(``reference``), its samples are counted in ``DISCARDED`` and not pushed, and the window is
not covered by the parent (coverage is that of the reference; a later push's coverage
names only its own windows' latest, so a hole below it shows in ``DISCARDED`` events, not
in coverage vectors). An update holding some worker's last window is never dropped (a
``FORCED`` push, ``reason: final``): the run's final synchronisation waits for every
worker's last window, and would wait in vain.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from pydantic import Field

from edgetestbed.policies.base import POLICIES, Event
from edgetestbed.policies.trigger import DISCARDED, Trigger, TriggerParams, fraction

AGREEMENT = "a fraction of parameters whose update agrees in sign, like 0.7"
Agreement = fraction(1, AGREEMENT)


class RelevanceParams(TriggerParams):
    threshold: Agreement = Field(description=AGREEMENT)


def sign_agreement(update: List[np.ndarray], global_update: List[np.ndarray]) -> float:
    """The fraction of parameters whose ``update`` has the sign of ``global_update`` (a zero
    agrees only with a zero, as in CMFL)."""
    same = sum(int(np.count_nonzero(np.sign(u) == np.sign(g))) for u, g in zip(update, global_update))
    total = sum(u.size for u in update)
    return same / total if total else 1.0


@POLICIES.register
class Relevance(Trigger):
    """Pushes after a step when at least ``threshold`` of the parameters' pending updates
    agree in sign with the last global update (between the last two models pulled), or
    after ``max_wait`` steps; otherwise drops the update. Pulls before every step."""

    name = "relevance"
    rank = 5
    Params = RelevanceParams

    def __init__(self, params: RelevanceParams, trains: bool) -> None:
        super().__init__(params, trains)
        self.discarding = False

    def wants_push(self, event: Event) -> bool:
        self.discarding = False   # a drop is for the step just decided, never a later one
        return super().wants_push(event)

    def measure(self) -> Optional[float]:
        global_update = self.view.last_global_update()
        if global_update is None:
            return None
        return sign_agreement(self.view.pending_update(), global_update)

    def passes(self, value: float) -> bool:
        return value >= self.threshold

    def hold(self, event: Event, value: float) -> bool:
        """Drop the update (the node does, asked next by :meth:`wants_discard`), unless it
        holds a worker's last window: then push it after all."""
        if self.view.final_window_pending():
            self.force(event, value, "final")
            return True
        self.discarded += 1
        self.discarding = True
        self.view.log(DISCARDED, trigger=self.name, step=event.index, agreement=value, threshold=self.threshold,
                      samples=self.view.pending_samples())
        return False

    def wants_discard(self, event: Event) -> bool:
        discard, self.discarding = self.discarding, False
        return discard
