"""``accuracy``: push only when the model got measurably better (the seed simulator's own).

The simulator this testbed grew from skips an exchange "if the difference in test accuracy
of the current model and the previous model is within the threshold". Here (the push side)
the model's accuracy on a fixed validation sample (``sample`` test samples, drawn once with
the spec's seed, the same for every node) is measured after every step and compared with
its accuracy when the node last pushed: the update is pushed if it improved by at least
``threshold`` (a fraction: 0.01 is one point), else kept pending. Before the first push
there is nothing to compare with, so the first step pushes. A sample larger than the test
set is the whole test set.

The pull side (the parent answering ``NOT_MODIFIED`` when its model's accuracy moved by less
than ``threshold`` since it last sent this child one) runs in the parent:
:mod:`edgetestbed.nodes.notmodified`.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from edgetestbed.params.fields import count
from edgetestbed.policies.base import POLICIES
from edgetestbed.policies.trigger import Trigger, TriggerParams, fraction

GAIN = "an accuracy gain as a fraction, like 0.01 for one point"
SAMPLE = "a number of test samples like 500"
Gain = fraction(1, GAIN)
Sample = count(1, 1_000_000, SAMPLE)


class AccuracyParams(TriggerParams):
    threshold: Gain = Field(description=GAIN)
    sample: Sample = Field(500, description=SAMPLE)


@POLICIES.register
class Accuracy(Trigger):
    """Pushes after a step when the model's accuracy on a fixed validation sample improved
    by at least ``threshold`` since the last push, or after ``max_wait`` steps; otherwise
    keeps the update pending. Pulls before every step."""

    name = "accuracy"
    rank = 6
    Params = AccuracyParams

    def __init__(self, params: AccuracyParams, trains: bool) -> None:
        super().__init__(params, trains)
        self.sample = int(params.sample)
        self.at_last_push: Optional[float] = None
        self.latest: Optional[float] = None

    def measure(self) -> Optional[float]:
        """The gain since the last push; None before the first."""
        self.latest = self.view.validation_accuracy(self.sample)
        return None if self.at_last_push is None else self.latest - self.at_last_push

    def passes(self, value: float) -> bool:
        return value >= self.threshold

    def pushed(self, now: float) -> None:
        super().pushed(now)
        self.at_last_push = self.latest
