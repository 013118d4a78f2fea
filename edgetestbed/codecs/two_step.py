"""``two_step``: the seed study's two-step deep compression, ``threshold``'s entries sent as
8- or 16-bit codes."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
from pydantic import Field

from edgetestbed.codecs.base import CODECS
from edgetestbed.codecs.quantize import CODE_DTYPES, Bits, expect_scales, from_codes, scale, scales_array, to_codes
from edgetestbed.codecs.threshold import Threshold, ThresholdParams


class TwoStepParams(ThresholdParams):
    bits: Bits = Field(8, description="8 or 16")


@CODECS.register
class TwoStep(Threshold):
    """The two-step deep compression of the seed study (Sudharsan et al., *Toward
    distributed, global deep learning using IoT devices*) for devices with poor links. Step
    one is ``threshold``: entries are added up over pushes and sent once they reach ``wt``
    in magnitude. Step two encodes what is sent smaller: each tensor's sent values as
    ``bits``-bit codes on an even grid from their minimum ``low`` to their maximum (``step =
    (max − low) / (2**bits − 1)``, as ``quantize``), so a value is off by at most ``step /
    2``. That error is kept with the entries not sent (error feedback), so it is sent later
    and nothing is lost over time.

    Wire, per tensor: the sent entries' flat indices (int32, ascending) and their codes
    (uint8 or uint16), two 1-D arrays of the same length, 0 to n of them; then one float32
    array of shape ``(tensors, 2)``: each tensor's ``low`` and ``step``. Decoding refuses
    what ``threshold`` and ``quantize`` refuse.
    """

    name = "two_step"
    rank = 3
    Params = TwoStepParams
    layout = "indices and codes per tensor, then the scales"
    what = "codes"
    tail = 1

    def __init__(self, params: TwoStepParams, seed: object = 0) -> None:
        super().__init__(params, seed)
        self.levels = 2 ** params.bits - 1
        self.dtypes = (CODE_DTYPES[params.bits],)

    def code(self, chosen: List[np.ndarray]) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
        coded = [to_codes(values.astype(np.float64), self.levels, self.dtypes[0]) for values in chosen]
        sent = [from_codes(codes, *grid) for codes, grid in coded]
        return [codes for codes, _ in coded], sent, [scales_array([grid for _, grid in coded])]

    def expect_tail(self, tail: Sequence[np.ndarray], tensors: int) -> None:
        expect_scales(tail[0], (tensors, 2))

    def values(self, wire: np.ndarray, tail: Sequence[np.ndarray], index: int) -> np.ndarray:
        return from_codes(wire, *scale(tail[0], index, self.levels))
