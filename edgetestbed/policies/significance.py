"""``significance``: push an update only once it is significant (Gaia, Hsieh et al., NSDI'17).

Gaia sends a parameter's update across the slow WAN only when it is large relative to the
parameter; small updates add up locally until they are. Here the whole model is one
"parameter": the accumulated pending update ``Δ`` is pushed when ``‖Δ‖ / ‖w‖`` (L2 over
every tensor) reaches ``threshold``, where ``w`` is the model the parent last knew (the
reference the update is computed from). Until then it stays pending: nothing is lost, the
next push carries it added up with what follows.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from pydantic import Field

from edgetestbed.policies.base import POLICIES
from edgetestbed.policies.trigger import Trigger, TriggerParams, fraction

RELATIVE = "a relative magnitude ‖Δ‖/‖w‖ like 0.01"
Relative = fraction(1000, RELATIVE)


class SignificanceParams(TriggerParams):
    threshold: Relative = Field(description=RELATIVE)


def norm(arrays: List[np.ndarray]) -> float:
    """The L2 norm of ``arrays`` taken as one vector."""
    return float(np.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays)))


def relative_magnitude(delta: List[np.ndarray], reference: List[np.ndarray]) -> float:
    """``‖delta‖ / ‖reference‖``; infinite for a non-zero update of an all-zero model."""
    size, base = norm(delta), norm(reference)
    if base == 0:
        return float("inf") if size > 0 else 0.0
    return size / base


@POLICIES.register
class Significance(Trigger):
    """Pushes after a step when the pending update's relative magnitude ‖Δ‖/‖w‖ reaches
    ``threshold`` (``w``: the model the parent last knew), or after ``max_wait`` steps;
    otherwise keeps it pending. Pulls before every step."""

    name = "significance"
    rank = 4
    Params = SignificanceParams

    def measure(self) -> Optional[float]:
        return relative_magnitude(self.view.pending_update(), self.view.reference())

    def passes(self, value: float) -> bool:
        return value >= self.threshold
