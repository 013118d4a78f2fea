"""``quantize``: each tensor as 8- or 16-bit integer codes on an even grid from its minimum
to its maximum."""

from __future__ import annotations

import math
from typing import Annotated, List, Optional, Sequence, Tuple

import numpy as np
from pydantic import BeforeValidator, Field

from edgetestbed.codecs.base import CODECS, Codec, Shape, expect, expect_array, expect_count
from edgetestbed.params.plugins import PluginParams
from edgetestbed.params.units import quote

CODE_DTYPES = {8: "uint8", 16: "uint16"}
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _bits(value: object, hint: str = "") -> int:
    # an int first: ``value in`` a dict would raise TypeError on a list, which pydantic passes on
    if isinstance(value, bool) or not isinstance(value, int) or value not in CODE_DTYPES:
        raise ValueError(f"{quote(value)} is not a number of bits here; expected 8 or 16{hint}")
    return value


def _quantize_bits(value: object) -> int:
    # quantize's own message points to sign, its 1-bit sibling; two_step has none (its entries
    # are threshold's, which sign does not send)
    return _bits(value, " (for 1 bit, a sign and a scale: {type: sign})")


Bits = Annotated[int, BeforeValidator(_bits)]
QuantizeBits = Annotated[int, BeforeValidator(_quantize_bits)]


class QuantizeParams(PluginParams):
    bits: QuantizeBits = Field(8, description="8 or 16")
    stochastic: bool = Field(False, description="true or false: round at random, unbiased")


def _float32_step(low: float, high: float, levels: int) -> float:
    """``(high − low) / levels`` as the float32 the wire carries, rounded up if need be so
    that the grid still reaches ``high`` (the receiver decodes with the float32 value)."""
    step = np.float32((high - low) / levels)
    if low + float(step) * levels < high:
        step = np.nextafter(step, np.float32(np.inf))
    return float(step)


def to_codes(values: np.ndarray, levels: int, dtype: str,
             rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, Tuple[float, float]]:
    """``values`` (float64) as codes of ``dtype`` on ``levels + 1`` levels from their minimum
    to their maximum, nearest (or at random, with ``rng``), and that grid's ``(low, step)``."""
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    step = _float32_step(low, high, levels)
    position = (values - low) / step if step > 0 else np.zeros_like(values)
    if rng is None:
        position = np.rint(position)
    else:
        position = np.floor(position + rng.random(position.shape))
    return np.clip(position, 0, levels).astype(dtype), (low, step)


def from_codes(codes: np.ndarray, low: float, step: float) -> np.ndarray:
    """The float32 values ``codes`` stand for on the grid ``(low, step)``, as a receiver decodes them."""
    return (low + codes.astype(np.float64) * step).astype(np.float32)


def scales_array(scales: Sequence[Tuple[float, float]]) -> np.ndarray:
    """The wire's float32 ``(tensors, 2)`` array of each tensor's ``(low, step)``."""
    return np.array(scales, dtype=np.float32).reshape(len(scales), 2)


def expect_scales(scales: np.ndarray, shape: Shape) -> None:
    """``scales`` is the wire's float32 array of scales of ``shape``: ``(tensors, 2)`` for
    quantize and two_step, ``(tensors,)`` for sign."""
    expect_array(scales, "the scales", ["float32"], len(shape))
    expect(scales.shape == tuple(shape), f"the scales are {list(scales.shape)}, expected {list(shape)}")


def scale(scales: np.ndarray, index: int, levels: int) -> Tuple[float, float]:
    """Tensor ``index``'s ``(low, step)``, refused unless finite, the step non-negative and
    the grid's ``levels`` steps within float32's range."""
    low, step = (float(value) for value in scales[index])
    expect(math.isfinite(low) and math.isfinite(step) and step >= 0,
           f"tensor {index}'s scale (low {low}, step {step}) is not finite and non-negative")
    expect(max(abs(low), abs(low + step * levels)) <= FLOAT32_MAX,
           f"tensor {index}'s scale (low {low}, step {step}) leaves float32's range")
    return low, step


@CODECS.register
class Quantize(Codec):
    """Each tensor's values as ``bits``-bit codes on ``2**bits`` evenly spaced levels from
    its minimum ``low`` to its maximum (a scale per tensor: ``step = (max − low) /
    (2**bits − 1)``). Rounded to the nearest level, a value is off by at most ``step / 2``;
    ``stochastic`` rounds up with probability the remainder instead, so the decoded value
    is right on average (off by less than a step). Min/max rather than abs-max: an
    update's values are rarely centred on 0, and the grid then spends no level outside them.

    Wire: one array of codes per tensor (uint8 or uint16, the tensor's shape), then one
    float32 array of shape ``(tensors, 2)``: each tensor's ``low`` and ``step``.
    """

    name = "quantize"
    rank = 0
    stateless = True   # each message on its own grid (stochastic rounding's draws carry no meaning)
    Params = QuantizeParams

    def __init__(self, params: QuantizeParams, seed: object = 0) -> None:
        super().__init__(params, seed)
        self.levels = 2 ** params.bits - 1
        self.dtype = CODE_DTYPES[params.bits]
        self.rng = np.random.default_rng(seed) if params.stochastic else None

    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        coded = [to_codes(np.asarray(array, dtype=np.float64), self.levels, self.dtype, self.rng) for array in arrays]
        return [*(codes for codes, _ in coded), scales_array([grid for _, grid in coded])]

    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        expect_count(wire, len(shapes) + 1, "codes per tensor, then the scales")
        expect_scales(wire[-1], (len(shapes), 2))
        decoded = []
        for index, (codes, shape) in enumerate(zip(wire, shapes)):
            expect_array(codes, f"tensor {index}'s codes", [self.dtype], len(shape))
            expect(codes.shape == tuple(shape), f"tensor {index}'s codes are {list(codes.shape)}, "
                                                f"expected {list(shape)}")
            decoded.append(from_codes(codes, *scale(wire[-1], index, self.levels)))
        return decoded
