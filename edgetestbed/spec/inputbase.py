"""What the input models share: the base model, node ids, event times and the link
quantities an event may change (see :mod:`edgetestbed.spec.schema`); apart, so that the
events' and churn's input models (:mod:`edgetestbed.spec.eventsin`,
:mod:`edgetestbed.spec.churn`) can build on them and the schema on those."""

from __future__ import annotations

import re
from functools import partial
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from edgetestbed.params.fields import count, matching, unit
from edgetestbed.params.units import format_duration, format_percent, parse_duration, parse_percent

ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
NodeId = matching(ID_PATTERN, "a valid id", "a letter, then up to 31 letters, digits, _ or -, like w1")
EventTime = unit(float, parse_duration, format_duration, 0, 7 * 86400)
WindowIndex = count(0, 99_999, "a window index like 5 (the first is 0)")
SensorIndex = count(0, 9999, "a sensor index like 3")
LinkDelay = unit(float, partial(parse_duration, unit="ms"), partial(format_duration, unit="ms"), 0, 10_000)
Loss = unit(float, parse_percent, format_percent, 0, 100, high_open=True)


class InputModel(BaseModel):
    """Base of every input model: unknown keys and loose type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    EXPECTED: ClassVar[str] = "a mapping"   # completes "expected ..." when the value has the wrong type

    @classmethod
    def expected(cls) -> str:
        """What a value here should have been; a section whose words come from a registry
        assembles them when asked."""
        return cls.EXPECTED
