"""Aggregations (``average``, ``buffered``, ``async``): their decisions on hand-made queues, the
server's queue and the staleness it measures, the merge each asks for on hand-made updates,
their parameters checked with file, line and field, and the staleness metrics."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from edgetestbed.aggregation import AGGREGATIONS, Queue, create_aggregation
from edgetestbed.aggregation.fedasync import staleness_weight
from edgetestbed.analysis.staleness import distribution
from edgetestbed.applications import create_application
from edgetestbed.nodes.model import ModelState, Update
from edgetestbed.nodes.pending import PendingUpdates
from edgetestbed.spec.load import load_spec_text
from test_spec import HEAD, TREE, assert_problem

LIVE = frozenset({"w1", "w2", "w3"})
INTERVAL = 2.0


def _aggregation(kind: str, params: str = ""):
    """A ``kind`` aggregation built as a server builds it, from a spec's root."""
    spec = load_spec_text(TREE.replace("  - id: root\n", f"  - id: root\n    aggregation: {{type: {kind}{params}}}\n"))
    return create_aggregation(spec.root.aggregation.type, spec.root.aggregation.params)


def _queue(*children: str, waited: float = 0.0) -> Queue:
    return Queue(frozenset(children), len(children), waited)


def _update(value: float, samples: int, window: int, worker: str = "w1") -> Update:
    return Update([np.full(3, value, np.float32), np.full((2, 2), value, np.float32)], samples, {worker: window})


# --- when each merges ------------------------------------------------------------------------

def test_average_waits_for_every_live_child_or_half_a_window():
    average = _aggregation("average")
    assert not average.due(Queue(), LIVE, INTERVAL)
    assert not average.due(_queue("w1", "w2", waited=0.9), LIVE, INTERVAL)
    assert average.due(_queue("w1", "w2", waited=1.0), LIVE, INTERVAL), "half a window: merge what there is"
    assert average.due(_queue("w1", "w2", "w3"), LIVE, INTERVAL)
    assert average.due(_queue("w1", "w2"), frozenset({"w1", "w2"}), INTERVAL), "w3 is done: not waited for"
    assert average.taking(_queue("w1", "w2")) == 2 and average.weights([10, 20], [0, 3]) is None, \
        "all that is queued, sample-weighted"


def test_buffered_merges_at_k_arrivals_whoever_sent_them():
    buffered = _aggregation("buffered", ", k: 2")
    assert not buffered.due(_queue("w1"), LIVE, INTERVAL)
    assert buffered.due(Queue(frozenset({"w1"}), 2, 0.0), LIVE, INTERVAL), "one child's two pushes count twice"
    assert buffered.due(_queue("w1", "w3"), LIVE, INTERVAL)
    assert buffered.due(_queue("w1", waited=1.0), LIVE, INTERVAL), "the timeout defaults to half a window"
    assert not buffered.due(Queue(), frozenset(), INTERVAL)
    assert buffered.taking(_queue("w1", "w2", "w3")) == 2, "the third waits for the next merge"
    assert buffered.taking(_queue("w1", waited=1.0)) == 1 and buffered.weights([1, 2], [0, 0]) is None


def test_buffered_with_a_timeout_waits_that_long_for_k():
    buffered = _aggregation("buffered", ", k: 3, timeout: 5s")
    assert not buffered.due(Queue(frozenset({"w1", "w2"}), 2, 4.9), LIVE, INTERVAL)
    assert buffered.due(Queue(frozenset({"w1", "w2"}), 2, 5.0), LIVE, INTERVAL)
    assert buffered.due(Queue(frozenset({"w1", "w2"}), 3, 0.0), LIVE, INTERVAL)


