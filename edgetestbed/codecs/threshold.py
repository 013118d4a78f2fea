"""``threshold``: an entry is sent once its updates, added up over pushes, reach ``wt``."""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np
from pydantic import Field

from edgetestbed.codecs.base import CODECS, Codec, Shape, expect_count
from edgetestbed.codecs.sparse import Residual, expect_sparse, scatter, sparse_wire
from edgetestbed.params.plugins import PluginParams

WT = "a magnitude above 0 that an entry's updates, added up, must reach to be sent, like 0.01"


class ThresholdParams(PluginParams):
    wt: float = Field(gt=0, description=WT)


@CODECS.register
class Threshold(Codec):
    """Step one of the seed study's two-step deep compression (Sudharsan et al.): every
    push adds the update to what earlier pushes left, entry by entry, and sends the entries
    whose sum reached ``wt`` in magnitude; the others keep adding up until they do. A high
    ``wt`` (a node with a poor link) sends fewer entries, less often. Nothing is lost: an
    entry is either sent whole or kept, so what was sent plus what is kept is exactly what
    was added.

    Wire, per tensor: the sent entries' flat indices (int32, ascending) and their values
    (float32), two 1-D arrays of the same length, 0 to n of them since that depends on the
    data (:mod:`~edgetestbed.codecs.sparse`). Decoding refuses indices out of range,
    unsorted or repeated, values not finite, lengths that differ or exceed the tensor's.
    """

    name = "threshold"
    rank = 2
    Params = ThresholdParams
    layout = "indices and values per tensor"
    what = "values"   # what travels with the indices
    tail = 0          # wire arrays after the tensors' pairs

    def __init__(self, params: ThresholdParams, seed: object = 0) -> None:
        super().__init__(params, seed)
        self.residual = Residual()
        self.dtypes: Tuple[str, ...] = ("float32",)

    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        summed = [self.residual.plus(number, array) for number, array in enumerate(arrays)]
        chosen = [np.flatnonzero(np.abs(values) >= self.params.wt) for values in summed]
        coded, sent, tail = self.code([values[indices] for values, indices in zip(summed, chosen)])
        wire, left = [], []
        for values, indices, part, got in zip(summed, chosen, coded, sent):
            wire += sparse_wire(indices, part, values.size)
            rest = values.copy()
            rest[indices] -= got   # nothing for threshold; what rounding left out, for two_step
            left.append(rest)
        self.residual.pending = left
        return wire + tail

    def code(self, chosen: List[np.ndarray]) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
        """For each tensor's ``chosen`` values: what travels with their indices, and what the
        receiver decodes from it; then the wire arrays after every tensor's (none here)."""
        return chosen, chosen, []

    def commit(self) -> None:
        self.residual.commit()

    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        expect_count(wire, 2 * len(shapes) + self.tail, self.layout)
        tail = wire[2 * len(shapes):]
        self.expect_tail(tail, len(shapes))
        decoded = []
        for index, shape in enumerate(shapes):
            indices, values = wire[2 * index], wire[2 * index + 1]
            expect_sparse(indices, values, index, math.prod(shape), self.what, self.dtypes)
            decoded.append(scatter(indices, self.values(values, tail, index), shape))
        return decoded

    def expect_tail(self, tail: Sequence[np.ndarray], tensors: int) -> None:
        """:class:`~edgetestbed.codecs.CodecError` unless ``tail`` (the wire arrays after the
        tensors') is consistent for ``tensors`` tensors."""

    def values(self, wire: np.ndarray, tail: Sequence[np.ndarray], index: int) -> np.ndarray:
        """Tensor ``index``'s values from what travelled with its indices (checked)."""
        return wire
