"""The ``NOT_MODIFIED`` reply to a pull: its wire format (strict, fuzzed) and the parent's
rule for sending it (:mod:`edgetestbed.nodes.notmodified`), without processes."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Dict, Mapping

import numpy as np
import pytest

from edgetestbed.nodes.notmodified import PullGate, gets_not_modified
from edgetestbed.process import protocol
from edgetestbed.process.protocol import (MODEL, NOT_MODIFIED, PULL, MalformedMessage, Message, Schema,
                                          decode, encode)

WEIGHTS = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
REPLIES = Schema.for_model(WEIGHTS, protocol.REPLIES)
REQUESTS = Schema.for_model(WEIGHTS, protocol.REQUESTS)


def _not_modified() -> Message:
    return Message(PULL, "w1", seq=9, version=3).reply(NOT_MODIFIED, "root", version=7, coverage={"w1": 2},
                                                       ts=2.5)


def _frames(**changes) -> list:
    header = json.loads(encode(_not_modified())[0])
    header.update(changes)
    return [json.dumps(header).encode()]


def test_round_trip_keeps_seq_version_and_coverage_and_carries_no_weights():
    message = decode(encode(_not_modified()), REPLIES)
    assert (message.type, message.seq, message.version, message.coverage, message.arrays) == \
        (NOT_MODIFIED, 9, 7, {"w1": 2}, ())


def test_a_pull_and_a_model_keep_their_bytes():
    """A new type, not a flag: older messages are byte for byte what they were."""
    pull = encode(Message(PULL, "w1", seq=3, ts=1.5))[0]
    assert pull == (b'{"v":1,"type":"PULL","sender":"w1","seq":3,"version":0,"window":-1,"samples":0,'
                    b'"ts":1.5,"coverage":{},"arrays":[]}')
    assert json.loads(encode(Message(MODEL, "root", arrays=tuple(WEIGHTS)))[0]).keys() == \
        json.loads(pull).keys()


@pytest.mark.parametrize("case, frames, words", [
    ("with arrays", _frames(arrays=[{"dtype": "float32", "shape": [3]}]) + [np.zeros(3, np.float32).tobytes()],
     "do not match"),
    ("coded", _frames(codec=[{"type": "quantize", "bits": 8, "stochastic": False}]), "cannot be coded"),
    ("misspelt type", _frames(type="NOT_MODIFIED "), "unknown message type"),
    ("lower case", _frames(type="not_modified"), "unknown message type"),
    ("a flag on it", _frames(not_modified=True), "unknown ['not_modified']"),
    ("no coverage", [json.dumps({k: v for k, v in json.loads(_frames()[0]).items() if k != "coverage"}).encode()],
     "missing ['coverage']"),
    ("negative version", _frames(version=-1), "version must be"),
    ("a stray frame", _frames() + [b"x"], "declares 0 arrays but 1"),
])
def test_malformed_not_modified_replies_are_refused(case, frames, words):
    with pytest.raises(MalformedMessage) as error:
        decode(frames, REPLIES)
    assert words in error.value.reason, case


def test_a_parent_refuses_a_not_modified_sent_to_it():
    with pytest.raises(MalformedMessage, match="NOT_MODIFIED is not expected here"):
        decode(encode(_not_modified()), REQUESTS)


def test_fuzzed_not_modified_replies_either_decode_without_arrays_or_raise_malformed():
    rng = random.Random(13)
    valid = encode(_not_modified())[0]
    for _ in range(3000):
        body = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            position = rng.randrange(len(body))
            if rng.random() < 0.5:
                body[position] = rng.randrange(256)
            else:
                del body[position]
        frames = [bytes(body)] + ([b"\0" * rng.randrange(8)] if rng.random() < 0.2 else [])
        try:
            message = decode(frames, REPLIES)
        except MalformedMessage:
            continue
        assert message.arrays == () or message.type == MODEL


# ---------------------------------------------------------------- the parent's rule

LIMIT = 4


class FakeView:
    """Accuracies by (version, base_version), counting evaluations."""

    def __init__(self, model: SimpleNamespace, scores: Mapping[int, float]) -> None:
        self.model, self.scores, self.calls = model, scores, 0

    def validation_accuracy(self, size: int) -> float:
        self.calls += 1
        return self.scores[self.model.version]


def _gate(scores: Dict[int, float], threshold: float = 0.05, max_wait: int = 3) -> PullGate:
    params = {"threshold": threshold, "sample": 10, "max_wait": max_wait}
    policies = {"w1": SimpleNamespace(policy=SimpleNamespace(type="accuracy", params=params)),
                "w2": SimpleNamespace(policy=SimpleNamespace(type="simple", params={}))}
    spec = SimpleNamespace(node=policies.__getitem__, windows=SimpleNamespace(limit=LIMIT), seed=1)
    runtime = SimpleNamespace(spec=spec, node=SimpleNamespace(children=["w1", "w2"]))
    model = SimpleNamespace(version=0, base_version=0, coverage={"w1": 0, "w2": 0})
    gate = PullGate(runtime, model)
    gate.view = FakeView(model, scores)
    return gate


def _pull(gate: PullGate, child: str, held: int) -> bool:
    not_modified = gate.not_modified_for(child, held)
    gate.answered(child, not_modified)
    return not_modified


def test_only_an_accuracy_child_that_holds_what_was_sent_gets_not_modified():
    gate = _gate({0: 0.5, 1: 0.52, 2: 0.6})
    assert not _pull(gate, "w1", 0), "nothing sent yet: the model"
    gate.model.version = 1
    assert _pull(gate, "w1", 0), "0.02 < 0.05"
    assert not _pull(gate, "w1", 5), "a child holding another model (restarted, lost reply) gets it"
    assert not _pull(gate, "w2", 0) and not _pull(gate, "w2", 0), "simple children always get the model"
    gate.model.version = 2
    assert not _pull(gate, "w1", 1), "0.6 - 0.52 is past the threshold"
    assert gate.summary() == {"pulls_not_modified": 1}


def test_the_evaluation_is_cached_per_model_version():
    gate = _gate({0: 0.5})
    for _ in range(5):
        _pull(gate, "w1", 0)
    assert gate.view.calls == 1


def test_a_model_that_brings_a_last_window_is_always_sent():
    """The final synchronisation: the complete model reaches the child even if it scores the same."""
    gate = _gate({0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5}, threshold=1.0)
    assert not _pull(gate, "w1", 0)
    gate.model.version, gate.model.coverage = 1, {"w1": LIMIT - 1, "w2": 1}
    assert not _pull(gate, "w1", 0), "w1's last window is new to the child"
    gate.model.version, gate.model.coverage = 2, {"w1": LIMIT - 1, "w2": 2}
    assert _pull(gate, "w1", 1), "no new last window: accuracy decides"
    gate.model.version, gate.model.coverage = 3, {"w1": LIMIT - 1, "w2": LIMIT - 1}
    assert not _pull(gate, "w1", 1) and _pull(gate, "w1", 3), "the complete model, then nothing new"


def test_max_wait_pulls_in_a_row_never_all_go_without_the_model():
    gate = _gate({0: 0.5}, threshold=1.0, max_wait=3)
    replies = [_pull(gate, "w1", 0) for _ in range(7)]
    assert replies == [False, True, True, False, True, True, False]


def test_no_rule_no_field_in_done_and_only_accuracy_names_its_version():
    assert PullGate(SimpleNamespace(spec=SimpleNamespace(windows=SimpleNamespace(limit=2)),
                                    node=SimpleNamespace(children=[])), SimpleNamespace()).summary() == {}
    assert gets_not_modified("accuracy") and not gets_not_modified("simple")


def test_a_not_modified_reply_is_model_pull_traffic_and_answers_a_pull():
    from edgetestbed.analysis.linkbytes import MESSAGE_CLASSES
    from edgetestbed.analysis.netcost import REPLIES as NETCOST_REPLIES
    assert MESSAGE_CLASSES[NOT_MODIFIED] == MESSAGE_CLASSES[MODEL] == "model pull"
    assert NOT_MODIFIED in NETCOST_REPLIES[PULL]
