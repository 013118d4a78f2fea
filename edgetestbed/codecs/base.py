"""What every codec is: the class it subclasses, its error, and its registry.

A codec turns a node's update (a list of float32 tensors, the model's shapes) into the
arrays that travel instead (:meth:`Codec.encode`, on the sender), and those arrays back
into tensors of the shapes the receiver expects (:meth:`Codec.decode`, on the receiver).
``decode`` never trusts what it is given: the arrays come off the network. It allocates
only the shapes the receiver passes it (its own model's), and refuses anything
inconsistent with a :class:`CodecError` saying why; the receiver logs the message as
``MALFORMED`` and drops it.

A sender's codec may keep state between pushes (top-k's error-feedback residual), but
``encode`` must not assume its message arrives: state that does is kept by
:meth:`Codec.commit`, which the node calls once the parent has acknowledged the push.
A push that is never acknowledged is encoded again, with the next update, from the
state of the last acknowledged one. A pulled model is never acknowledged: only a
``stateless`` codec may code it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, List, Sequence, Tuple

import numpy as np
from pydantic import BaseModel

from edgetestbed.params.plugins import Plugin, Registry, values

Shape = Tuple[int, ...]


class CodecError(ValueError):
    """Wire arrays that do not decode; the message says what is inconsistent."""


class Codec(Plugin, ABC):
    """Encodes a list of float32 tensors for the wire and decodes it back.

    Built once per sending node from its validated ``Params`` (the spec's ``codec:`` keys
    but ``type``, defaults applied) and a ``seed`` for any randomness (stochastic
    rounding), derived from the spec's seed and the node; on a receiver, from the
    parameters a message declares, to decode it.

    ``keeps_shape``: ``encode`` returns float32 tensors of its input's shapes, so another
    codec may follow it in a chain (a filter such as clipping). A codec whose output is
    anything else (integer codes, indices) must be the last of its chain.

    ``stateless``: what it encodes depends on nothing an earlier message left (no error
    feedback, no residual), so it may code the models a parent sends in reply to pulls
    (``pull_codec:``), which are never acknowledged and so never reach :meth:`commit`.
    False unless a codec says so: a researcher's own codec must opt in.
    """

    keeps_shape: ClassVar[bool] = False
    stateless: ClassVar[bool] = False

    def __init__(self, params: BaseModel, seed: Any = 0) -> None:
        self.params = params
        # The name the spec and the wire give it: a registered name, or module:Class.
        cls = type(self)
        self.type: str = cls.__dict__.get("name") or f"{cls.__module__}:{cls.__qualname__}"

    @abstractmethod
    def encode(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        """The wire arrays for ``arrays`` (float32 tensors)."""

    @abstractmethod
    def decode(self, wire: Sequence[np.ndarray], shapes: Sequence[Shape]) -> List[np.ndarray]:
        """float32 tensors of ``shapes`` from ``wire``; :class:`CodecError` if inconsistent.

        ``wire`` holds arrays of the dtypes and shapes a message declared (checked against
        the protocol's allowed dtypes and bounded by its size, nothing more)."""

    def commit(self) -> None:
        """The last message encoded was acknowledged: keep the state that assumed it arrives."""

    def describe(self) -> Dict[str, Any]:
        """This codec as a message's header declares it: its type and parameters."""
        return {"type": self.type, **values(self.params)}


# Every module of this package is imported on first use; each registers its codecs.
CODECS: Registry[Codec] = Registry("codec", Codec, "type", "edgetestbed.codecs", classes=True)


def expect(condition: bool, reason: str) -> None:
    """:class:`CodecError` with ``reason`` unless ``condition``: decode's checks, one a line."""
    if not condition:
        raise CodecError(reason)


def expect_count(wire: Sequence[np.ndarray], count: int, layout: str) -> None:
    """Exactly ``count`` wire arrays (``layout`` says which, for the message)."""
    expect(len(wire) == count, f"{len(wire)} wire arrays, expected {count} ({layout})")


def expect_array(array: np.ndarray, what: str, dtypes: Sequence[str], ndim: int) -> None:
    """``array`` has one of ``dtypes`` and ``ndim`` dimensions."""
    dtype = np.dtype(array.dtype).name
    expect(dtype in dtypes, f"{what} is {dtype}, expected {' or '.join(dtypes)}")
    expect(array.ndim == ndim, f"{what} has {array.ndim} dimensions, expected {ndim}")
