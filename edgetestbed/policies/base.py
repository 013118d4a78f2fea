"""What every exchange policy is: the events a node reports, and the class it subclasses.

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

A policy that decides from the model itself (a learning-based trigger) gets a read-only
view of it (:meth:`Policy.attach`, :mod:`edgetestbed.policies.view`) and may ask the node
to drop its pending update (:meth:`Policy.wants_discard`).

``index`` counts steps (window number, merge number) or mini-batches (from 0, over the
whole run). When a node pushes and pulls at the same event it pushes first, so that the
model it pulls already holds its update.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Dict

from pydantic import BaseModel

from edgetestbed.params.plugins import Plugin, Registry
from edgetestbed.policies.view import ModelView


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


class Policy(Plugin, ABC):
    """Decides, event by event, whether to pull and whether to push.

    A policy is built once per node from its validated ``Params`` (the spec's ``policy:``
    keys but ``type``, defaults applied) and whether the node ``trains`` (a worker:
    mini-batches exist) or not (a parameter server).
    """

    batched = False  # True: the worker trains mini-batch by mini-batch and reports BATCH_* events
    rounds = False   # True: pulls before and pushes after the same steps, so fits a ``sync`` parent

    def __init__(self, params: BaseModel, trains: bool) -> None:
        self.params = params

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

    # What a learning-based trigger needs besides events; the defaults keep a policy that
    # decides from events alone exactly as it was (no view kept, nothing discarded, no
    # DONE fields).
    def attach(self, view: ModelView) -> None:
        """The node's model, read-only, given once before the run begins."""

    def wants_discard(self, event: Event) -> bool:
        """Drop the pending update now, unsent (asked only when :meth:`wants_push` said no)?"""
        return False

    def summary(self) -> Dict[str, Any]:
        """Fields for the node's DONE summary."""
        return {}


# Every module of this package is imported on first use; each registers its policies.
POLICIES: Registry[Policy] = Registry("exchange policy", Policy, "type", "edgetestbed.policies",
                                      classes=True)
