"""``mixed``: some sensors biased, the others natural."""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field

from edgetestbed.data.partitions.base import PARTITIONS, Partition
from edgetestbed.data.partitions.biased import BiasedParams, biased_distribution
from edgetestbed.params.fields import share

FRACTION = "a share of sensors like 0.5"
Fraction = share(FRACTION)


class MixedParams(BiasedParams):
    biased_fraction: Fraction = Field(0.5, description=FRACTION)


@PARTITIONS.register
class Mixed(Partition):
    """A population of both: the first ``round(n · biased_fraction)`` sensors (default 0.5)
    are ``biased`` (with ``bias``); the others stream the whole training set with its
    natural digit frequencies, each in its own order."""

    name = "mixed"
    rank = 4
    datasets = ("mnist",)
    Params = MixedParams

    def label_distribution(self, k: int, n: int) -> Optional[np.ndarray]:
        n_biased = round(n * self.params.biased_fraction)
        return biased_distribution(self.params.bias, k) if k < n_biased else None
