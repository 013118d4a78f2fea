"""``by_season``: each AQI sensor streams one season of every training year."""

from __future__ import annotations

import numpy as np

from edgetestbed.data.datasets.base import Candidates
from edgetestbed.data.partitions.base import PARTITIONS, Partition


@PARTITIONS.register
class BySeason(Partition):
    """Sensor ``k`` streams season ``k mod 4`` (winter Dec–Feb, spring, summer, autumn) of
    all training years, in time order."""

    name = "by_season"
    rank = 6
    datasets = ("aqi",)

    def rows(self, candidates: Candidates, k: int, n: int, seed: int) -> np.ndarray:
        season = candidates.months[candidates.rows] % 12 // 3   # 0: Dec-Feb, 1: Mar-May, ...
        return candidates.rows[season == k % 4]
