"""A chain of codecs: what a node's ``codec:`` list means.

Encoding runs the chain left to right, decoding right to left. Every codec reads a list of
float32 tensors; so every codec but the last must write one too, of the same shapes
(``keeps_shape``: a filter), and only the last may write something else (codes, indices).
:func:`chain_problem` says which codec breaks that rule; the spec reports it at that
codec, a receiver refuses a message that declares such a chain. A chain that codes pulled
models (``pull_codec:``) takes only ``stateless`` codecs (:func:`stateful_problem` says why).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Type

import numpy as np

from edgetestbed.codecs.base import CODECS, Codec, Shape
from edgetestbed.codecs.usage import DECODE, ENCODE, USAGE

MAX_CHAIN = 8   # codecs a chain (and so a message) may have


def chain_problem(classes: Sequence[Type[Codec]], names: Sequence[str]) -> Optional[Tuple[int, str]]:
    """The index of the first codec that may not stand where it does, and why; or None.

    ``names`` are the codecs' names as the spec or the message gives them."""
    if len(classes) > MAX_CHAIN:
        return MAX_CHAIN, f"a chain of {len(classes)} codecs; expected at most {MAX_CHAIN}"
    for index in range(1, len(classes)):
        if not classes[index - 1].keeps_shape:
            before, this = names[index - 1], names[index]
            return index, (f"{this} cannot follow {before}: {before} does not write float32 tensors "
                           f"of the model's shapes; expected {before} last in the chain")
    return None


def stateful_problem(name: str) -> str:
    """Why codec ``name``, which keeps state between messages, may not code pulled models."""
    allowed = [cls.name for cls in CODECS.plugins() if cls.stateless]
    return (f"{name} keeps state from message to message, kept once a message is acknowledged, and a "
            f"pulled model never is; expected a codec that keeps none (stateless): {', '.join(allowed)}, "
            "or a module:Class whose class sets stateless = True")


def encode_chain(codecs: Sequence[Codec], arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
    """``arrays`` through every codec, left to right (metered: :mod:`~edgetestbed.codecs.usage`)."""
    def run() -> List[np.ndarray]:
        wire = list(arrays)
        for codec in codecs:
            wire = codec.encode(wire)
        return wire
    return USAGE.measure(ENCODE, run)


def decode_chain(codecs: Sequence[Codec], wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
    """``wire`` back through every codec, right to left, into tensors of ``shapes``;
    :class:`~edgetestbed.codecs.base.CodecError` if any step finds it inconsistent (metered
    like encoding, refused messages included: refusing costs the receiver too)."""
    def run() -> List[np.ndarray]:
        arrays = list(wire)
        for codec in reversed(codecs):
            arrays = codec.decode(arrays, shapes)
        return arrays
    return USAGE.measure(DECODE, run)


def commit_chain(codecs: Sequence[Codec]) -> None:
    """The last message the chain encoded was acknowledged."""
    for codec in codecs:
        codec.commit()
