"""``replicated``: every sensor streams the whole training set."""

from __future__ import annotations

from edgetestbed.data.partitions.base import PARTITIONS, Partition


@PARTITIONS.register
class Replicated(Partition):
    """Every sensor streams the whole training set, the same sequence for every sensor."""

    name = "replicated"
    rank = 3
    shared_order = True
