"""``topk``: only the largest entries of each tensor, the rest sent later."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
from pydantic import Field

from edgetestbed.codecs.base import CODECS, Codec, Shape, expect, expect_array, expect_count
from edgetestbed.params.plugins import PluginParams

INT32_ENTRIES = 2 ** 31 - 1   # a tensor up to this size has int32 indices on the wire


class TopkParams(PluginParams):
    fraction: float = Field(gt=0, le=1, description="a share of the entries, above 0 and at most 1, like 0.1")
    feedback: bool = Field(True, description="true or false: keep what is not sent for later pushes")


def kept(fraction: float, size: int) -> int:
    """How many of ``size`` entries are sent: ``ceil(fraction · size)``, at least one of a
    non-empty tensor. The product is rounded to 9 digits first, so that 0.1 × 100 keeps
    10, not the 11 its floating-point value 10.000000000000002 would."""
    return min(size, max(1, math.ceil(round(fraction * size, 9)))) if size else 0


@CODECS.register
class Topk(Codec):
    """The ``fraction`` of each tensor's entries largest in magnitude (``ceil(fraction ·
    n)``), the others as zeros. With ``feedback`` (error feedback) what is not sent adds to
    the next update, so every part of an update reaches the parent sooner or later.

    Wire, per tensor: its kept entries' flat indices (int32, ascending) and their values
    (float32), two 1-D arrays of the same length. Decoding refuses indices out of range,
    unsorted or repeated, and lengths other than ``ceil(fraction · n)``.
    """

    name = "topk"
    rank = 1
    Params = TopkParams

    def __init__(self, params: TopkParams, seed: object = 0) -> None:
        super().__init__(params, seed)
        self.residual: Optional[List[np.ndarray]] = None   # what acknowledged pushes left out
        self.pending: Optional[List[np.ndarray]] = None     # what the last encoded push leaves out

    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        wire, left = [], []
        for number, array in enumerate(arrays):
            values = np.asarray(array, dtype=np.float32).ravel()
            if self.params.feedback and self.residual is not None:
                values = values + self.residual[number]
            count = kept(self.params.fraction, values.size)
            order = np.argpartition(np.abs(values), values.size - count)[values.size - count:] if count else []
            indices = np.sort(np.asarray(order, dtype=np.int64))
            wire += [indices.astype(np.int32 if values.size <= INT32_ENTRIES else np.int64), values[indices]]
            rest = values.copy()
            rest[indices] = 0
            left.append(rest)
        self.pending = left if self.params.feedback else None
        return wire

    def commit(self) -> None:
        if self.pending is not None:
            self.residual, self.pending = self.pending, None

    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        expect_count(wire, 2 * len(shapes), "indices and values per tensor")
        decoded = []
        for index, shape in enumerate(shapes):
            indices, values = wire[2 * index], wire[2 * index + 1]
            expect_array(indices, f"tensor {index}'s indices", ["int32", "int64"], 1)
            expect_array(values, f"tensor {index}'s values", ["float32"], 1)
            size = math.prod(shape)
            count = kept(self.params.fraction, size)
            expect(len(indices) == len(values) == count,
                   f"tensor {index} has {len(indices)} indices and {len(values)} values; "
                   f"fraction {self.params.fraction} of {size} entries keeps {count}")
            if count:
                # every index, not the first and last: unsorted ones could wrap np.diff around
                low, high = int(indices.min()), int(indices.max())
                expect(0 <= low and high < size, f"tensor {index}'s indices run from {low} to {high}, "
                                                 f"outside 0 .. {size - 1}")
                expect(bool(np.all(np.diff(indices) > 0)), f"tensor {index}'s indices are not ascending "
                                                           "and distinct")
            dense = np.zeros(size, dtype=np.float32)
            dense[indices] = values
            decoded.append(dense.reshape(shape))
        return decoded
