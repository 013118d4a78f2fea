"""``time``: push and pull on the clock, whatever the node is doing.

(Not ``time.py``: a module named like the standard library's shadows it for any tool that
runs a file of this folder directly.)
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from edgetestbed.params.fields import Interval
from edgetestbed.params.plugins import PluginParams
from edgetestbed.policies.base import POLICIES, Event, Policy


class TimeParams(PluginParams):
    push: Interval = Field(description="a push interval like 2s")
    pull: Optional[Interval] = None   # default: as often as it pushes

    @model_validator(mode="after")
    def _pull_like_push(self) -> TimeParams:
        if self.pull is None:
            self.pull = self.push
        return self


@POLICIES.register
class Time(Policy):
    """Pushes every ``push`` and pulls every ``pull`` seconds (default: as often as it
    pushes), at any event, counted from the run's start time.

    Pulls are offset by half a pull interval from the start. In phase with the
    pushes, every pull came right after a push, before the parent had merged it:
    the node adopted a model without its own latest work, and each later update
    was computed from a base one merge stale (the root's accuracy fell at merges).
    """

    name = "time"
    rank = 1
    Params = TimeParams

    def __init__(self, params: TimeParams, trains: bool) -> None:
        super().__init__(params, trains)
        self.push_interval = float(params.push)
        self.pull_interval = float(params.pull or params.push)
        self.last_push = self.last_pull = float("inf")  # nothing is due before the run begins

    def begin(self, start_at: float) -> None:
        self.last_push = start_at
        self.last_pull = start_at - self.pull_interval / 2

    def wants_pull(self, event: Event) -> bool:
        return event.now - self.last_pull >= self.pull_interval

    def wants_push(self, event: Event) -> bool:
        return event.now - self.last_push >= self.push_interval

    def pulled(self, now: float) -> None:
        self.last_pull = now

    def pushed(self, now: float) -> None:
        self.last_push = now
