"""The wire format: round trips over real ZeroMQ sockets, and every malformed case refused."""

from __future__ import annotations

import json
import random
import sys
from typing import Callable, Iterator

import numpy as np
import pytest
import zmq

from edgetestbed.codecs import create_codec
from edgetestbed.process import protocol
from edgetestbed.process.protocol import (ACK, MODEL, PULL, PUSH, SAMPLE, ArraySpec, MalformedMessage,
                                        Message, Schema, decode, encode, wire_bytes)

WEIGHTS = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
SCHEMA = Schema.for_model(WEIGHTS, protocol.REQUESTS + protocol.REPLIES)


def _push(**fields) -> Message:
    arrays = (np.arange(12, dtype=np.float32).reshape(4, 3), np.ones(3, np.float32))
    return Message(PUSH, "w1", seq=3, version=2, window=5, samples=40,
                   coverage={"w1": 5, "w2": 4}, arrays=arrays, **fields)


def _frames(header_changes=None, frames=None):
    """The frames of a valid PUSH, with header fields changed or frames replaced."""
    encoded = encode(_push())
    header = json.loads(encoded[0])
    header.update(header_changes or {})
    return [json.dumps(header).encode(), *(frames if frames is not None else encoded[1:])]


def test_round_trip_over_zeromq_sockets():
    context = zmq.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    try:
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        dealer.send_multipart(encode(_push()), copy=False)
        identity, *frames = router.recv_multipart(copy=False)
        got = decode(frames, SCHEMA)
    finally:
        router.close(0), dealer.close(0), context.term()
    sent = _push()
    assert (got.type, got.sender, got.seq, got.version, got.window, got.samples) == ("PUSH", "w1", 3, 2, 5, 40)
    assert got.coverage == {"w1": 5, "w2": 4} and got.ts > 0
    for a, b in zip(got.arrays, sent.arrays):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32


def test_reply_echoes_seq_and_requests_carry_no_arrays():
    request = Message(PULL, "w1", seq=9)
    reply = request.reply(MODEL, "ps", version=4, arrays=tuple(WEIGHTS))
    assert decode(encode(request), SCHEMA).seq == 9
    assert decode(encode(reply), SCHEMA).seq == 9


def test_sample_messages_for_both_label_kinds():
    for labels, y in ((np.array([3, 7]), 7), (np.array([1.5]), 81.0)):
        dtype = protocol.label_dtype(labels)
        schema = Schema.for_samples((5,), "float32", dtype)
        got = decode(encode(protocol.sample_message("sensor0", 11, 2, np.ones(5, dtype=np.float32), y, dtype)), schema)
        assert got.type == SAMPLE and got.arrays[1].item() == y and got.arrays[0].dtype == np.float32


def test_wire_bytes_counts_zmtp_frame_headers():
    assert wire_bytes([b"x" * 10]) == 12
    assert wire_bytes([b"x" * 300, np.zeros(100, np.float32)]) == 300 + 9 + 400 + 9


def test_max_sizes_follow_the_schema():
    schema = Schema.for_model([np.zeros((1000, 100), np.float32)], protocol.REQUESTS)
    assert schema.max_frame_bytes() == 400_000
    assert schema.max_message_bytes() == 400_000 + protocol.MAX_HEADER_BYTES


