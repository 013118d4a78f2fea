"""``sign``: each tensor as one bit an entry, its sign, and one scale, its mean magnitude."""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np
from pydantic import Field

from edgetestbed.codecs.base import CODECS, Shape, expect, expect_array, expect_count
from edgetestbed.codecs.quantize import expect_scales
from edgetestbed.codecs.sparse import FeedbackCodec
from edgetestbed.params.plugins import PluginParams


class SignParams(PluginParams):
    feedback: bool = Field(True, description="true or false: keep what the signs leave out for later pushes")


def sign_bytes(size: int) -> int:
    """The wire bytes of the signs of ``size`` entries: eight a byte, the last one padded."""
    return (size + 7) // 8


def signed(non_negative: np.ndarray, scale: np.float32) -> np.ndarray:
    """``+scale`` where ``non_negative``, ``−scale`` elsewhere: float32, what the receiver decodes."""
    return np.where(non_negative, scale, -scale).astype(np.float32)


@CODECS.register
class Sign(FeedbackCodec):
    """1-bit compression: each entry's sign, and one scale per tensor, the mean magnitude of
    its entries, so an entry decodes as ``±scale`` (scaled signSGD). With ``feedback`` (error
    feedback, EF-signSGD, Karimireddy et al. 2019) what that leaves out, the update minus
    what was decoded, adds to the next update: the signs alone are biased and can fail to
    converge, but with error feedback every part of an update reaches the parent sooner or
    later, as with ``topk``. The mean magnitude is the scale that brings the decoded tensor
    nearest the update (in the 2-norm, for these signs).

    Wire: one uint8 array per tensor, its signs packed eight a byte (``np.packbits``, first
    entry in the highest bit; 1: non-negative), ``ceil(n / 8)`` bytes, the padding bits of
    the last byte 0; then one float32 array of shape ``(tensors,)``: the scales. About 1/32
    of float32's bytes. Decoding refuses other counts, dtypes or lengths, a padding bit set
    (the sender's shapes differ from the receiver's), and a scale negative or not finite (a
    finite float32 scale decodes within float32's range).
    """

    name = "sign"
    rank = 4
    Params = SignParams

    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        wire, scales, left = [], [], []
        for number, array in enumerate(arrays):
            values = self.residual.plus(number, array)
            non_negative = values >= 0
            # float64 to add up; the float32 the wire carries is what the residual must assume
            scale = np.float32(np.abs(values, dtype=np.float64).mean() if values.size else 0.0)
            wire.append(np.packbits(non_negative))
            scales.append(scale)
            left.append(values - signed(non_negative, scale))
        self.residual.pending = left if self.params.feedback else None
        return [*wire, np.array(scales, dtype=np.float32)]

    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        expect_count(wire, len(shapes) + 1, "signs per tensor, then the scales")
        scales = wire[-1]
        expect_scales(scales, (len(shapes),))
        decoded = []
        for index, (signs, shape) in enumerate(zip(wire, shapes)):
            size = math.prod(shape)
            expect_array(signs, f"tensor {index}'s signs", ["uint8"], 1)
            expect(len(signs) == sign_bytes(size), f"tensor {index}'s signs are {len(signs)} bytes, "
                                                   f"expected {sign_bytes(size)} for {size} entries")
            padding = sign_bytes(size) * 8 - size
            expect(not padding or int(signs[-1]) & ((1 << padding) - 1) == 0,
                   f"tensor {index}'s signs set padding bits beyond its {size} entries")
            scale = scales[index]
            expect(bool(np.isfinite(scale) and scale >= 0),
                   f"tensor {index}'s scale {float(scale)} is not finite and non-negative")
            decoded.append(signed(np.unpackbits(signs, count=size).astype(bool), scale).reshape(shape))
        return decoded
