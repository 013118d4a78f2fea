"""``biased``: each sensor prefers one digit (the TreeNN simulator paper's setup)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from edgetestbed.data.partitions.base import N_DIGITS, PARTITIONS, Partition
from edgetestbed.params.fields import share
from edgetestbed.params.plugins import PluginParams

BIAS = "a share of samples like 0.64"
Bias = share(BIAS)


def biased_distribution(bias: float, k: int) -> np.ndarray:
    """Digit ``k mod 10`` with probability ``bias``, each other digit ``(1 - bias) / 9``."""
    probabilities = np.full(N_DIGITS, (1 - bias) / (N_DIGITS - 1))
    probabilities[k % N_DIGITS] = bias
    return probabilities


class BiasedParams(PluginParams):
    bias: Bias = Field(0.64, description=BIAS)


@PARTITIONS.register
class Biased(Partition):
    """Sensor ``k`` streams digit ``k mod 10`` with probability ``bias`` (default 0.64), each
    other digit with ``(1 - bias) / 9``."""

    name = "biased"
    rank = 1
    datasets = ("mnist",)
    Params = BiasedParams

    def label_distribution(self, k: int, n: int) -> np.ndarray:
        return biased_distribution(self.params.bias, k)
