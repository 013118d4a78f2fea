"""Coded pushes between real node processes on loopback: what they cost, that the root
learns and refuses bad ones, and a researcher's own codec (docs/architecture.md's example)
run and validated."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetestbed.analysis.metrics import compute_metrics
from edgetestbed.applications import create_application
from edgetestbed.codecs import create_codec, decode_chain, encode_chain
from edgetestbed.process import protocol
from edgetestbed.process.protocol import Message, Schema
from edgetestbed.spec.load import load_spec_text
import test_nodes
from test_codecs import SHAPES, TENSORS, topk, with_codec
from test_nodes import LIMIT, assert_all_done, run_spec, send_to_root
from test_protocol import fuzzed_coded, valid_coded
from test_spec import assert_problem

loopback = test_nodes.loopback   # the fixture: runs on the loopback backend, stopped at the end

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"
FUZZED = 3000   # fuzzed coded pushes sent to a running root (the protocol's own fuzz test decodes 4,000)


def documented_codec() -> str:
    """The worked example of docs/architecture.md's "Add a codec in one file"."""
    section = ARCHITECTURE.read_text().split("### Add a codec in one file", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def user_codec(tmp_path, monkeypatch):
    """``usercodecs:Clip`` importable here and by the processes this test starts."""
    (tmp_path / "usercodecs.py").write_text(documented_codec())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    yield "usercodecs:Clip"
    sys.modules.pop("usercodecs", None)


def _pushes(run, worker: str) -> list[dict]:
    return [e["payload"] for e in run.events(worker, "CONNECTION")
            if e["payload"]["direction"] == "sent" and e["payload"]["kind"] == "PUSH"]


def _bad_coded_pushes() -> list:
    """Coded PUSHes from w1 its root must refuse: each reason, and the frames."""
    weights = create_application("mnist_mlp", seed=1).get_weights()
    good = protocol.encode(Message(protocol.PUSH, "w1", seq=1, arrays=tuple(weights), codec=(topk(0.1),)))
    header = json.loads(bytes(good[0]))
    far = np.array(good[1])
    far[-1] = 10 ** 6

    def chain(*codecs: dict) -> bytes:
        return json.dumps({**header, "codec": list(codecs)}).encode()

    return [("unknown codec 'gzip'", [chain({"type": "gzip"}), *good[1:]]),
            ("unknown codec 'usercodecs:Clip'", [chain({"type": "usercodecs:Clip", "limit": 1.0}), *good[1:]]),
            ("codec 0 (topk).fraction: 0 is too small", [chain({"type": "topk", "fraction": 0}), *good[1:]]),
            ("PUSH coded by topk: tensor 0's indices run from", [good[0], far, *good[2:]]),
            ("PUSH coded by quantize: 16 wire arrays, expected 9", [chain({"type": "quantize"}), *good[1:]])]


def _fuzzed_coded_pushes(count: int) -> list:
    """Of ``count`` fuzzed coded PUSHes from w1 (:func:`test_protocol.fuzzed_coded`), those the
    root's schema refuses (the few that decode would be queued as w1's updates)."""
    weights = create_application("mnist_mlp", seed=1).get_weights()
    schema = Schema.for_model(weights, protocol.REQUESTS)
    valid = valid_coded(lambda codec: Message(protocol.PUSH, "w1", seq=1, samples=1, arrays=tuple(weights),
                                              codec=codec))
    refused = []
    for frames in fuzzed_coded(valid, count):
        try:
            protocol.decode(frames, schema)
        except protocol.MalformedMessage:
            refused.append(frames)
    return refused


def _coded_run(loopback, first: str, second: str):
    """A run of a root and two workers, w1 coding by ``first``, w2 by ``second``, started."""
    nodes = ("  - {id: root}\n"
             f"  - {{id: w1, parent: root, sensors: [0], codec: {first}}}\n"
             f"  - {{id: w2, parent: root, sensors: [1], codec: {second}}}\n")
    run = loopback(run_spec(nodes))
    run.start_all()
    return run


def _coded_pushes(run, codecs: dict) -> tuple[int, dict]:
    """The model's bytes, and each worker's PUSHes, checked: at least one a window, each
    coded by the worker's codec and logging the model's bytes as ``raw_bytes``."""
    model_bytes = sum(w.nbytes for w in create_application("mnist_mlp", seed=1).get_weights())
    pushes = {worker: _pushes(run, worker) for worker in codecs}
    for worker, codec in codecs.items():
        assert len(pushes[worker]) >= LIMIT
        assert all(p["codec"] == [codec] and p["raw_bytes"] == model_bytes for p in pushes[worker])
    return model_bytes, pushes


def test_coded_pushes_cost_a_fraction_of_the_bytes_and_the_root_still_learns(loopback):
    run = _coded_run(loopback, "{type: quantize, bits: 8}", "{type: topk, fraction: 0.1}")
    run.at(1.5)
    bad = _bad_coded_pushes()
    assert send_to_root(run, [frames for _, frames in bad]).type == protocol.MODEL   # still serving
    assert_all_done(run, run.wait(LIMIT + 20))
    reasons = [e["payload"]["reason"] for e in run.events("root", "MALFORMED")]
    assert len(reasons) == len(bad) and all(words in reason for (words, _), reason in zip(bad, reasons)), reasons
    model_bytes, pushes = _coded_pushes(run, {"w1": "quantize", "w2": "topk"})
    ratios = {}
    for worker, most in (("w1", 0.26), ("w2", 0.21)):
        ratios[worker] = max(p["payload_bytes"] for p in pushes[worker]) / model_bytes
        assert ratios[worker] <= most, ratios
    print("payload / model bytes:", ratios)
    received = [e["payload"] for e in run.events("root", "CONNECTION")
                if e["payload"]["direction"] == "received" and e["payload"]["kind"] == "PUSH"]
    assert {p["peer"] for p in received} == {"w1", "w2"} and all(p["raw_bytes"] == model_bytes for p in received)
    merges = [e["payload"] for e in run.events("root", "STATISTIC")]
    # Two workers, four windows: uncoded, the root goes from 0.10 to about 0.23; coded, 0.22.
    assert merges[-1]["accuracy"] > merges[0]["before"]["accuracy"] + 0.05
    assert all("codec" not in p for p in _pushes(run, "root") + [e["payload"] for e in run.events("root", "CONNECTION")
                                                                if e["payload"]["kind"] == "MODEL"])
    _assert_coding_measured(run, pushes)


def _assert_coding_measured(run, pushes: dict) -> None:
    """What coding cost each node (its DONE event) and what it saved (metrics.json's
    ``compression``) agree with the pushes the workers logged."""
    done = {ident: run.events(ident, "DONE")[-1]["payload"] for ident in ("root", "w1", "w2")}
    for worker in ("w1", "w2"):
        assert done[worker]["codec_encodes"] >= len(pushes[worker])   # resent pushes are encoded again
        assert 0 < done[worker]["codec_encode_cpu"] < 1 and done[worker]["codec_encode_peak"] > 0
        assert 0 < done[worker]["exchange_time"] < LIMIT * run.spec.windows.interval
    received = [e for e in run.events("root", "CONNECTION")
                if e["payload"]["direction"] == "received" and e["payload"]["kind"] == "PUSH"]
    assert done["root"]["codec_decodes"] >= len(received) and "codec_encodes" not in done["root"]
    section = compute_metrics(run.dir)["compression"]
    links = {item["child"]: item for item in section["links"]}
    for worker, codec in (("w1", ["quantize"]), ("w2", ["topk"])):
        push = links[worker]["push"]
        assert links[worker]["codec"] == codec and push["coded_messages"] == push["messages"] == len(pushes[worker])
        assert push["coded_bytes"] == sum(p["payload_bytes"] for p in pushes[worker])
        assert push["raw_bytes"] == sum(p["raw_bytes"] for p in pushes[worker])
        assert links[worker]["pull"]["coded_messages"] == 0 and links[worker]["pull"]["ratio"] == 1
        node = section["nodes"][worker]
        assert node["comm_to_comp"] == node["exchange_time"] / node["compute_time"] > 0
    assert section["push_ratio"] < 0.26 and section["codec_cpu_s"] > 0


def test_thousands_of_fuzzed_coded_pushes_are_each_logged_and_dropped_by_a_serving_root(loopback):
    fuzzed = _fuzzed_coded_pushes(FUZZED)   # before the run starts: making them takes seconds
    limit = 8   # windows of 1 s: the root decodes and logs the fuzzed pushes in about 3 s
    run = loopback(run_spec("  - {id: root}\n  - {id: w1, parent: root, sensors: [0], codec: {type: quantize}}\n",
                            limit=limit))
    run.start_all()
    run.at(1.0)
    assert send_to_root(run, fuzzed).type == protocol.MODEL   # still serving after all of them
    assert_all_done(run, run.wait(limit + 20))
    assert len(run.events("root", "MALFORMED")) == len(fuzzed) >= FUZZED / 2
    merged = {peer for e in run.events("root", "STATISTIC") for peer in e["payload"]["children"]}
    assert merged == {"w1"} and run.events("root", "DONE")[-1]["payload"]["complete"]


def test_threshold_and_two_step_pushes_run_in_real_node_processes(loopback):
    run = _coded_run(loopback, "{type: threshold, wt: 0.01}", "{type: two_step, wt: 0.01}")
    assert_all_done(run, run.wait(LIMIT + 20))
    assert not run.events("root", "MALFORMED")
    model_bytes, pushes = _coded_pushes(run, {"w1": "threshold", "w2": "two_step"})
    print("payload / model bytes, push by push:",
          {worker: [round(p["payload_bytes"] / model_bytes, 3) for p in sent] for worker, sent in pushes.items()})
    received = {e["payload"]["peer"] for e in run.events("root", "CONNECTION")
                if e["payload"]["direction"] == "received" and e["payload"]["kind"] == "PUSH"}
    assert received == {"w1", "w2"}


def test_topk_warmup_pushes_shrink_then_level_and_the_root_decodes_every_one(loopback):
    topk1 = "{type: topk, fraction: 0.01, min_entries: 1000"
    run = _coded_run(loopback, topk1 + ", warmup: 3}", topk1 + "}")
    assert_all_done(run, run.wait(LIMIT + 20))
    assert not run.events("root", "MALFORMED")
    _, pushes = _coded_pushes(run, {"w1": "topk", "w2": "topk"})
    warm, plain = ([p["payload_bytes"] for p in pushes[worker]] for worker in ("w1", "w2"))
    print("payload bytes, push by push:", {"w1": warm, "w2": plain})
    # 25 %, 6.25 %, 1.5625 % of the 784×20 layer, then 1 % like w2 (the small tensors go whole)
    assert warm[0] > warm[1] > warm[2] > warm[3] == plain[0] and set(warm[3:]) == set(plain) == {plain[0]}


def test_a_users_codec_from_module_class_runs_in_real_node_processes(loopback, user_codec):
    chain = f"[{{type: '{user_codec}', limit: 1.0}}, {{type: quantize, bits: 8}}]"
    nodes = ("  - {id: root}\n"
             f"  - {{id: w1, parent: root, sensors: [0], codec: {chain}}}\n"
             "  - {id: w2, parent: root, sensors: [1]}\n")
    run = loopback(run_spec(nodes))
    run.start_all()
    assert_all_done(run, run.wait(LIMIT + 20))
    received = {}
    for e in run.events("root", "CONNECTION"):
        if e["payload"]["direction"] == "received" and e["payload"]["kind"] == "PUSH":
            received.setdefault(e["payload"]["peer"], []).append(e["payload"])
    assert len(received["w1"]) >= LIMIT and all(p["codec"] == [user_codec, "quantize"] for p in received["w1"])
    assert all("codec" not in p for p in received["w2"])   # uncoded, as before
    assert not run.events("root", "MALFORMED")


def test_the_documented_codec_is_checked_by_validate(tmp_path, user_codec):
    assert_problem(tmp_path, with_codec(f"{{type: '{user_codec}', limit: 0}}"), 9, "nodes[1].codec.limit",
                   "0 is too small; expected a number above 0")
    assert_problem(tmp_path, with_codec(f"[{{type: quantize}}, {{type: '{user_codec}', limit: 1}}]"), 9,
                   "nodes[1].codec[1].type", f"{user_codec} cannot follow quantize")
    spec = load_spec_text(with_codec(f"[{{type: '{user_codec}', limit: 0.5}}, {{type: topk, fraction: 0.5}}]"))
    codecs = [create_codec(c.type, c.params) for c in spec.node("w1").codec]
    tensors = [TENSORS[1] - 3]
    decoded = decode_chain(codecs, encode_chain(codecs, tensors), SHAPES[1:2])[0]
    assert np.abs(decoded).max() <= 0.5 and np.count_nonzero(decoded) == 10
