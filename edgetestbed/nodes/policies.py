"""Exchange policies: when a node pulls its parent's model and pushes its own update.

A node reports its progress to its policy as :class:`Event` s and exchanges when the
policy says so; nothing else in a node knows which policy it runs. Events:

=================  =============================================================
``STEP_START``     before a step: a worker's window (before training on it), a
                   parameter server's merge
``STEP_END``       after that step
``BATCH_START``    before a worker's mini-batch (only for ``batched`` policies)
``BATCH_END``      after it
``TICK``           the node is idle (a worker waiting for its window to end, a
                   parameter server between requests); time-based policies act here
=================  =============================================================

``index`` counts steps (window number, merge number) or mini-batches (from 0, over the
whole run). Policies, from the spec's ``policy`` of the node:

``simple``     pull at every STEP_START, push at every STEP_END
``window``     the same every ``every`` steps (pull before steps 0, k, 2k, ..., push after
               steps k-1, 2k-1, ...)
``downpour``   Downpour SGD: pull before every ``n_fetch``-th and push after every
               ``n_push``-th mini-batch; on a parameter server (no mini-batches) the same
               counts apply to its merges
``time``       push every ``push`` and pull every ``pull`` seconds, at any event, counted
               from the run's start time

When a node pushes and pulls at the same event it pushes first, so that the model it
pulls already holds its update.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Mapping

from edgetestbed.errors import UserError


class Moment(enum.Enum):
    STEP_START = "step_start"
    STEP_END = "step_end"
    BATCH_START = "batch_start"
    BATCH_END = "batch_end"
    TICK = "tick"


@dataclass(frozen=True)
class Event:
    """Where a node is: ``moment``, the step or mini-batch ``index``, and the time ``now``."""

    moment: Moment
    index: int
    now: float


class Policy(ABC):
    """Decides, event by event, whether to pull and whether to push."""

    batched = False  # True: the worker trains mini-batch by mini-batch and reports BATCH_* events

    @abstractmethod
    def wants_pull(self, event: Event) -> bool:
        """Pull the parent's model now?"""

    @abstractmethod
    def wants_push(self, event: Event) -> bool:
        """Push this node's update now?"""

    def begin(self, start_at: float) -> None:
        """Window 0 begins at ``start_at`` (unix time), before any event."""

    def pulled(self, now: float) -> None:
        """A pull was attempted at ``now`` (successful or not)."""

    def pushed(self, now: float) -> None:
        """A push was attempted at ``now`` (successful or not)."""


class CountingPolicy(Policy):
    """Exchanges every so many steps or mini-batches: ``simple``, ``window`` and ``downpour``."""

    def __init__(self, pull_every: int, push_every: int, batched: bool = False) -> None:
        self.pull_every, self.push_every, self.batched = pull_every, push_every, batched
        self.start = Moment.BATCH_START if batched else Moment.STEP_START
        self.end = Moment.BATCH_END if batched else Moment.STEP_END

    def wants_pull(self, event: Event) -> bool:
        return event.moment is self.start and event.index % self.pull_every == 0

    def wants_push(self, event: Event) -> bool:
        return event.moment is self.end and (event.index + 1) % self.push_every == 0


class TimePolicy(Policy):
    """Pushes every ``push`` and pulls every ``pull`` seconds, whatever the node is doing.

    Pulls are offset by half a pull interval from the start. In phase with the
    pushes, every pull came right after a push, before the parent had merged it:
    the node adopted a model without its own latest work, and each later update
    was computed from a base one merge stale (the root's accuracy fell at merges).
    """

    def __init__(self, push: float, pull: float) -> None:
        self.push_interval, self.pull_interval = push, pull
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


def create_policy(kind: str, params: Mapping[str, object], trains: bool) -> Policy:
    """The policy a spec's ``policy: {type: kind, **params}`` describes, for a node that
    ``trains`` (a worker: mini-batches exist) or not (a parameter server)."""
    if kind == "simple":
        return CountingPolicy(1, 1)
    if kind == "window":
        return CountingPolicy(int(params["every"]), int(params["every"]))
    if kind == "downpour":
        return CountingPolicy(int(params["n_fetch"]), int(params["n_push"]), batched=trains)
    if kind == "time":
        push = float(params["push"])
        return TimePolicy(push, float(params.get("pull") or push))
    raise UserError(f"unknown exchange policy {kind!r}; expected simple, time, window or downpour")
