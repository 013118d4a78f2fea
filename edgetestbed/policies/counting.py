"""Exchanging every so many steps or mini-batches: what ``simple``, ``window`` and
``downpour`` have in common."""

from __future__ import annotations

from pydantic import BaseModel

from edgetestbed.policies.base import Event, Moment, Policy


class CountingPolicy(Policy):
    """Pulls before every ``pull_every``-th and pushes after every ``push_every``-th step
    (or mini-batch, when ``batched``): pulls before steps 0, k, 2k, ..., pushes after steps
    k-1, 2k-1, ... A subclass says which counts its parameters give."""

    def __init__(self, params: BaseModel, pull_every: int, push_every: int, batched: bool = False) -> None:
        super().__init__(params, trains=batched)
        self.pull_every, self.push_every, self.batched = pull_every, push_every, batched
        self.start = Moment.BATCH_START if batched else Moment.STEP_START
        self.end = Moment.BATCH_END if batched else Moment.STEP_END

    def wants_pull(self, event: Event) -> bool:
        return event.moment is self.start and event.index % self.pull_every == 0

    def wants_push(self, event: Event) -> bool:
        return event.moment is self.end and (event.index + 1) % self.push_every == 0
