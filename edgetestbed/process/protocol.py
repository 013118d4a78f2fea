"""The wire format between testbed processes: a small validated JSON header, then raw arrays.

A message is one ZeroMQ multipart message. Frame 0 is a UTF-8 JSON object, the header::

    {"v": 1, "type": "PUSH", "sender": "w1", "seq": 7, "version": 3, "window": 2,
     "samples": 120, "ts": 1700000000.25, "coverage": {"w1": 2, "w2": 1},
     "arrays": [{"dtype": "float32", "shape": [784, 20]}, ...]}

followed by exactly one frame per entry of ``arrays``, holding that array's bytes in C
order (sent and received zero-copy). Nothing is pickled: a frame is interpreted only as
the dtype and shape its header declares, and only after the whole header has been
checked against a :class:`Schema`, the receiver's own idea of what each message type
must carry (for a model: the application's weight shapes). Anything else raises
:class:`MalformedMessage`, whose ``reason`` says what was wrong; a node logs it and keeps
serving.

Message types and what they carry:

=========  ==========================================================================
``PULL``   child → parent: "send me your model"; no arrays
``MODEL``  parent → child, the reply to PULL: the weights, their version and coverage
``PUSH``   child → parent: the weight delta since the last push, the ``samples`` behind
           it and the coverage of that delta
``ACK``    parent → child, the reply to PUSH and DONE; no arrays
``NOT_MODIFIED`` parent → child, the other reply to PULL: "keep the model you have"; no
           arrays, the parent's version and coverage (only to a child whose policy asks
           for it, :mod:`edgetestbed.nodes.notmodified`)
``DONE``   child → parent: the child has finished and will send nothing more
``SAMPLE`` sensor → worker (PUB/SUB): one sample, arrays ``x`` and ``y``
=========  ==========================================================================

``seq`` numbers requests; a reply echoes the request's ``seq`` so that a late reply to
an abandoned request is recognised. For ``SAMPLE`` it is the sample's number in its
stream. ``coverage`` maps each worker to the latest window merged into the model (or
delta) the message is about (docs/architecture.md, "coverage vector"). Array frames and the header
are bounded: :meth:`Schema.max_frame_bytes` is also what sockets set as
``zmq.MAXMSGSIZE``, so an oversized frame is refused by ZeroMQ before it is buffered.

Coded messages. A ``PUSH`` (or ``MODEL``) whose sender has a codec chain
(:mod:`edgetestbed.codecs`) has one more header key, ``"codec"``: the chain, as a list of
``{"type": NAME, **params}`` objects, first codec first, e.g.
``"codec": [{"type": "quantize", "bits": 8, "stochastic": false}]``. Its ``arrays`` then
declare the wire arrays the chain wrote (codes, indices, scales), not the tensors. A
receiver checks the chain (known codecs only, their parameters, a valid order) and the
wire arrays like any others, decodes them into its own model's shapes and checks the
result against the schema as for an uncoded message (:mod:`edgetestbed.process.coded`).
A message without a codec has no ``"codec"`` key: its bytes are those of a message before
codecs existed.

A ``PULL`` may carry ``"waiting": true``: its sender holds the model of the ``version`` it
names and waits for a newer one (a ``sync`` round to close), so the parent answers
``NOT_MODIFIED`` while it has none. Any other PULL has no such key.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from edgetestbed.codecs import Codec, CodecError, decode_chain, encode_chain
from edgetestbed.process.coded import CODED_EXPANSION, MAX_CODED_ARRAYS, accepted_codecs, codec_chain

PROTOCOL_VERSION = 1
PULL, MODEL, PUSH, ACK, DONE, SAMPLE = "PULL", "MODEL", "PUSH", "ACK", "DONE", "SAMPLE"
# A type of its own rather than a flag on MODEL: every older message keeps its exact bytes
# and a reply without weights can never pass for a model (its schema has no arrays).
NOT_MODIFIED = "NOT_MODIFIED"
MESSAGE_TYPES = (PULL, MODEL, PUSH, ACK, DONE, SAMPLE, NOT_MODIFIED)
REQUESTS, REPLIES = (PULL, PUSH, DONE), (MODEL, ACK, NOT_MODIFIED)
DTYPES = frozenset({"float32", "float64", "int32", "int64", "uint8", "uint16"})
MAX_HEADER_BYTES = 256 * 1024
MAX_ARRAYS = 64
MAX_NDIM = 4
MAX_SENDER_CHARS = 128
MAX_COVERAGE_ENTRIES = 100_000
MAX_INT = 2 ** 53  # every integer field must survive a round trip through any JSON reader

_HEADER_KEYS = frozenset({"v", "type", "sender", "seq", "version", "window", "samples", "ts",
                          "coverage", "arrays"})
_OPTIONAL_KEYS = frozenset({"codec", "waiting"})
CODED = (PUSH, MODEL)   # the types a codec may encode: a model's tensors
_INT_FIELDS = {"seq": 0, "version": 0, "window": -1, "samples": 0}  # field: smallest allowed value


class MalformedMessage(ValueError):
    """A received message that failed validation; ``reason`` says what was wrong, ``sender``
    is the header's claim of who sent it when that much could be read."""

    def __init__(self, reason: str, sender: Optional[str] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sender = sender


@dataclass(frozen=True)
class ArraySpec:
    """What one array frame must be: its dtype name and shape."""

    dtype: str
    shape: Tuple[int, ...]

    @classmethod
    def of(cls, array: np.ndarray) -> "ArraySpec":
        return cls(np.dtype(array.dtype).name, tuple(int(n) for n in array.shape))

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    def as_json(self) -> Dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Message:
    """One protocol message; ``arrays`` are numpy arrays (read-only views after decoding).

    ``codec``: the chain the tensors travel encoded with (none: as they are). ``arrays``
    are the tensors either way: :func:`encode` encodes them, :func:`decode` decodes them."""

    type: str
    sender: str
    seq: int = 0
    version: int = 0
    window: int = -1
    samples: int = 0
    coverage: Mapping[str, int] = field(default_factory=dict)
    arrays: Tuple[np.ndarray, ...] = ()
    ts: float = 0.0
    codec: Tuple[Codec, ...] = ()
    waiting: bool = False   # a PULL of a child that holds ``version`` and waits for a newer one

    def reply(self, type_: str, sender: str, **fields: Any) -> "Message":
        """A reply to this request: same ``seq``."""
        return Message(type_, sender, seq=self.seq, **fields)


class Schema:
    """What a receiver accepts: for each message type, the arrays it must carry.

    A type missing from the schema is refused ("not expected here"): a worker's sensor
    socket accepts only ``SAMPLE``, a parameter server only requests.
    """

    def __init__(self, arrays_by_type: Mapping[str, Sequence[ArraySpec]],
                 codecs: Optional[Mapping[str, Type[Codec]]] = None) -> None:
        self.arrays_by_type = {kind: tuple(specs) for kind, specs in arrays_by_type.items()}
        self._codecs = codecs

    @property
    def codecs(self) -> Mapping[str, Type[Codec]]:
        """The codec classes a coded message may name (default: the built-ins), looked up once."""
        if self._codecs is None:
            self._codecs = accepted_codecs()
        return self._codecs

    @classmethod
    def for_model(cls, weights: Sequence[np.ndarray], accept: Sequence[str],
                  codecs: Optional[Mapping[str, Type[Codec]]] = None) -> "Schema":
        """Messages of the types ``accept`` between a child and its parent, for a model with
        these weights (a parent accepts ``REQUESTS``, a child ``REPLIES``), coded by the
        ``codecs`` given (:func:`~edgetestbed.process.coded.accepted_codecs`; default: the built-ins)."""
        specs = [ArraySpec("float32", tuple(w.shape)) for w in weights]
        arrays = {PULL: (), ACK: (), DONE: (), NOT_MODIFIED: (), MODEL: specs, PUSH: specs}
        return cls({kind: arrays[kind] for kind in accept}, codecs)

    @classmethod
    def for_samples(cls, feature_shape: Sequence[int], feature_dtype: str, label_dtype: str) -> "Schema":
        """Sensor samples: features of ``feature_shape`` and ``feature_dtype``, and a scalar label."""
        return cls({SAMPLE: (ArraySpec(feature_dtype, tuple(feature_shape)), ArraySpec(label_dtype, ()))})

    def max_frame_bytes(self) -> int:
        """The largest frame any accepted message has (header or array)."""
        arrays = [spec.nbytes for specs in self.arrays_by_type.values() for spec in specs]
        return max([MAX_HEADER_BYTES, *arrays])

    def max_payload_bytes(self) -> int:
        """The most array bytes an accepted message carries (a model's size, for a model schema)."""
        return max((sum(spec.nbytes for spec in specs) for specs in self.arrays_by_type.values()), default=0)

    def max_message_bytes(self) -> int:
        """The largest accepted message, all frames together."""
        return MAX_HEADER_BYTES + self.max_payload_bytes()

    def max_coded_bytes(self) -> int:
        """The largest accepted coded message: a chain may write more bytes than the tensors
        (top-k keeping every entry sends an index with each), but not unboundedly more."""
        return MAX_HEADER_BYTES + CODED_EXPANSION * self.max_payload_bytes()


# ---------------------------------------------------------------- sending

def label_dtype(labels: np.ndarray) -> str:
    """The wire dtype of a dataset's labels: int64 for classes, float64 for regression targets."""
    return "int64" if np.asarray(labels).dtype.kind in "iub" else "float64"


def sample_message(sender: str, seq: int, window: int, x: np.ndarray, y: Any, y_dtype: str) -> Message:
    """A sensor's ``SAMPLE`` message for one ``(x, y)`` sample (``x`` in its wire dtype)."""
    return Message(SAMPLE, sender, seq=seq, window=window, samples=1,
                   arrays=(np.asarray(x), np.asarray(y, dtype=y_dtype)))


def encode(message: Message) -> List[Any]:
    """The frames of ``message``: the header as bytes, then each array (no copy when
    contiguous); with a codec, the arrays its chain writes (the chain's state advances)."""
    arrays = [np.asarray(a) for a in message.arrays]
    arrays = [_contiguous(a) for a in (encode_chain(message.codec, arrays) if message.codec else arrays)]
    header = {
        "v": PROTOCOL_VERSION, "type": message.type, "sender": message.sender,
        "seq": message.seq, "version": message.version, "window": message.window,
        "samples": message.samples, "ts": message.ts or time.time(),
        "coverage": dict(message.coverage),
        "arrays": [ArraySpec.of(a).as_json() for a in arrays],
    }
    if message.codec:
        header["codec"] = [codec.describe() for codec in message.codec]
    if message.waiting:
        header["waiting"] = True
    return [json.dumps(header, separators=(",", ":")).encode(), *arrays]


def _contiguous(array: np.ndarray) -> np.ndarray:
    """``array`` itself when C-contiguous, else a C-ordered copy (keeps 0-d arrays 0-d,
    unlike ``np.ascontiguousarray``)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def frame_bytes(frame: Any) -> int:
    """The size of one frame's body (bytes, a zmq.Frame or a numpy array)."""
    return memoryview(frame).nbytes


def wire_bytes(frames: Iterable[Any]) -> int:
    """Bytes ``frames`` occupy on a ZMTP 3 connection: each body plus its frame header
    (1 flag byte and a 1-byte length, or an 8-byte length above 255 bytes)."""
    sizes = [frame_bytes(f) for f in frames]
    return sum(size + (2 if size < 256 else 9) for size in sizes)


# ---------------------------------------------------------------- receiving

def decode(frames: Sequence[Any], schema: Schema) -> Message:
    """The message in ``frames``, after validating everything; else :class:`MalformedMessage`."""
    if not frames:
        raise MalformedMessage("empty message")
    total = sum(frame_bytes(f) for f in frames)
    if total > schema.max_coded_bytes():   # the bound of an uncoded message is checked below
        raise MalformedMessage(f"message of {total} bytes exceeds the maximum {schema.max_coded_bytes()}")
    header = _parse_header(frames[0])
    sender = header["sender"] if isinstance(header.get("sender"), str) else None
    try:
        _check_fields(header)
        codecs = _check_codec(header, schema)
        if not codecs and total > schema.max_message_bytes():
            raise MalformedMessage(f"message of {total} bytes exceeds the maximum {schema.max_message_bytes()}")
        specs = _check_arrays(header, frames[1:], schema, coded=bool(codecs))
        arrays = tuple(np.frombuffer(frame, dtype=spec.dtype).reshape(spec.shape)
                       for frame, spec in zip(frames[1:], specs))
        if codecs:
            arrays = _decoded(header["type"], codecs, arrays, schema)
    except MalformedMessage as error:
        raise MalformedMessage(error.reason, sender) from None
    return Message(header["type"], header["sender"], seq=header["seq"], version=header["version"],
                   window=header["window"], samples=header["samples"], coverage=header["coverage"],
                   arrays=arrays, ts=float(header["ts"]), codec=codecs, waiting="waiting" in header)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _parse_header(frame: Any) -> Dict[str, Any]:
    size = frame_bytes(frame)
    if size > MAX_HEADER_BYTES:
        raise MalformedMessage(f"header of {size} bytes exceeds the maximum {MAX_HEADER_BYTES}")
    try:
        header = json.loads(bytes(memoryview(frame)).decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise MalformedMessage(f"header is not valid UTF-8 JSON: {error}") from None
    if not isinstance(header, dict):
        raise MalformedMessage(f"header must be a JSON object, got {type(header).__name__}")
    return header


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(header: Mapping[str, Any]) -> None:
    missing, unknown = sorted(_HEADER_KEYS - set(header)), sorted(set(header) - _HEADER_KEYS - _OPTIONAL_KEYS)
    if missing or unknown:
        raise MalformedMessage(f"header fields: missing {missing}, unknown {unknown}")
    if "waiting" in header and (header["waiting"] is not True or header["type"] != PULL):
        raise MalformedMessage(f"waiting must be true and on a PULL only, got {header['waiting']!r} "
                               f"on a {header['type']!r}")
    if not _is_int(header["v"]) or header["v"] != PROTOCOL_VERSION:
        raise MalformedMessage(f"protocol version {header['v']!r} is not {PROTOCOL_VERSION}")
    if header["type"] not in MESSAGE_TYPES:
        raise MalformedMessage(f"unknown message type {header['type']!r}")
    sender = header["sender"]
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_SENDER_CHARS:
        raise MalformedMessage(f"sender must be a string of 1 to {MAX_SENDER_CHARS} characters")
    for name, low in _INT_FIELDS.items():
        if not _is_int(header[name]) or not low <= header[name] < MAX_INT:
            raise MalformedMessage(f"{name} must be an integer from {low} to {MAX_INT - 1}, got {header[name]!r}")
    if isinstance(header["ts"], bool) or not isinstance(header["ts"], (int, float)) or header["ts"] < 0:
        raise MalformedMessage(f"ts must be a non-negative number, got {header['ts']!r}")
    _check_coverage(header["coverage"])


def _check_coverage(coverage: Any) -> None:
    if not isinstance(coverage, dict) or len(coverage) > MAX_COVERAGE_ENTRIES:
        raise MalformedMessage(f"coverage must be an object of at most {MAX_COVERAGE_ENTRIES} entries")
    for worker, window in coverage.items():
        if not 0 < len(worker) <= MAX_SENDER_CHARS or not _is_int(window) or not -1 <= window < MAX_INT:
            raise MalformedMessage(f"coverage entry {worker[:40]!r}: {window!r} is not a window number")


def _array_spec(index: int, entry: Any) -> ArraySpec:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape"}:
        raise MalformedMessage(f"array {index}: must be an object with exactly 'dtype' and 'shape'")
    dtype, shape = entry["dtype"], entry["shape"]
    if dtype not in DTYPES:
        raise MalformedMessage(f"array {index}: dtype {str(dtype)[:40]!r} not allowed ({', '.join(sorted(DTYPES))})")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(_is_int(n) and 0 <= n < MAX_INT for n in shape)):
        raise MalformedMessage(f"array {index}: shape must be a list of at most {MAX_NDIM} non-negative integers")
    return ArraySpec(dtype, tuple(shape))


def _check_codec(header: Mapping[str, Any], schema: Schema) -> Tuple[Codec, ...]:
    """The chain a coded message declares (none for an uncoded one), checked."""
    if "codec" not in header:
        return ()
    if header["type"] not in CODED:
        raise MalformedMessage(f"a {header['type']} message cannot be coded (only {' and '.join(CODED)})")
    try:
        return codec_chain(header["codec"], schema.codecs)
    except CodecError as error:
        raise MalformedMessage(str(error)) from None


def _decoded(kind: str, codecs: Sequence[Codec], wire: Sequence[np.ndarray], schema: Schema) -> Tuple[np.ndarray, ...]:
    """A coded message's tensors, decoded into the schema's shapes and checked against it."""
    expected = schema.arrays_by_type.get(kind, ())
    try:
        arrays = decode_chain(codecs, wire, [spec.shape for spec in expected])
    except CodecError as error:
        names = "+".join(codec.type for codec in codecs)
        raise MalformedMessage(f"{kind} coded by {names[:80]}: {error}") from None
    if not all(isinstance(a, np.ndarray) for a in arrays) or [ArraySpec.of(a) for a in arrays] != list(expected):
        raise MalformedMessage(f"{kind} decoded arrays do not match the expected {_describe(expected)}")
    return tuple(arrays)


def _check_arrays(header: Mapping[str, Any], frames: Sequence[Any], schema: Schema, coded: bool) -> List[ArraySpec]:
    """The declared arrays, each matching its frame; an uncoded message's also matching the schema."""
    kind, declared = header["type"], header["arrays"]
    if kind not in schema.arrays_by_type:
        raise MalformedMessage(f"message type {kind} is not expected here")
    limit = MAX_CODED_ARRAYS if coded else MAX_ARRAYS
    if not isinstance(declared, list) or len(declared) > limit:
        raise MalformedMessage(f"arrays must be a list of at most {limit} entries")
    specs = [_array_spec(i, entry) for i, entry in enumerate(declared)]
    if len(frames) != len(specs):
        raise MalformedMessage(f"header declares {len(specs)} arrays but {len(frames)} array frames follow")
    expected = schema.arrays_by_type[kind]
    if not coded and tuple(specs) != expected:
        raise MalformedMessage(f"{kind} arrays {_describe(specs)} do not match the expected {_describe(expected)}")
    for index, (spec, frame) in enumerate(zip(specs, frames)):
        if frame_bytes(frame) != spec.nbytes:
            raise MalformedMessage(f"array {index}: frame has {frame_bytes(frame)} bytes, "
                                   f"{spec.dtype}{list(spec.shape)} needs {spec.nbytes}")
    return specs


def _describe(specs: Sequence[ArraySpec]) -> str:
    text = ", ".join(f"{s.dtype}{list(s.shape)}" for s in specs[:6])
    return f"[{text}{', ...' if len(specs) > 6 else ''}]"