MALFORMED = [
    ("empty message", []),
    ("not JSON", [b"\xff\xfe not json"]),
    ("not an object", [b"[1, 2]"]),
    ("NaN", [b'{"v": NaN}']),
    ("deep nesting", [b"[" * 100_000]),
    ("missing field", [json.dumps({"v": 1, "type": "PULL"}).encode()]),
    ("unknown field", _frames({"extra": 1})),
    ("protocol version", _frames({"v": 2})),
    ("boolean version", _frames({"v": True})),
    ("unknown type", _frames({"type": "HELLO"})),
    ("not expected here", _frames({"type": "SAMPLE"})),
    ("sender type", _frames({"sender": 5})),
    ("empty sender", _frames({"sender": ""})),
    ("window type", _frames({"window": "2"})),
    ("negative samples", _frames({"samples": -1})),
    ("float seq", _frames({"seq": 1.5})),
    ("huge version", _frames({"version": 2 ** 64})),
    ("ts type", _frames({"ts": "now"})),
    ("coverage type", _frames({"coverage": [1]})),
    ("coverage value", _frames({"coverage": {"w1": "x"}})),
    ("arrays type", _frames({"arrays": {}})),
    ("array entry", _frames({"arrays": [{"dtype": "float32"}, {"dtype": "float32", "shape": [3]}]})),
    ("dtype not allowed", _frames({"arrays": [{"dtype": "object", "shape": [4, 3]},
                                              {"dtype": "float32", "shape": [3]}]})),
    ("negative dimension", _frames({"arrays": [{"dtype": "float32", "shape": [-4, -3]},
                                               {"dtype": "float32", "shape": [3]}]})),
    ("too many dimensions", _frames({"arrays": [{"dtype": "float32", "shape": [1, 1, 1, 1, 12]},
                                                {"dtype": "float32", "shape": [3]}]})),
    ("wrong shape", _frames({"arrays": [{"dtype": "float32", "shape": [3, 4]},
                                        {"dtype": "float32", "shape": [3]}]})),
    ("wrong dtype", _frames({"arrays": [{"dtype": "float64", "shape": [4, 3]},
                                        {"dtype": "float32", "shape": [3]}]},
                            [np.zeros((4, 3)), np.zeros(3, np.float32)])),
    ("missing frame", _frames(frames=[np.zeros((4, 3), np.float32)])),
    ("extra frame", _frames(frames=[np.zeros((4, 3), np.float32), np.zeros(3, np.float32), b"x"])),
    ("short frame", _frames(frames=[np.zeros((4, 3), np.float32), np.zeros(2, np.float32)])),
    ("waiting on a PUSH", _frames({"waiting": True})),
    ("oversized header", [b" " * (protocol.MAX_HEADER_BYTES + 1)]),
    ("oversized message", _frames(frames=[np.zeros(1_000_000, np.float32)])),
]


@pytest.mark.parametrize("case, frames", MALFORMED, ids=[case for case, _ in MALFORMED])
def test_malformed_messages_are_refused_with_a_reason(case, frames):
    with pytest.raises(MalformedMessage) as caught:
        decode(frames, SCHEMA)
    assert caught.value.reason and str(caught.value) == caught.value.reason


def test_reason_names_the_problem_and_the_sender():
    with pytest.raises(MalformedMessage, match=r"array 0: dtype 'object' not allowed") as caught:
        decode(MALFORMED[22][1], SCHEMA)
    assert caught.value.sender == "w1"
    with pytest.raises(MalformedMessage, match=r"PUSH arrays \[float32\[3, 4\]"):
        decode(_frames({"arrays": [{"dtype": "float32", "shape": [3, 4]},
                                   {"dtype": "float32", "shape": [3]}]}), SCHEMA)


def test_fuzzed_messages_either_decode_or_raise_malformed():
    """Random byte flips, truncations and frame shuffles never raise anything else."""
    rng = random.Random(1)
    valid = [bytes(memoryview(f)) for f in encode(_push())]
    for _ in range(2000):
        frames = list(valid)
        index = rng.randrange(len(frames))
        body = bytearray(frames[index])
        action = rng.randrange(4)
        if action == 0 and body:
            body[rng.randrange(len(body))] = rng.randrange(256)
        elif action == 1:
            body = body[:rng.randrange(len(body) + 1)]
        elif action == 2:
            body += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            rng.shuffle(frames)
        frames[index] = bytes(body)
        try:
            message = decode(frames, SCHEMA)
        except MalformedMessage:
            continue
        assert [ArraySpec.of(a) for a in message.arrays] == list(SCHEMA.arrays_by_type[PUSH])


def test_zmq_refuses_frames_above_maxmsgsize():
    """The socket option stops an oversized frame before it is buffered (peer disconnected)."""
    context = zmq.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    try:
        router.setsockopt(zmq.MAXMSGSIZE, SCHEMA.max_frame_bytes())
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        dealer.send_multipart([b"{}", np.zeros(SCHEMA.max_frame_bytes() + 1, np.uint8)])
        assert router.poll(500) == 0
    finally:
        router.close(0), dealer.close(0), context.term()


