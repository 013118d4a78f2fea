"""Coded pulls: ``pull_codec:`` in the spec (stateless codecs only), the chain a parent codes a
child's pulled models by, and a run of real node processes on loopback whose pulled models
are coded and which still learns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from edgetestbed.applications import create_application
from edgetestbed.codecs import CODECS, Codec
from edgetestbed.errors import UserError
from edgetestbed.nodes.upstream import CODEC_SEED_WORD, accepting, build_chain, pull_chain
from edgetestbed.process import protocol
from edgetestbed.process.protocol import MODEL, REPLIES, Message, Schema
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.model import CodecSpec
import test_coded_runs
import test_nodes
from test_nodes import LIMIT, assert_all_done, run_spec
from test_spec import TREE, assert_problem

loopback = test_nodes.loopback   # the fixture: runs on the loopback backend, stopped at the end
user_codec = test_coded_runs.user_codec   # the fixture: docs/architecture.md's codec, importable

Q8 = {"type": "quantize", "bits": 8, "stochastic": False}
STATEFUL = "keeps state from message to message, kept once a message is acknowledged, and a pulled model never is"


def with_pull_codec(chain: str, defaults: str = "") -> str:
    """TREE with ``pull_codec`` on worker w1, at line 9 (and ``defaults`` at line 10)."""
    return TREE + f"    pull_codec: {chain}\n" + (f"defaults: {{pull_codec: {defaults}}}\n" if defaults else "")


# --- which codecs may code pulls ---------------------------------------------------------------

def test_only_codecs_that_keep_no_state_between_messages_are_stateless():
    assert {cls.name: cls.stateless for cls in CODECS.plugins()} == \
        {"quantize": True, "topk": False, "threshold": False, "two_step": False, "sign": False}
    assert Codec.stateless is False   # a researcher's codec opts in


# --- the spec ---------------------------------------------------------------------------------

def test_pull_codecs_resolve_from_defaults_unless_a_node_gives_its_own():
    text = (TREE + "  - {id: w2, parent: root, sensors: [1], pull_codec: {type: quantize, bits: 16}}\n"
            "  - {id: w3, parent: root, sensors: [2], pull_codec: []}\n"
            "defaults: {pull_codec: {type: quantize}, codec: {type: topk, fraction: 0.1}}\n")
    spec = load_spec_text(text)
    assert spec.node("w1").pull_codec == (CodecSpec("quantize", {"bits": 8, "stochastic": False}),)
    assert spec.node("w2").pull_codec == (CodecSpec("quantize", {"bits": 16, "stochastic": False}),)
    assert spec.node("w3").pull_codec == () and spec.node("w3").codec[0].type == "topk"
    data = spec.to_dict()
    assert data["nodes"][2]["pull_codec"] == [{"type": "quantize", "bits": 16, "stochastic": False}]
    assert "pull_codec" not in data["nodes"][3]   # no pull codec reads as it always did
    assert load_spec_text(yaml.safe_dump(data)) == spec
    assert load_spec_text(TREE).node("w1").pull_codec == () and "pull_codec" not in load_spec_text(TREE).to_dict()


@pytest.mark.parametrize("text, line, field, words", [
    (with_pull_codec("{type: topk, fraction: 0.1}"), 9, "nodes[1].pull_codec.type",
     [f"topk {STATEFUL}", "expected a codec that keeps none (stateless): quantize, or a module:Class"]),
    (with_pull_codec("{type: threshold, wt: 0.01}"), 9, "nodes[1].pull_codec.type", [f"threshold {STATEFUL}"]),
    (with_pull_codec("{type: two_step, wt: 0.01}"), 9, "nodes[1].pull_codec.type", [f"two_step {STATEFUL}"]),
    (with_pull_codec("[{type: quantize}, {type: topk, fraction: 0.5}]"), 9, "nodes[1].pull_codec[1].type",
     [f"topk {STATEFUL}", "topk cannot follow quantize"]),
    (with_pull_codec("[]", "{type: topk, fraction: 0.5}"), 10, "defaults.pull_codec.type", [f"topk {STATEFUL}"]),
    (with_pull_codec("{type: quantize, bits: 7}"), 9, "nodes[1].pull_codec.bits", ["7 is not a number of bits"]),
    (with_pull_codec("{type: quantise}"), 9, "nodes[1].pull_codec", ["did you mean 'quantize'?"]),
    (with_pull_codec("quantize"), 9, "nodes[1].pull_codec", ["expected a codec like {type: quantize, bits: 8}"]),
])
def test_a_bad_pull_codec_is_reported_at_its_line_and_field(tmp_path, text, line, field, words):
    assert_problem(tmp_path, text, line, field, *words)


def test_a_users_codec_codes_pulls_only_if_it_says_it_is_stateless(tmp_path, user_codec, monkeypatch):
    chain = f"[{{type: '{user_codec}', limit: 1.0}}, {{type: quantize}}]"
    assert load_spec_text(with_pull_codec(chain)).node("w1").pull_codec[0].type == user_codec
    monkeypatch.setattr(CODECS.get(user_codec), "stateless", False)
    assert_problem(tmp_path, with_pull_codec(chain), 9, "nodes[1].pull_codec[0].type", f"{user_codec} {STATEFUL}")


# --- the parent codes a child's pulled models, the child decodes them --------------------------

def _tree() -> object:
    return load_spec_text(TREE + "    pull_codec: {type: quantize, bits: 8}\n"
                          "  - {id: w2, parent: root, sensors: [1], codec: {type: quantize, stochastic: true},"
                          " pull_codec: {type: quantize, stochastic: true}}\n")


def test_a_parent_codes_the_model_by_the_childs_pull_codec_and_the_child_decodes_it():
    spec, weights = _tree(), create_application("mnist_mlp", seed=1).get_weights()
    w1 = spec.node("w1")
    frames = protocol.encode(Message(MODEL, "root", seq=3, arrays=tuple(weights), codec=pull_chain(spec, w1)))
    raw = sum(w.nbytes for w in weights)
    assert 0.25 <= sum(protocol.frame_bytes(f) for f in frames[1:]) / raw < 0.26
    got = protocol.decode(frames, Schema.for_model(weights, REPLIES, accepting(w1.pull_codec)))
    assert [c.type for c in got.codec] == ["quantize"] and got.seq == 3
    for weight, decoded in zip(weights, got.arrays):
        step = (weight.max() - weight.min()) / 255
        assert decoded.dtype == np.float32 and np.abs(decoded - weight).max() <= step / 2 + 1e-6
    assert pull_chain(spec, spec.node("w1"))[0] is not pull_chain(spec, spec.node("w1"))[0]   # its own state


def test_pull_seeds_differ_from_the_childs_push_seeds():
    spec = _tree()
    w2 = spec.node("w2")
    tensor = [np.linspace(0, 1, 1000, dtype=np.float32) + np.float32(0.3 / 255)]
    pulled = pull_chain(spec, w2)[0].encode(tensor)
    pushed = build_chain(spec, w2, w2.codec, CODEC_SEED_WORD)[0].encode(tensor)
    assert not np.array_equal(pulled[0], pushed[0])
    assert np.array_equal(pull_chain(spec, w2)[0].encode(tensor)[0], pulled[0])   # seeded: the same each run


def test_a_stateful_pull_codec_is_refused_by_the_parent_too():
    """``validate`` refuses it; a module:Class it could not import is refused when the parent starts."""
    spec = _tree()
    w1 = dataclasses.replace(spec.node("w1"), pull_codec=(CodecSpec("topk", {"fraction": 0.5, "feedback": True}),))
    spec = dataclasses.replace(spec, nodes=tuple(w1 if node.id == "w1" else node for node in spec.nodes))
    with pytest.raises(UserError, match=f"w1's pull_codec: topk {STATEFUL}"):
        pull_chain(spec, w1)


# --- real node processes ----------------------------------------------------------------------

def _events(run, ident: str, direction: str, kind: str) -> list[dict]:
    return [e["payload"] for e in run.events(ident, "CONNECTION")
            if e["payload"]["direction"] == direction and e["payload"]["kind"] == kind]


def test_pulled_models_are_coded_between_real_node_processes_and_the_run_still_learns(loopback):
    nodes = ("  - {id: root}\n"
             "  - {id: ps, parent: root, pull_codec: {type: quantize, bits: 16, stochastic: true}}\n"
             "  - {id: w1, parent: ps, sensors: [0], pull_codec: {type: quantize, bits: 8}}\n"
             "  - {id: w2, parent: ps, sensors: [1]}\n")
    run = loopback(run_spec(nodes))
    run.start_all()
    assert_all_done(run, run.wait(LIMIT + 25))
    assert not any(run.events(ident, "MALFORMED") for ident in ("root", "ps", "w1", "w2"))
    model_bytes = sum(w.nbytes for w in create_application("mnist_mlp", seed=1).get_weights())
    for child, parent, codec, share in (("w1", "ps", "quantize", 0.26), ("ps", "root", "quantize", 0.51)):
        models = _events(run, child, "received", "MODEL")
        assert len(models) >= LIMIT and all(m["codec"] == [codec] and m["raw_bytes"] == model_bytes for m in models)
        assert all(share - 0.01 <= m["payload_bytes"] / model_bytes <= share for m in models), \
            [m["payload_bytes"] / model_bytes for m in models]
        sent = [m for m in _events(run, parent, "sent", "MODEL") if m["peer"] == child]
        assert len(sent) >= len(models) and all(m["codec"] == [codec] for m in sent)
    uncoded = _events(run, "w2", "received", "MODEL")   # byte for byte as before
    assert uncoded and all("codec" not in m and m["payload_bytes"] == model_bytes for m in uncoded)
    assert all("codec" not in p for ident in ("w1", "w2", "ps") for p in _events(run, ident, "sent", "PUSH"))
    start = next(e["payload"] for e in run.events("w1") if e["type"] == "START")
    assert start["pull_codec"] == [Q8]
    merges = [e["payload"] for e in run.events("root", "STATISTIC")]
    print("root accuracy:", merges[0]["before"]["accuracy"], "->", merges[-1]["accuracy"])
    assert merges[-1]["accuracy"] > merges[0]["before"]["accuracy"] + 0.05
    assert all(run.events(worker, "DONE")[0]["payload"]["complete"] for worker in ("w1", "w2"))
