"""``by_label``: each sensor sees only some digits."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field

from edgetestbed.data.partitions.base import N_DIGITS, PARTITIONS, Partition
from edgetestbed.params.fields import bounded, integer
from edgetestbed.params.plugins import PluginParams
from edgetestbed.params.units import quote

LABELS = "a number of digits per sensor like 2, or each sensor's digits like [[0, 1], [2, 3]]"


def _labels(value: object) -> int | list[list[int]]:
    """How many digits each sensor sees, or the digits of each sensor (used in turn)."""
    if not isinstance(value, list):
        return bounded(integer(LABELS), 1, N_DIGITS)(value)
    if value and all(isinstance(group, list) and group and all(map(_is_digit, group)) for group in value):
        return value
    raise ValueError(f"{quote(value)} is not a list of lists of digits; expected {LABELS}")


def _is_digit(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < N_DIGITS


class ByLabelParams(PluginParams):
    labels: Annotated[Any, BeforeValidator(_labels)] = Field(2, description=LABELS)


@PARTITIONS.register
class ByLabel(Partition):
    """Sensor ``k`` sees only some digits, uniformly: ``labels`` is either a count ``m``
    (default 2; sensor ``k`` sees ``{m·k, …, m·k + m − 1} mod 10``, so sensor 0 sees 0 and
    1, sensor 1 sees 2 and 3, …) or a list of digit lists, sensor ``k`` seeing
    ``labels[k mod len(labels)]``."""

    name = "by_label"
    rank = 2
    datasets = ("mnist",)
    Params = ByLabelParams

    def label_distribution(self, k: int, n: int) -> np.ndarray:
        labels = self.params.labels
        if isinstance(labels, int):
            digits = [(labels * k + j) % N_DIGITS for j in range(labels)]
        else:   # a digit listed twice counts once
            digits = sorted(set(labels[k % len(labels)]))
        probabilities = np.zeros(N_DIGITS)
        probabilities[digits] = 1 / len(digits)
        return probabilities
