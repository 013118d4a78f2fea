"""What the input models share: the base model, node ids and event times (see
:mod:`edgetestbed.spec.schema`); apart, so that :mod:`edgetestbed.spec.churn`'s input model
can build on them and the schema on it."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from edgetestbed.params.fields import matching, unit
from edgetestbed.params.units import format_duration, parse_duration

ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
NodeId = matching(ID_PATTERN, "a valid id", "a letter, then up to 31 letters, digits, _ or -, like w1")
EventTime = unit(float, parse_duration, format_duration, 0, 7 * 86400)


class InputModel(BaseModel):
    """Base of every input model: unknown keys and loose type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    EXPECTED: ClassVar[str] = "a mapping"   # completes "expected ..." when the value has the wrong type

    @classmethod
    def expected(cls) -> str:
        """What a value here should have been; a section whose words come from a registry
        assembles them when asked."""
        return cls.EXPECTED