def test_ack_is_a_valid_reply_without_arrays():
    assert decode(encode(Message(ACK, "ps", seq=1)), SCHEMA).arrays == ()


def test_parents_accept_only_requests_and_children_only_replies():
    requests, replies = (Schema.for_model(WEIGHTS, kinds) for kinds in (protocol.REQUESTS, protocol.REPLIES))
    with pytest.raises(MalformedMessage, match="MODEL is not expected here"):
        decode(encode(Message(MODEL, "ps", arrays=tuple(WEIGHTS))), requests)
    with pytest.raises(MalformedMessage, match="PUSH is not expected here"):
        decode(encode(_push()), replies)


# ---------------------------------------------------------------- coded messages

def _coded(*codecs, **fields) -> list:
    return [bytes(memoryview(f)) for f in encode(_push(codec=tuple(codecs), **fields))]


def test_an_uncoded_message_is_byte_for_byte_what_it_was_before_codecs():
    header = encode(Message(PUSH, "w1", seq=3, version=2, window=5, samples=40, coverage={"w1": 5},
                            arrays=tuple(WEIGHTS), ts=1.5))[0]
    assert header == (b'{"v":1,"type":"PUSH","sender":"w1","seq":3,"version":2,"window":5,"samples":40,'
                      b'"ts":1.5,"coverage":{"w1":5},"arrays":[{"dtype":"float32","shape":[4,3]},'
                      b'{"dtype":"float32","shape":[3]}]}')
    assert decode(encode(_push()), SCHEMA).codec == ()


def test_a_waiting_pull_says_so_and_other_pulls_keep_their_bytes():
    plain = encode(Message(PULL, "w1", seq=3, version=2, ts=1.5))[0]
    waiting = encode(Message(PULL, "w1", seq=3, version=2, ts=1.5, waiting=True))[0]
    assert b"waiting" not in plain and waiting == plain[:-1] + b',"waiting":true}'
    assert decode([waiting], SCHEMA).waiting and not decode([plain], SCHEMA).waiting
    for value in (False, 1, "true"):
        header = json.loads(waiting)
        header["waiting"] = value
        with pytest.raises(MalformedMessage, match="waiting must be true and on a PULL only"):
            decode([json.dumps(header).encode()], SCHEMA)


@pytest.mark.parametrize("codec, wire", [
    ({"type": "quantize", "bits": 16, "stochastic": False}, ["uint16", "uint16", "float32"]),
    ({"type": "topk", "fraction": 0.5, "feedback": True, "min_entries": 0, "warmup": 0}, ["int32", "float32"] * 2),
    ({"type": "threshold", "wt": 0.5}, ["int32", "float32"] * 2),
    ({"type": "two_step", "wt": 0.5, "bits": 8}, ["int32", "uint8"] * 2 + ["float32"]),
    ({"type": "sign", "feedback": True}, ["uint8", "uint8", "float32"]),
])
def test_a_coded_message_declares_its_chain_and_decodes_into_the_schemas_shapes(codec, wire):
    frames = _coded(create_codec(codec["type"], {k: v for k, v in codec.items() if k != "type"}))
    header = json.loads(frames[0])
    assert header["codec"] == [codec] and [a["dtype"] for a in header["arrays"]] == wire
    got = decode(frames, SCHEMA)
    assert [ArraySpec.of(a) for a in got.arrays] == list(SCHEMA.arrays_by_type[PUSH])
    assert [c.type for c in got.codec] == [codec["type"]]
    error = {"quantize": 11 / 65535, "topk": 6, "threshold": 0, "two_step": 10 / 255 / 2 + 1e-6,
             "sign": 5.5}[codec["type"]]   # sign: 0 .. 11 all as +5.5, their mean magnitude
    assert np.abs(got.arrays[0] - _push().arrays[0]).max() <= error   # threshold: all but the 0 sent


def _recoded(codec, header_changes=None, frames=None) -> list:
    """A valid coded PUSH by ``codec`` with header fields changed or array frames replaced."""
    encoded = _coded(codec)
    header = {**json.loads(encoded[0]), **(header_changes or {})}
    return [json.dumps(header).encode(), *(frames if frames is not None else encoded[1:])]


