"""``by_year``: each AQI sensor streams one training year."""

from __future__ import annotations

import numpy as np

from edgetestbed.data.datasets.base import Candidates
from edgetestbed.data.partitions.base import PARTITIONS, Partition


@PARTITIONS.register
class ByYear(Partition):
    """Sensor ``k`` streams the ``k mod 4``-th training year (2010 + ``k mod 4``)."""

    name = "by_year"
    rank = 5
    datasets = ("aqi",)

    def rows(self, candidates: Candidates, k: int, n: int, seed: int) -> np.ndarray:
        years = candidates.years[candidates.rows]
        training_years = np.unique(years)
        return candidates.rows[years == training_years[k % len(training_years)]]
