"""``topk``: only the largest entries of each tensor, the rest sent later."""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np
from pydantic import Field

from edgetestbed.codecs.base import CODECS, Shape, expect_count
from edgetestbed.codecs.sparse import FeedbackCodec, expect_sparse, scatter, sparse_wire
from edgetestbed.params.plugins import PluginParams


class TopkParams(PluginParams):
    fraction: float = Field(gt=0, le=1, description="a share of the entries, above 0 and at most 1, like 0.1")
    feedback: bool = Field(True, description="true or false: keep what is not sent for later pushes")
    min_entries: int = Field(0, ge=0, description="a number of entries, 0 or more: smaller tensors are sent whole")


def kept(fraction: float, size: int, min_entries: int = 0) -> int:
    """How many of ``size`` entries are sent: ``ceil(fraction · size)``, at least one of a
    non-empty tensor; all of a tensor of fewer than ``min_entries``. The product is rounded
    to 9 digits first, so that 0.1 × 100 keeps 10, not the 11 its floating-point value
    10.000000000000002 would."""
    if size < min_entries:
        return size
    return min(size, max(1, math.ceil(round(fraction * size, 9)))) if size else 0


@CODECS.register
class Topk(FeedbackCodec):
    """The ``fraction`` of each tensor's entries largest in magnitude (``ceil(fraction ·
    n)``), the others as zeros. With ``feedback`` (error feedback) what is not sent adds to
    the next update, so every part of an update reaches the parent sooner or later.

    Wire, per tensor: its kept entries' flat indices (int32, ascending) and their values
    (float32), two 1-D arrays of the same length (:mod:`~edgetestbed.codecs.sparse`).
    Decoding refuses indices out of range, unsorted or repeated, values not finite, and
    lengths other than ``ceil(fraction · n)``.
    """

    name = "topk"
    rank = 1
    Params = TopkParams

    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        wire, left = [], []
        for number, array in enumerate(arrays):
            values = self.residual.plus(number, array)
            count = kept(self.params.fraction, values.size, self.params.min_entries)
            order = np.argpartition(np.abs(values), values.size - count)[values.size - count:] if count else []
            indices = np.sort(np.asarray(order, dtype=np.int64))
            wire += sparse_wire(indices, values[indices], values.size)
            rest = values.copy()
            rest[indices] = 0
            left.append(rest)
        self.residual.pending = left if self.params.feedback else None
        return wire

    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        expect_count(wire, 2 * len(shapes), "indices and values per tensor")
        decoded = []
        for index, shape in enumerate(shapes):
            indices, values = wire[2 * index], wire[2 * index + 1]
            size = math.prod(shape)
            count = kept(self.params.fraction, size, self.params.min_entries)
            expect_sparse(indices, values, index, size, count=count,
                          rule=f"fraction {self.params.fraction} of {size} entries keeps {count}")
            decoded.append(scatter(indices, values, shape))
        return decoded