def test_async_merges_each_update_scaled_by_its_staleness():
    fedasync = _aggregation("async", ", alpha: 0.5, a: 1")
    assert fedasync.taking(_queue("w1", "w2")) == 1
    assert fedasync.due(_queue("w2"), LIVE, INTERVAL) and not fedasync.due(Queue(), LIVE, INTERVAL)
    assert fedasync.weights([10], [0]) == [0.5]
    assert fedasync.weights([10], [3]) == [pytest.approx(0.5 / 4)]
    assert staleness_weight(0.6, 0.5, 3) == pytest.approx(0.6 / 2) and staleness_weight(0.6, 0, 9) == 0.6
    defaults = AGGREGATIONS.get("async").Params.model_validate({})
    assert (defaults.alpha, defaults.a) == (0.6, 0.5)


# --- the server's queue and the staleness it measures ----------------------------------------

def test_the_queue_adds_up_a_childs_updates_and_measures_each_pushs_staleness():
    pending = PendingUpdates()
    pending.add("w1", _update(1.0, 10, 0), base_version=3, now=100.0)
    pending.add("w2", _update(2.0, 30, 0, "w2"), base_version=5, now=100.5)
    pending.add("w1", _update(3.0, 10, 1), base_version=4, now=101.0)
    assert pending.queue(now=102.0) == Queue(frozenset({"w1", "w2"}), 3, 2.0)
    batch = pending.take(version=5)
    assert list(batch.updates) == ["w1", "w2"] and not pending and pending.queue() == Queue()
    assert batch.staleness == {"w1": [2, 1], "w2": [0]} and batch.stalest() == [2, 0]
    assert batch.updates["w1"].samples == 20 and batch.updates["w1"].coverage == {"w1": 1}
    assert np.allclose(batch.updates["w1"].delta[0], 4.0)


def test_a_count_takes_the_oldest_arrivals_against_the_version_it_meets():
    pending = PendingUpdates()
    pending.add("w1", _update(1.0, 10, 0), base_version=2)
    pending.add("w2", _update(1.0, 10, 0, "w2"), base_version=2)
    first = pending.take(version=2, count=1)
    second = pending.take(version=3, count=1)
    assert (first.staleness, second.staleness) == ({"w1": [0]}, {"w2": [1]}), "the first merge aged the second"
    pending.add("w1", _update(1.0, 10, 1), base_version=9)
    assert pending.take(version=0).staleness == {"w1": [0]}, "a restarted parent's count: never below 0"


def test_a_merge_with_weights_adds_each_update_scaled():
    model = ModelState(create_application("mnist_mlp", {"hidden": [4]}, seed=1))
    before = model.app.get_weights()
    ones = [np.ones_like(w) for w in before]
    model.merge([Update([4 * o for o in ones], 10, {"w1": 0}), Update(ones, 30, {"w2": 0})], weights=[0.5, 0.25])
    assert all(np.allclose(w - b, 2.25) for w, b in zip(model.app.get_weights(), before))
    assert model.version == 1 and model.coverage == {"w1": 0, "w2": 0} and model.samples == 40


def test_staleness_distribution():
    assert distribution([0, 2, 0, 1, 2, 2]) == {"count": 6, "mean": pytest.approx(7 / 6), "max": 2,
                                                "histogram": {"0": 2, "1": 1, "2": 3}}
    assert distribution([]) == {"count": 0, "mean": None, "max": None, "histogram": {}}


# --- the spec ----------------------------------------------------------------------------------

THREE_LEVELS = HEAD + """\
defaults: {aggregation: {type: buffered, k: 2}}
nodes:
  - id: root
    aggregation: {type: async, alpha: 0.3}
  - {id: ps, parent: root}
  - {id: w1, parent: ps, sensors: [0]}
"""


def test_defaults_apply_to_servers_a_node_overrides_and_workers_keep_average():
    spec = load_spec_text(THREE_LEVELS)
    assert (spec.root.aggregation.type, dict(spec.root.aggregation.params)) == ("async", {"alpha": 0.3, "a": 0.5})
    assert (spec.node("ps").aggregation.type, dict(spec.node("ps").aggregation.params)) == \
        ("buffered", {"k": 2, "timeout": None})
    assert spec.node("w1").aggregation.type == "average"
    assert load_spec_text(yaml.safe_dump(spec.to_dict())) == spec
    assert "aggregation" not in str(load_spec_text(TREE).to_dict()), "a spec without one reads as before"


