"""Coded messages: a header's ``codec`` chain read, and its arrays decoded, safely.

A coded message (:mod:`edgetestbed.process.protocol`) is a ``PUSH`` or ``MODEL`` whose
header has a ``"codec"`` key: the chain its sender encoded the tensors with, as a list of
``{"type": NAME, **params}`` objects, first codec first. Its ``arrays`` then declare the
wire arrays (codes, indices, scales), checked like any array (allowed dtypes, at most
:data:`MAX_CODED_ARRAYS`, each frame exactly its declared size). Here:

- :func:`codec_chain`: every entry's ``type`` must be one the receiver accepts and its
  parameters must pass the codec's own ``Params``, as in the spec; the chain must be one
  the spec would accept (:func:`~edgetestbed.codecs.chain_problem`).
- :func:`accepted_codecs`: what a receiver accepts. Every built-in codec, and the
  ``module:Class`` codecs the receiver's own spec configures (imported from the spec, as
  the senders import them). A ``module:Class`` that only a message names is refused:
  importing a module a message asks for would let any peer run code in the receiver.
- Decoding allocates only the receiver's own shapes (the schema's), so a message cannot
  make its receiver allocate more than its own model; the result is then checked against
  the schema like the arrays of any message.

Everything wrong raises :class:`~edgetestbed.codecs.CodecError` with the reason; the
protocol turns it into a ``MALFORMED`` message.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple, Type

from edgetestbed.codecs import CODECS, MAX_CHAIN, Codec, CodecError, chain_problem
from edgetestbed.errors import UserError
from edgetestbed.params.plugins import parse_params

MAX_CODED_ARRAYS = 4 * 64   # wire arrays of a coded message: room for four per tensor (top-k sends two)
MAX_NAME_CHARS = 128
CODED_EXPANSION = 2   # a coded message's arrays are at most this many times the tensors' bytes


def accepted_codecs(configured: Iterable[str] = ()) -> Dict[str, Type[Codec]]:
    """The codec classes a receiver decodes, by the name a message gives: every built-in,
    and the ``configured`` names (the ``module:Class`` codecs of the receiver's own spec)."""
    return {name: CODECS.get(name) for name in [*CODECS.names(), *configured]}


def codec_chain(entries: Any, accepted: Dict[str, Type[Codec]]) -> Tuple[Codec, ...]:
    """The codecs a header's ``codec`` value declares, built from their checked parameters."""
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_CHAIN:
        raise CodecError(f"codec must be a list of 1 to {MAX_CHAIN} codecs")
    codecs = []
    for index, entry in enumerate(entries):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or not 0 < len(kind) <= MAX_NAME_CHARS:
            raise CodecError(f"codec {index}: must be an object with a 'type' of 1 to {MAX_NAME_CHARS} characters")
        if kind not in accepted:
            raise CodecError(f"codec {index}: unknown codec {kind[:40]!r}; accepted here: {', '.join(accepted)}")
        cls = accepted[kind]
        params = {key: value for key, value in entry.items() if key != "type"}
        try:
            codec = cls(parse_params(cls.Params, params, f"codec {index} ({kind})", "codec"))
        except UserError as error:
            raise CodecError(str(error)) from None
        codec.type = kind
        codecs.append(codec)
    problem = chain_problem([type(codec) for codec in codecs], [entry["type"] for entry in entries])
    if problem is not None:
        raise CodecError(f"codec {problem[0]}: {problem[1]}")
    return tuple(codecs)