Q8 = {"type": "quantize", "bits": 8, "stochastic": False}
CODED_MALFORMED = [
    ("unknown codec", {"codec": [{"type": "gzip"}]}, None,
     "codec 0: unknown codec 'gzip'; accepted here: quantize, topk, threshold, two_step, sign"),
    ("module:Class from the wire", {"codec": [{"type": "os:system"}]}, None, "unknown codec 'os:system'"),
    ("no type", {"codec": [{"bits": 8}]}, None, "codec 0: must be an object with a 'type'"),
    ("empty chain", {"codec": []}, None, "codec must be a list of 1 to 8 codecs"),
    ("not a list", {"codec": "quantize"}, None, "codec must be a list"),
    ("bad parameter", {"codec": [{**Q8, "bits": 7}]}, None, "codec 0 (quantize).bits: 7 is not a number of bits"),
    ("unknown parameter", {"codec": [{**Q8, "level": 3}]}, None, "codec 0 (quantize).level: unknown key 'level'"),
    ("chain order", {"codec": [{"type": "topk", "fraction": 0.5}, Q8]}, None, "codec 1: quantize cannot follow topk"),
    ("coded PULL", {"type": "PULL", "codec": [Q8]}, None, "a PULL message cannot be coded"),
    ("wrong codec for the arrays", {"codec": [{"type": "topk", "fraction": 0.5}]}, None,
     "PUSH coded by topk: 3 wire arrays, expected 4"),
    ("short codes", {"arrays": [{"dtype": "uint8", "shape": [4, 2]}, {"dtype": "uint8", "shape": [3]},
                                {"dtype": "float32", "shape": [2, 2]}]},
     [np.zeros((4, 2), np.uint8), np.zeros(3, np.uint8), np.zeros((2, 2), np.float32)],
     "PUSH coded by quantize: tensor 0's codes are [4, 2], expected [4, 3]"),
    ("frame size", None, [np.zeros(13, np.uint8), np.zeros(3, np.uint8), np.zeros((2, 2), np.float32)],
     "array 0: frame has 13 bytes"),
    ("too big", {"arrays": [{"dtype": "uint8", "shape": [300_000]}, {"dtype": "uint8", "shape": [3]},
                            {"dtype": "float32", "shape": [2, 2]}]},
     [np.zeros(300_000, np.uint8), np.zeros(3, np.uint8), np.zeros((2, 2), np.float32)], "exceeds the maximum"),
]


@pytest.mark.parametrize("case, changes, frames, words", CODED_MALFORMED, ids=[c[0] for c in CODED_MALFORMED])
def test_malformed_coded_messages_are_refused_with_a_reason(case, changes, frames, words):
    with pytest.raises(MalformedMessage) as caught:
        decode(_recoded(create_codec("quantize", {"bits": 8, "stochastic": False}), changes, frames), SCHEMA)
    assert words in caught.value.reason
    assert caught.value.sender == (None if case == "too big" else "w1")   # too big: refused unread