def _with_root_aggregation(text: str) -> str:
    """TREE with ``aggregation: TEXT`` on the root, at line 6."""
    return TREE.replace("  - id: root\n", f"  - id: root\n    aggregation: {text}\n")


@pytest.mark.parametrize("text, field, words", [
    ("{type: avrage}", "nodes[0].aggregation",
     ["'avrage' is not a known type (did you mean 'average'?)", "expected one of average, buffered, async, sync"]),
    ("{k: 2}", "nodes[0].aggregation", ["'type' is missing", "types: average, buffered, async, sync"]),
    ("{type: buffered}", "nodes[0].aggregation.k", ["missing", "a number of updates like 2"]),
    ("{type: buffered, k: 0}", "nodes[0].aggregation.k", ["0 is too small", "at least 1"]),
    ("{type: buffered, k: 2, timeout: 0s}", "nodes[0].aggregation.timeout", ["too small"]),
    ("{type: async, alpha: 0}", "nodes[0].aggregation.alpha", ["0 is too small", "more than 0 and at most 1"]),
    ("{type: async, alpha: 1.5}", "nodes[0].aggregation.alpha", ["1.5 is too large"]),
    ("{type: async, a: -1}", "nodes[0].aggregation.a", ["-1 is too small", "at least 0"]),
    ("{type: average, k: 2}", "nodes[0].aggregation.k", ["unknown key 'k'"]),
])
def test_bad_aggregations_are_reported_at_file_line_and_field(tmp_path, text, field, words):
    assert_problem(tmp_path, _with_root_aggregation(text), 6, field, *words)


def test_bad_defaults_and_an_aggregation_on_a_worker_are_reported(tmp_path):
    assert_problem(tmp_path, THREE_LEVELS.replace("k: 2", "k: 0"), 4, "defaults.aggregation.k", "0 is too small")
    worker = THREE_LEVELS.replace("sensors: [0]}", "sensors: [0], aggregation: {type: average}}")
    assert_problem(tmp_path, worker, 9, "nodes[2].aggregation", "worker 'w1' merges no one's updates",
                   "expected aggregation only on the root and parameter servers")


# --- sync: rounds ------------------------------------------------------------------------------

def test_sync_waits_for_every_live_child_up_to_its_timeout_and_names_the_missing():
    sync = _aggregation("sync")
    assert sync.rounds and sync.patience(INTERVAL) == 2 * INTERVAL
    assert not sync.due(_queue("w1", "w2", waited=3.9), LIVE, INTERVAL), "no half-window fallback"
    assert sync.due(_queue("w1", "w2", "w3"), LIVE, INTERVAL)
    assert sync.due(_queue("w1", "w2", waited=4.0), LIVE, INTERVAL)
    assert sync.describe(_queue("w1", "w2"), LIVE) == {"missing": ["w3"]}
    assert _aggregation("sync", ", timeout: 1500ms").patience(INTERVAL) == 1.5
    assert not _aggregation("average").rounds and _aggregation("average").describe(_queue("w1"), LIVE) == {}


SYNC_ROOT = TREE.replace("  - id: root\n", "  - id: root\n    aggregation: {type: sync}\n")


@pytest.mark.parametrize("text, line, field", [
    (SYNC_ROOT + "    policy: {type: time, push: 2s}\n", 10, "nodes[1].policy.type"),
    (SYNC_ROOT.replace("nodes:\n", "defaults: {policy: {type: significance, threshold: 0.1}}\nnodes:\n"), 4,
     "defaults.policy.type"),
])
def test_a_sync_server_refuses_children_that_cannot_keep_rounds(tmp_path, text, line, field):
    assert_problem(tmp_path, text, line, field, "cannot keep the rounds of 'root' (aggregation sync)",
                   "expected a policy that pulls before and pushes after the same steps: simple, window")


def test_a_sync_server_takes_simple_and_window_children():
    assert load_spec_text(SYNC_ROOT + "    policy: {type: window, every: 2}\n").root.aggregation.type == "sync"
