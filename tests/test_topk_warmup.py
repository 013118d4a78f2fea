"""``topk``'s ``warmup`` (deep gradient compression's warm-up, Lin et al., ICLR 2018): the
schedule of kept counts, advanced only by acknowledged pushes, each push's header declaring
the fraction it kept so that the receiver decodes it exactly, and ``warmup: 0`` as before."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgetestbed.codecs import Codec, CodecError, commit_chain, create_codec
from edgetestbed.codecs.topk import kept, warmup_fraction
from edgetestbed.process import protocol
from edgetestbed.process.coded import codec_chain
from edgetestbed.process.protocol import PUSH, Message, Schema
from test_codecs import SHAPES, TENSORS, with_codec
from test_spec import assert_problem

N = 784 * 20   # 15,680 entries
RNG = np.random.default_rng(11)


def topk(fraction: float = 0.01, warmup: int = 3, **params) -> Codec:
    return create_codec("topk", {"fraction": fraction, "feedback": True, "min_entries": 0, "warmup": warmup, **params})


def update() -> list:
    return [RNG.normal(0, 0.1, (784, 20)).astype(np.float32)]


def counts(codec: Codec, pushes: int) -> list:
    """The entries each of ``pushes`` acknowledged pushes keeps of a 15,680-entry tensor."""
    result = []
    for _ in range(pushes):
        result.append(len(codec.encode(update())[0]))
        commit_chain([codec])
    return result


@pytest.mark.parametrize("feedback", [True, False])
def test_warmup_keeps_25_then_6_25_then_1_5625_percent_then_the_fraction(feedback):
    expected = [math.ceil(0.25 * N), math.ceil(0.0625 * N), math.ceil(0.015625 * N), math.ceil(0.01 * N)]
    assert expected == [3920, 980, 245, 157]
    assert counts(topk(feedback=feedback), 6) == expected + [157, 157]


def test_warmup_never_keeps_less_than_the_fraction():
    assert [warmup_fraction(0.1, 3, step) for step in range(5)] == [0.25, 0.1, 0.1, 0.1, 0.1]
    assert [warmup_fraction(0.01, 5, step) for step in range(6)] == [0.25, 0.0625, 0.015625, 0.01, 0.01, 0.01]
    assert counts(topk(fraction=0.1), 3) == [3920, 1568, 1568]
    assert counts(topk(fraction=0.5), 2) == [7840, 7840]


def test_an_unacknowledged_push_is_encoded_again_at_the_same_step():
    codec = topk()
    assert len(codec.encode(update())[0]) == 3920     # lost: never acknowledged
    assert len(codec.encode(update())[0]) == 3920     # sent again with the next update, still push 0
    assert codec.describe()["fraction"] == 0.25
    commit_chain([codec])
    assert len(codec.encode(update())[0]) == 980      # lost
    assert len(codec.encode(update())[0]) == 980
    commit_chain([codec])
    assert counts(codec, 2) == [245, 157]


def test_describe_declares_the_fraction_the_last_encode_kept_and_no_warmup():
    codec = topk(min_entries=1000)
    assert codec.describe() == {"type": "topk", "fraction": 0.25, "feedback": True, "min_entries": 1000, "warmup": 0}
    for fraction in (0.25, 0.0625, 0.015625, 0.01, 0.01):
        codec.encode(update())
        commit_chain([codec])                         # describe still says what that push kept
        assert codec.describe() == {"type": "topk", "fraction": fraction, "feedback": True,
                                    "min_entries": 1000, "warmup": 0}


def test_each_warmup_push_decodes_exactly_through_the_protocol():
    """Every push through the real protocol: the receiver builds its codec from the header
    alone and decodes exactly what the sender's codec kept; the spec's fraction would not."""
    sender = topk(min_entries=1000)
    schema = Schema.for_model(TENSORS, protocol.REQUESTS)
    for push, fraction in enumerate([0.25, 0.0625, 0.015625, 0.01]):
        arrays = tuple(RNG.normal(0, 0.1, shape).astype(np.float32) for shape in SHAPES)
        frames = protocol.encode(Message(PUSH, "w1", seq=push, window=push, samples=10, arrays=arrays,
                                         codec=(sender,)))
        header = json.loads(bytes(frames[0]))
        assert header["codec"] == [{"type": "topk", "fraction": fraction, "feedback": True,
                                    "min_entries": 1000, "warmup": 0}]
        wire = [np.frombuffer(bytes(f), dtype=a["dtype"]).reshape(a["shape"])
                for f, a in zip(frames[1:], header["arrays"])]
        assert len(wire[0]) == kept(fraction, N) and [len(w) for w in wire[2::2]] == [20, 200, 10]
        received = protocol.decode(frames, schema)
        assert [c.describe() for c in received.codec] == header["codec"]
        expected = sender.decode(wire, SHAPES)
        assert all(np.array_equal(got, want) for got, want in zip(received.arrays, expected))
        if fraction != 0.01:   # a receiver that took the spec's fraction would refuse it
            with pytest.raises(CodecError, match="keeps 157"):
                topk(warmup=0, min_entries=1000).decode(wire, SHAPES)
        commit_chain([sender])   # the parent acknowledged it


def test_warmup_0_is_topk_as_before():
    plain = create_codec("topk", {"fraction": 0.01, "feedback": True, "min_entries": 0})
    none = topk(warmup=0)
    assert plain.describe() == none.describe() == {"type": "topk", "fraction": 0.01, "feedback": True,
                                                   "min_entries": 0, "warmup": 0}
    for push in range(4):
        u = update()
        a, b = plain.encode(u), none.encode(u)
        assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a[0]) == 157
        if push != 1:   # push 1 is lost: both encode it again with the next update
            commit_chain([plain, none])
        assert plain.describe() == none.describe() and none.describe()["fraction"] == 0.01


@pytest.mark.parametrize("value, words", [
    ("-1", "-1 is too small; expected a whole number of at least 0"),
    ("1001", "1001 is too large; expected a whole number of at most 1000"),
    ("1.5", "got 1.5; expected a number of pushes, 0 to 1000"),
])
def test_a_bad_warmup_is_reported_at_its_line_and_field(tmp_path, value, words):
    assert_problem(tmp_path, with_codec(f"{{type: topk, fraction: 0.01, warmup: {value}}}"), 9,
                   "nodes[1].codec.warmup", words)


def test_a_message_declaring_a_negative_warmup_is_refused():
    with pytest.raises(CodecError, match=r"codec 0 \(topk\)\.warmup: -1 is too small"):
        codec_chain([{"type": "topk", "fraction": 0.25, "warmup": -1}], {"topk": type(topk())})