def test_a_module_only_a_message_names_is_never_imported(tmp_path, monkeypatch):
    (tmp_path / "wirecodec.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MalformedMessage, match="unknown codec 'wirecodec:Anything'"):
        decode(_recoded(create_codec("quantize", {}), {"codec": [{"type": "wirecodec:Anything"}]}), SCHEMA)
    assert not (tmp_path / "imported").exists() and "wirecodec" not in sys.modules


def _random_value(rng: random.Random) -> object:
    return rng.choice([0, 1, 7, 8, 16, -1, 0.1, 0.5, 1.0, 2.5, 2 ** 40, True, False, None, "8", "x", [], {}, [8]])


def _random_codec_entry(rng: random.Random) -> object:
    if rng.random() < 0.05:
        return rng.choice(["quantize", 3, None, [], {"type": None}])
    entry = {"type": rng.choice(["quantize", "topk", "threshold", "two_step", "sign", "topk", "quantize", "gzip",
                                 "os:system", "", "x" * 200, 5])}
    for key in rng.sample(["bits", "stochastic", "fraction", "feedback", "wt", "extra"], rng.randrange(4)):
        entry[key] = _random_value(rng)
    if entry["type"] == "topk" and rng.random() < 0.7:
        entry["fraction"] = rng.choice([0.1, 0.25, 0.5, 1.0])
    if entry["type"] in ("threshold", "two_step") and rng.random() < 0.7:
        entry["wt"] = rng.choice([0.5, 2.0, 100.0])
    return entry


def _random_array(rng: random.Random, nprng: np.random.Generator) -> np.ndarray:
    """A wire array of a random allowed dtype and small shape, often of plausible indices."""
    dtype = rng.choice(sorted(protocol.DTYPES))
    shape = tuple(rng.randrange(5) for _ in range(rng.choice([0, 1, 1, 1, 2])))
    if dtype in ("int32", "int64") and rng.random() < 0.5:
        return np.sort(nprng.integers(-2, 14, shape).ravel()).reshape(shape).astype(dtype)
    if dtype.startswith("float"):
        return nprng.choice([0.0, 1.0, -3.5, np.inf, np.nan, 1e38, 1e-30], shape).astype(dtype)
    return nprng.integers(0, 256, shape).astype(dtype)


def valid_coded(push: Callable[..., Message]) -> list:
    """Coded messages (frames) of ``push(codec=...)`` by every built-in codec, for fuzzing."""
    codecs = [create_codec("quantize", {"bits": bits}) for bits in (8, 16)] + \
        [create_codec("topk", {"fraction": f}) for f in (0.1, 0.5, 1.0)] + \
        [create_codec(kind, {"wt": wt}) for kind in ("threshold", "two_step") for wt in (0.5, 2.0, 100.0)] + \
        [create_codec("sign", {"feedback": feedback}) for feedback in (True, False)]
    return [[bytes(memoryview(f)) for f in encode(push(codec=(codec,)))] for codec in codecs]


def fuzzed_coded(valid: list, count: int, seed: int = 7) -> Iterator[list]:
    """``count`` messages made from the ``valid`` ones: a random chain over valid arrays,
    random wire arrays (each frame its declared size, so decoding must judge them), one wire
    array's values replaced, or a byte flipped or a frame cut short, in turn."""
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    for case in range(count):
        frames = list(rng.choice(valid))
        header = json.loads(frames[0])
        if case % 4 == 0:
            header["codec"] = [_random_codec_entry(rng) for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 9]))]
        elif case % 4 == 1:
            arrays = [_random_array(rng, nprng) for _ in range(rng.randrange(1, 6))]
            header["arrays"] = [ArraySpec.of(a).as_json() for a in arrays]
            frames = [b"", *(a.tobytes() for a in arrays)]
        elif case % 4 == 2:
            index = rng.randrange(1, len(frames))
            spec = header["arrays"][index - 1]
            replaced = nprng.integers(-(2 ** 31), 2 ** 31, spec["shape"]).astype(spec["dtype"])
            frames[index] = replaced.tobytes()
        else:
            index = rng.randrange(len(frames))
            body = bytearray(frames[index])
            if body and rng.random() < 0.7:
                body[rng.randrange(len(body))] = rng.randrange(256)
            else:
                body = body[:rng.randrange(len(body) + 1)]
            frames[index] = bytes(body)
            if index == 0:
                header = None
        if header is not None:
            frames[0] = json.dumps(header).encode()
        yield frames


def test_fuzzed_coded_messages_either_decode_or_raise_malformed():
    """Thousands of random chains, parameters, wire arrays and mutated valid coded messages
    never raise anything but MalformedMessage, and what decodes matches the schema."""
    outcomes = {"decoded": 0, "codec refused": 0, "other": 0}
    for frames in fuzzed_coded(valid_coded(_push), 4000):
        try:
            message = decode(frames, SCHEMA)
        except MalformedMessage as error:
            outcomes["codec refused" if "coded by" in error.reason else "other"] += 1
            continue
        outcomes["decoded"] += 1
        assert [ArraySpec.of(a) for a in message.arrays] == list(SCHEMA.arrays_by_type[PUSH])
    assert min(outcomes.values()) > 200, outcomes   # every stage was reached, often
