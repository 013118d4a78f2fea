"""The input of ``events``: one event per entry, a time and one action (see
:mod:`edgetestbed.spec.schema` for the grammar, :mod:`edgetestbed.spec.events` for the checks
against the tree and the run); apart from the schema so that each stays one screen a concept."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from edgetestbed.params.fields import Bandwidth
from edgetestbed.params.units import quote
from edgetestbed.spec.inputbase import EventTime, InputModel, LinkDelay, Loss, NodeId, SensorIndex, WindowIndex


class BackgroundIn(InputModel):
    """A UDP flow between two tree nodes' hosts for a while: ``from``, ``to``, ``rate``,
    ``start`` and ``stop`` (times from window 0's start), all required."""

    EXPECTED: ClassVar[str] = "a flow like {from: w1, to: root, rate: 5Mbit, start: 10s, stop: 40s}"
    sender: NodeId = Field(alias="from", description="the node whose host sends, like w1")
    to: NodeId = Field(description="the node whose host receives, like root")
    rate: Bandwidth = Field(description="the flow's rate, like 5Mbit")
    start: EventTime = Field(description="when it starts, from window 0's start, like 10s")
    stop: EventTime = Field(description="when it stops, like 40s")


def _true(value: object) -> bool:
    if value is not True:
        raise ValueError(f"got {quote(value)}; expected true (an event is its one action)")
    return True


class LinkSetIn(InputModel):
    """The link fields an event may change; at least one. ``queue`` is fixed for the run."""

    EXPECTED: ClassVar[str] = "a change like {delay: 200ms, jitter: 10ms, loss: 5%, bw: 1Mbit}"
    delay: LinkDelay = None   # None: unchanged; null is refused, as every field's parser refuses it
    jitter: LinkDelay = None
    loss: Loss = None
    bw: Bandwidth = None

    @model_validator(mode="after")
    def _some(self) -> "LinkSetIn":
        if not self.model_fields_set:
            raise ValueError(f"no change; expected at least one of {', '.join(LinkSetIn.model_fields)}")
        return self


EVENT_TIMES, EVENT_ACTIONS = ("at", "window"), ("set", "down", "up")
NODE_FAULTS = ("crash", "restart", "partition", "heal")
SENSOR_ACTIONS = ("stop_sensor", "start_sensor")
EVENT_SUBJECTS = ("link",) + NODE_FAULTS + SENSOR_ACTIONS
COMBINATIONS = ("link: w4 with one of set: {...}, down: true or up: true; "
                "or one of crash, restart, partition or heal (a node id like ps2) alone; "
                "or one of stop_sensor or start_sensor (a sensor index like 3) alone; "
                "or background: {from, to, rate, start, stop} without at or window")


class EventIn(InputModel):
    """One event of ``events``: a time (``at`` or ``window``), then a ``link`` and one action,
    or one node fault (``crash``, ``restart``, ``partition`` or ``heal``), or a sensor stopped or
    started (``stop_sensor``, ``start_sensor``); or, with its own times, a ``background`` flow."""

    EXPECTED: ClassVar[str] = "an event like {at: 20s, link: w4, set: {delay: 200ms}} or {at: 20s, crash: ps2}"
    at: EventTime = Field(None, description="a time from window 0's start like 20s or 1500ms")
    window: WindowIndex = None
    link: NodeId = None
    set: LinkSetIn = None
    down: Annotated[bool, BeforeValidator(_true)] = None
    up: Annotated[bool, BeforeValidator(_true)] = None
    crash: NodeId = None
    restart: NodeId = None
    partition: NodeId = None
    heal: NodeId = None
    stop_sensor: SensorIndex = None
    start_sensor: SensorIndex = None
    background: BackgroundIn = None

    @model_validator(mode="after")
    def _one_each(self) -> "EventIn":
        if self.background is not None:
            if others := sorted(self.model_fields_set - {"background"}):
                raise ValueError(f"background with {' and '.join(others)}; expected background: "
                                 "{from, to, rate, start, stop} alone (start and stop are its times)")
            return self
        times, subjects, actions = ([key for key in keys if key in self.model_fields_set]
                                    for keys in (EVENT_TIMES, EVENT_SUBJECTS, EVENT_ACTIONS))
        for keys, given, expected in ((EVENT_TIMES, times, "at: 20s (from window 0's start) or window: 5"),
                                      (EVENT_SUBJECTS, subjects, COMBINATIONS),
                                      (EVENT_ACTIONS, actions if subjects == ["link"] else [None],
                                       "set: {...}, down: true or up: true")):
            if len(given) != 1:
                found = f"{' and '.join(given)} together" if given else f"none of {', '.join(keys)}"
                raise ValueError(f"{found}; expected exactly one of {expected}")
        if subjects != ["link"] and actions:
            raise ValueError(f"{subjects[0]} with {' and '.join(actions)}; expected {COMBINATIONS}")
        return self
