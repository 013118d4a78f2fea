"""``iid``: the training set split evenly at random among the sensors."""

from __future__ import annotations

import numpy as np

from edgetestbed.data.datasets.base import Candidates
from edgetestbed.data.partitions.base import PARTITIONS, SPLIT, Partition


def share(n_items: int, sensor_index: int, n_sensors: int, seed: int) -> np.ndarray:
    """Sensor ``sensor_index``'s part, in increasing order, of ``range(n_items)`` split evenly
    at random into ``n_sensors`` disjoint parts (the same split for every sensor)."""
    split = np.random.default_rng(np.random.SeedSequence([seed, SPLIT])).permutation(n_items)
    return np.sort(np.array_split(split, n_sensors)[sensor_index])


@PARTITIONS.register
class Iid(Partition):
    """The training rows split evenly at random (seeded) into ``n`` disjoint shares; sensor
    ``k`` streams its own (MNIST: shuffled on every pass; AQI: in time order)."""

    name = "iid"
    rank = 0

    def rows(self, candidates: Candidates, k: int, n: int, seed: int) -> np.ndarray:
        return candidates.rows[share(len(candidates.rows), k, n, seed)]
