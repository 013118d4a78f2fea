"""``threshold``: an entry is sent once its updates, added up over pushes, reach ``wt``.

``wt`` is a number, or derived from the node's link to its parent: the seed study
(Sudharsan et al.) sets the threshold high for devices with a poor connection. With
``wt: {by_link: {base: 0.01, reference: 10Mbit, max: 0.5}}`` (``max`` optional)::

    wt = base × sqrt( (reference / bw) / (1 − loss) ),  at least base, at most max

``(reference / bw) / (1 − loss)`` is how many times longer the link takes to deliver a
byte than a lossless link of ``reference`` bandwidth (a lost packet is sent again). The
threshold grows with its square root because, measured on MNIST updates, raising ``wt``
3× cut a push's bytes about 5×: the square root keeps the reduction roughly proportional
to the slowdown. A link as fast as ``reference`` or faster, and one without a ``bw``
(unlimited), keep ``base``; so does the root, which has no link (and pushes to no one).
No ``max`` (the default) caps nothing: the spec's own bounds on ``bw`` and ``loss`` bound
the rule. The spec resolves the rule into a number for each node
(:func:`wt_for_link`, called by :mod:`edgetestbed.spec.resolve`), so the codec and the
wire only ever see a number.
"""

from __future__ import annotations

import math
from typing import Annotated, List, Optional, Sequence, Tuple, Union

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from edgetestbed.codecs.base import CODECS, CodecError, Shape, expect_count
from edgetestbed.codecs.sparse import FeedbackCodec, expect_sparse, scatter, sparse_wire
from edgetestbed.params.fields import Bandwidth
from edgetestbed.params.plugins import PluginParams
from edgetestbed.params.units import number_text

WT = ("a magnitude above 0 that an entry's updates, added up, must reach to be sent, like 0.01, "
      "or {by_link: {base: 0.01, reference: 10Mbit}}")


def wt_for_link(base: float, reference_mbit: float, bw_mbit: Optional[float], loss_pct: float,
                cap: Optional[float] = None) -> float:
    """The threshold for a link of ``bw_mbit`` (None: unlimited) losing ``loss_pct`` percent
    of its packets: ``base`` grown by the square root of how much longer than a lossless
    ``reference_mbit`` link it takes to deliver a byte, never below ``base``, at most ``cap``."""
    slowdown = 0.0 if bw_mbit is None else (reference_mbit / bw_mbit) / (1 - loss_pct / 100)
    wt = max(base, base * math.sqrt(slowdown))
    return wt if cap is None else min(wt, cap)


class LinkRule(PluginParams):
    """``by_link``'s keys: the rule's numbers."""

    base: float = Field(gt=0, description="the threshold of a fast link, above 0, like 0.01")
    reference: Bandwidth = Field(description="a bandwidth like 10Mbit: a lossless link this fast keeps base")
    max: Optional[float] = Field(None, gt=0, description="the highest threshold, like 0.5, or null: none")

    @model_validator(mode="after")
    def _max_not_below_base(self) -> "LinkRule":
        if self.max is not None and self.max < self.base:
            raise ValueError(f"max {number_text(self.max)} is below base {number_text(self.base)}; "
                             "expected a max of at least base, or none")
        return self


class ByLink(PluginParams):
    """``wt: {by_link: {...}}``: a threshold the spec derives from the node's link."""

    by_link: LinkRule = Field(description="the rule's numbers, like {base: 0.01, reference: 10Mbit}")

    def for_link(self, bw_mbit: Optional[float], loss_pct: float) -> float:
        """The threshold for a link of ``bw_mbit`` (None: unlimited) and ``loss_pct``."""
        rule = self.by_link
        return wt_for_link(rule.base, rule.reference, bw_mbit, loss_pct, rule.max)


NUMBER, RULE = "number", "{by_link}"   # tags no key of the document can be: they are in errors' paths


def _wt_form(value: object) -> str:
    return RULE if isinstance(value, (dict, ByLink)) else NUMBER


# A number, or ``{by_link: ...}``: the tag says which pydantic checks, so that a mapping's
# problems are reported at its keys and not as "not a number" besides.
Wt = Annotated[Union[Annotated[float, Field(gt=0), Tag(NUMBER)], Annotated[ByLink, Tag(RULE)]],
               Discriminator(_wt_form)]


class ThresholdParams(PluginParams):
    wt: Wt = Field(description=WT)


@CODECS.register
class Threshold(FeedbackCodec):
    """Step one of the seed study's two-step deep compression (Sudharsan et al.): every
    push adds the update to what earlier pushes left, entry by entry, and sends the entries
    whose sum reached ``wt`` in magnitude; the others keep adding up until they do. A high
    ``wt`` (a node with a poor link; ``wt: {by_link: ...}`` derives it from the link, see
    the module's docstring) sends fewer entries, less often. Nothing is lost: an
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
        if isinstance(params.wt, ByLink):   # the spec resolves it; a message naming one is refused
            raise CodecError("wt is {by_link: ...}, which the spec resolves for the node's link; expected a number")
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
