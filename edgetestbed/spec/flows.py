"""The input of a background-traffic event (``events: [{background: {...}}]``), apart from
:mod:`edgetestbed.spec.schema` so that the schema stays one screen a concept."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from edgetestbed.params.fields import Bandwidth
from edgetestbed.spec.inputbase import EventTime, InputModel, NodeId


class BackgroundIn(InputModel):
    """A UDP flow between two tree nodes' hosts for a while: ``from``, ``to``, ``rate``,
    ``start`` and ``stop`` (times from window 0's start), all required."""

    EXPECTED: ClassVar[str] = "a flow like {from: w1, to: root, rate: 5Mbit, start: 10s, stop: 40s}"
    sender: NodeId = Field(alias="from", description="the node whose host sends, like w1")
    to: NodeId = Field(description="the node whose host receives, like root")
    rate: Bandwidth = Field(description="the flow's rate, like 5Mbit")
    start: EventTime = Field(description="when it starts, from window 0's start, like 10s")
    stop: EventTime = Field(description="when it stops, like 40s")
