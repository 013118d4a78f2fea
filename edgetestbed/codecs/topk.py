"""``topk``: only the largest entries of each tensor, the rest sent later."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from pydantic import Field

from edgetestbed.codecs.base import CODECS, Shape, expect_count
from edgetestbed.codecs.sparse import FeedbackCodec, expect_sparse, scatter, sparse_wire
from edgetestbed.params.plugins import PluginParams


MAX_WARMUP = 1000   # pushes of warm-up a spec may ask for
WARMUP_BASE = 0.25  # warm-up push i keeps 0.25 ** (i + 1) of the entries: 75 %, 93.75 %, ... sparsity


def warmup_fraction(fraction: float, warmup: int, step: int) -> float:
    """The fraction acknowledged push number ``step`` (from 0) keeps: ``max(fraction,
    0.25 ** (step + 1))`` during the first ``warmup`` pushes, ``fraction`` after."""
    return max(fraction, WARMUP_BASE ** (step + 1)) if step < warmup else fraction


class TopkParams(PluginParams):
    fraction: float = Field(gt=0, le=1, description="a share of the entries, above 0 and at most 1, like 0.1")
    feedback: bool = Field(True, description="true or false: keep what is not sent for later pushes")
    min_entries: int = Field(0, ge=0, description="a number of entries, 0 or more: smaller tensors are sent whole")
    warmup: int = Field(0, ge=0, le=MAX_WARMUP, description=f"a number of pushes, 0 to {MAX_WARMUP}: the first ones "
                        "keep 25 %, 6.25 %, ... of the entries (never below fraction), as deep gradient "
                        "compression's warm-up")


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

    With ``warmup`` (deep gradient compression's warm-up, Lin et al., ICLR 2018) the first
    ``warmup`` acknowledged pushes keep more, 25 %, 6.25 %, 1.5625 %, ... of each tensor
    (``0.25 ** (i + 1)`` for push ``i``, never less than ``fraction``), so sparsity rises
    exponentially, 75 %, 93.75 %, 98.4375 %, ..., to the final one. Only an acknowledged
    push advances the schedule (:meth:`commit`): one encoded again after a loss keeps as
    much as before.

    Wire, per tensor: its kept entries' flat indices (int32, ascending) and their values
    (float32), two 1-D arrays of the same length (:mod:`~edgetestbed.codecs.sparse`).
    Decoding refuses indices out of range, unsorted or repeated, values not finite, and
    lengths other than ``ceil(fraction · n)``. The header says what this push kept:
    :meth:`describe` (called after :meth:`encode`) declares the fraction the last encode
    used and ``warmup: 0``, so the receiver needs no schedule and its check stays exact
    (the sender's own :meth:`decode` checks by that fraction too).
    """

    name = "topk"
    rank = 1
    Params = TopkParams

    def __init__(self, params: Any, seed: object = 0) -> None:
        super().__init__(params, seed)
        self.step = 0                            # acknowledged pushes so far
        self.coded: Optional[float] = None       # the fraction the last encode kept

    def fraction(self) -> float:
        """The fraction the next push keeps (the warm-up schedule's, then ``fraction``)."""
        return warmup_fraction(self.params.fraction, self.params.warmup, self.step)

    def declared(self) -> float:
        """The fraction the header declares and decoding expects: the last encode's, or
        before any, the next push's (a receiver's, built with no warm-up: ``fraction``)."""
        return self.fraction() if self.coded is None else self.coded

    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        wire, left = [], []
        self.coded = fraction = self.fraction()
        for number, array in enumerate(arrays):
            values = self.residual.plus(number, array)
            count = kept(fraction, values.size, self.params.min_entries)
            order = np.argpartition(np.abs(values), values.size - count)[values.size - count:] if count else []
            indices = np.sort(np.asarray(order, dtype=np.int64))
            wire += sparse_wire(indices, values[indices], values.size)
            rest = values.copy()
            rest[indices] = 0
            left.append(rest)
        self.residual.pending = left if self.params.feedback else None
        return wire

    def commit(self) -> None:
        super().commit()
        self.step += 1

    def describe(self) -> Dict[str, Any]:
        """As the base's, but the fraction this message kept and no warm-up: the receiver
        checks the kept counts by it alone."""
        return {**super().describe(), "fraction": self.declared(), "warmup": 0}

    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        expect_count(wire, 2 * len(shapes), "indices and values per tensor")
        decoded, fraction = [], self.declared()
        for index, shape in enumerate(shapes):
            indices, values = wire[2 * index], wire[2 * index + 1]
            size = math.prod(shape)
            count = kept(fraction, size, self.params.min_entries)
            expect_sparse(indices, values, index, size, count=count,
                          rule=f"fraction {fraction} of {size} entries keeps {count}")
            decoded.append(scatter(indices, values, shape))
        return decoded
