"""What the sparse codecs share (``topk``, ``threshold``, ``two_step``); it registers none.
``sign`` sends every entry, but keeps what it leaves out in a :class:`Residual` too.

- :class:`Residual`: error feedback, what pushes left out for later ones, kept only once the
  push that left it out is acknowledged (:meth:`~edgetestbed.codecs.base.Codec.commit`);
  :class:`FeedbackCodec`, the codec that keeps one (every codec here but ``quantize``).
- The wire of a tensor's chosen entries: their flat indices, ascending (int32, int64 for a
  tensor of more than :data:`INT32_ENTRIES`), and a 1-D array of their values or codes of
  the same length (:func:`sparse_wire`); :func:`expect_sparse` refuses any such pair that is
  inconsistent, :func:`scatter` puts a checked one into a tensor of zeros.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from pydantic import BaseModel

from edgetestbed.codecs.base import Codec, Shape, expect, expect_array

INT32_ENTRIES = 2 ** 31 - 1   # a tensor up to this size has int32 indices on the wire
INDEX_DTYPES = ["int32", "int64"]


class Residual:
    """What pushes left out of each tensor (flat float32), added to the next update.

    ``kept``: what acknowledged pushes left out; ``pending``: what the last encoded push
    leaves out, which becomes ``kept`` on :meth:`commit`. A push that is never acknowledged
    is encoded again, with the next update, from ``kept``.
    """

    def __init__(self) -> None:
        self.kept: Optional[List[np.ndarray]] = None
        self.pending: Optional[List[np.ndarray]] = None

    def plus(self, number: int, array: np.ndarray) -> np.ndarray:
        """Tensor ``number`` of an update, flat float32, plus what acknowledged pushes left of it."""
        values = np.asarray(array, dtype=np.float32).ravel()
        return values if self.kept is None else values + self.kept[number]

    def commit(self) -> None:
        if self.pending is not None:
            self.kept, self.pending = self.pending, None


class FeedbackCodec(Codec):
    """A codec with error feedback: ``encode`` adds :attr:`residual` (what acknowledged
    pushes left out) to the update and leaves in ``residual.pending`` what it leaves out now;
    an acknowledged push keeps that (:meth:`commit`)."""

    def __init__(self, params: BaseModel, seed: object = 0) -> None:
        super().__init__(params, seed)
        self.residual = Residual()

    def commit(self) -> None:
        self.residual.commit()


def sparse_wire(indices: np.ndarray, values: np.ndarray, size: int) -> List[np.ndarray]:
    """The wire pair of a tensor of ``size`` entries: ``indices`` (ascending) and ``values``."""
    return [np.asarray(indices).astype(np.int32 if size <= INT32_ENTRIES else np.int64), values]


def expect_sparse(indices: np.ndarray, values: np.ndarray, tensor: int, size: int, what: str = "values",
                  dtypes: Sequence[str] = ("float32",), count: Optional[int] = None, rule: str = "") -> None:
    """``indices`` and ``values`` (``what`` they are) of tensor number ``tensor``, of ``size``
    entries: 1-D, of the wire's dtypes, as many of each (``count`` if given, which ``rule``
    explains; at most ``size`` otherwise), indices in range, ascending and distinct, and
    float values finite. :class:`~edgetestbed.codecs.CodecError` otherwise."""
    expect_array(indices, f"tensor {tensor}'s indices", INDEX_DTYPES, 1)
    expect_array(values, f"tensor {tensor}'s {what}", list(dtypes), 1)
    if count is None:
        count, rule = min(len(indices), size), f"expected as many of each, at most {size}"
    expect(len(indices) == len(values) == count,
           f"tensor {tensor} has {len(indices)} indices and {len(values)} {what}; {rule}")
    if count:
        # every index, not the first and last: unsorted ones could wrap np.diff around
        low, high = int(indices.min()), int(indices.max())
        expect(0 <= low and high < size, f"tensor {tensor}'s indices run from {low} to {high}, "
                                         f"outside 0 .. {size - 1}")
        expect(bool(np.all(np.diff(indices) > 0)), f"tensor {tensor}'s indices are not ascending and distinct")
    if values.dtype.kind == "f":
        expect(bool(np.all(np.isfinite(values))), f"tensor {tensor}'s {what} are not all finite")


def scatter(indices: np.ndarray, values: np.ndarray, shape: Shape) -> np.ndarray:
    """A float32 tensor of ``shape``: ``values`` at the flat ``indices``, zeros elsewhere."""
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=np.float32)
    dense[indices] = values
    return dense.reshape(shape)
