"""Codecs: how a node's update is compressed on the wire to its parent.

Each codec is one class in one module of this package, registered by name
(``@CODECS.register``): ``quantize`` (8- or 16-bit codes, a scale per tensor, optional
stochastic rounding), ``topk`` (the largest entries of each tensor, the rest kept for later
by error feedback), ``threshold`` (the entries whose updates, added up over pushes, reached
``wt``), ``two_step`` (the seed study's two-step compression: ``threshold``'s entries as
8- or 16-bit codes), ``sign`` (1 bit an entry, its sign, and a scale per tensor, the mean
magnitude; error feedback keeps what that leaves out for later); ``sparse.py`` holds the
error feedback of all but ``quantize``, and the wire of the indexed entries of ``topk``,
``threshold`` and ``two_step``. The spec's ``codec: {type: NAME, ...}`` (or a list of them,
a chain) on a node or in ``defaults`` picks them; their other keys are the codec's
``Params``, checked by ``validate`` with file, line and field. ``threshold`` and ``two_step``
take ``wt`` as a number or ``{by_link: ...}``, a rule over the node's link (:class:`ByLink`,
documented in :mod:`edgetestbed.codecs.threshold`) that the spec resolves into a number.
``type: module.path:ClassName`` picks a researcher's own :class:`Codec` subclass. What a
codec is and does: :mod:`edgetestbed.codecs.base`; what a chain means:
:mod:`edgetestbed.codecs.chain`; how a coded message travels:
:mod:`edgetestbed.process.coded`. Adding one: ``docs/architecture.md``.
"""

from __future__ import annotations

from typing import Any, Mapping

from edgetestbed.codecs.base import CODECS, Codec, CodecError, Shape
from edgetestbed.codecs.chain import (MAX_CHAIN, chain_problem, commit_chain, decode_chain, encode_chain,
                                      stateful_problem)
from edgetestbed.codecs.threshold import ByLink, wt_for_link

__all__ = ["CODECS", "MAX_CHAIN", "ByLink", "Codec", "CodecError", "Shape", "chain_problem", "commit_chain",
           "create_codec", "decode_chain", "encode_chain", "stateful_problem", "wt_for_link"]


def create_codec(kind: str, params: Mapping[str, object], seed: Any = 0) -> Codec:
    """The codec a resolved spec's ``codec: {type: kind, **params}`` describes, seeded by ``seed``.

    ``params`` are the spec's resolved values, which loading the spec validated with the
    codec's own model; they are not checked again here.
    """
    cls = CODECS.get(kind)
    codec = cls(cls.Params.model_construct(**params), seed)
    codec.type = kind   # as the spec names it, which is how the receiver's spec knows it too
    return codec
