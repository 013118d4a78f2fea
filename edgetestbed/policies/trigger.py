"""What the learning-based triggers (``significance``, ``relevance``, ``accuracy``) share.

A trigger pulls like ``simple`` (before every step) but pushes only when its model says the
update is worth the bytes: at each ``STEP_END`` it measures a value on the model (through
the node's :class:`~edgetestbed.policies.view.ModelView`) and pushes if the value passes its
``threshold``. Otherwise it *holds* the update: ``significance`` and ``accuracy`` keep it
pending (the next push carries it, added up), ``relevance`` has the node drop it.

``max_wait`` is counted in steps (windows on a worker, merges on a parameter server), not
seconds: a step is what a trigger decides at, so a count bounds exactly how many decisions
in a row may hold back, whatever the window interval; after ``max_wait - 1`` held steps the
next one pushes regardless, so no node goes silent for good. Whatever is still pending at
the end is pushed by the final synchronisation, as for every policy.

On a parameter server a trigger applies the same rule to its merged update (its "model" is
merged, not trained, but the question, is this worth sending up, is the same).

Log events (through the view): ``SUPPRESSED`` ``{trigger, step, value, threshold}`` for a
held update kept pending, ``DISCARDED`` ``{trigger, step, agreement, threshold, samples}``
for one dropped, ``FORCED`` ``{trigger, step, value, threshold, reason}`` for a push the
value alone would not have made (``reason``: ``max_wait`` with ``waited``, or ``final``).
DONE gets ``pushes_suppressed`` and ``updates_discarded``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Annotated, Dict, Optional

from pydantic import BaseModel, BeforeValidator, Field

from edgetestbed.params.fields import bounded, count, number
from edgetestbed.params.plugins import PluginParams
from edgetestbed.policies.base import Event, Moment, Policy
from edgetestbed.policies.view import ModelView

SUPPRESSED, DISCARDED, FORCED = "SUPPRESSED", "DISCARDED", "FORCED"

STEPS = "a number of steps (windows, or a parameter server's merges) like 3"
Steps = count(1, 10_000, STEPS)


def fraction(high: float, expected: str) -> Any:
    """A number above 0 and at most ``high``; ``expected`` describes one, with an example."""
    return Annotated[float, BeforeValidator(bounded(number(expected), 0, high, low_open=True))]


class TriggerParams(PluginParams):
    max_wait: Steps = Field(3, description=STEPS)


class Trigger(Policy):
    """Pulls before every step; pushes after a step whose :meth:`measure` passes the
    threshold, or after ``max_wait`` steps without a push; otherwise :meth:`hold`."""

    def __init__(self, params: BaseModel, trains: bool) -> None:
        super().__init__(params, trains)
        self.threshold = float(params.threshold)
        self.max_wait = int(params.max_wait)
        self.view: Optional[ModelView] = None
        self.waited = 0   # steps ended since the last push, this one included
        self.suppressed = self.discarded = 0

    def attach(self, view: ModelView) -> None:
        self.view = view

    @abstractmethod
    def measure(self) -> Optional[float]:
        """The value the decision rests on; None: nothing to compare with yet (push)."""

    @abstractmethod
    def passes(self, value: float) -> bool:
        """Whether ``value`` is worth a push."""

    def wants_pull(self, event: Event) -> bool:
        return event.moment is Moment.STEP_START

    def wants_push(self, event: Event) -> bool:
        if event.moment is not Moment.STEP_END:
            return False
        self.waited += 1
        value = self.measure()
        if value is None or self.passes(value):
            return True
        if self.waited >= self.max_wait:
            self.force(event, value, "max_wait", waited=self.waited)
            return True
        return self.hold(event, value)

    def pushed(self, now: float) -> None:
        self.waited = 0

    def force(self, event: Event, value: float, reason: str, **fields: Any) -> None:
        """Log a push the value alone would not have made."""
        self.view.log(FORCED, trigger=self.name, step=event.index, value=value, threshold=self.threshold,
                      reason=reason, **fields)

    def hold(self, event: Event, value: float) -> bool:
        """Keep the update pending (it is pushed later, added up with what follows); whether
        to push after all (never, here)."""
        self.suppressed += 1
        self.view.log(SUPPRESSED, trigger=self.name, step=event.index, value=value, threshold=self.threshold)
        return False

    def summary(self) -> Dict[str, Any]:
        return {"pushes_suppressed": self.suppressed, "updates_discarded": self.discarded}
