"""The wire format: round trips over real ZeroMQ sockets, and every malformed case refused."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import zmq

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
