"""Learning-based triggers (``significance``, ``relevance``, ``accuracy``): their decisions on
hand-made arrays through a fake view of the model, a dropped update's bookkeeping, and their
parameters checked with file, line and field."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, List, Optional

import numpy as np
import pytest

from edgetestbed.applications import create_application
from edgetestbed.nodes.model import ModelState
from edgetestbed.nodes.view import NodeModelView
from edgetestbed.policies import Event, Moment, create_policy
from edgetestbed.policies.relevance import sign_agreement
from edgetestbed.policies.significance import relative_magnitude
from edgetestbed.spec.load import load_spec_text
from test_spec import TREE, assert_problem


class FakeView:
    """A model view whose answers the test sets; it records what the policy logs."""

    def __init__(self, reference: List[np.ndarray]) -> None:
        self.ref = reference
        self.update = [np.zeros_like(r) for r in reference]
        self.samples = 0
        self.global_update: Optional[List[np.ndarray]] = None
        self.final = False
        self.accuracy = 0.0
        self.sizes: List[int] = []
        self.events: List[tuple] = []

    def pending_update(self) -> List[np.ndarray]:
        return self.update

    def pending_samples(self) -> int:
        return self.samples

    def reference(self) -> List[np.ndarray]:
        return self.ref

    def last_global_update(self) -> Optional[List[np.ndarray]]:
        return self.global_update

    def final_window_pending(self) -> bool:
        return self.final

    def validation_accuracy(self, size: int) -> float:
        self.sizes.append(size)
        return self.accuracy

    def log(self, type_: str, **payload: Any) -> None:
        self.events.append((type_, payload))

    def types(self) -> List[str]:
        return [type_ for type_, _ in self.events]


def _trigger(kind: str, params: dict, reference=None):
    """A ``kind`` trigger built as a node builds it, attached to a fake view; (policy, view)."""
    spec_params = dict(load_spec_text(TREE + f"    policy: {{type: {kind}, {_yaml(params)}}}\n")
                       .node("w1").policy.params)
    policy = create_policy(kind, spec_params, trains=True)
    view = FakeView(reference or [np.full(4, 1.0, np.float32), np.full((2, 2), 1.0, np.float32)])
    policy.attach(view)
    return policy, view


def _yaml(params: dict) -> str:
    return ", ".join(f"{key}: {value}" for key, value in params.items())


def _end(policy, step: int) -> bool:
    """Whether ``policy`` pushes at the end of ``step`` (and tells it so, as the node does)."""
    event = Event(Moment.STEP_END, step, float(step))
    push = policy.wants_push(event)
    if push:
        policy.pushed(event.now)
    return push


def _scaled(view: FakeView, factor: float) -> None:
    view.update = [factor * r for r in view.ref]


# --- decisions on hand-made arrays -----------------------------------------------------------

def test_relative_magnitude_is_taken_over_all_tensors():
    reference = [np.array([3.0, 0.0]), np.array([[4.0]])]       # ‖w‖ = 5
    assert relative_magnitude([np.array([0.3, 0.0]), np.array([[0.4]])], reference) == pytest.approx(0.1)
    assert relative_magnitude([np.zeros(2), np.zeros((1, 1))], [np.zeros(2), np.zeros((1, 1))]) == 0.0
    assert relative_magnitude([np.ones(2), np.zeros((1, 1))], [np.zeros(2), np.zeros((1, 1))]) == float("inf")


def test_significance_keeps_small_updates_pending_until_they_add_up():
    policy, view = _trigger("significance", {"threshold": 0.1, "max_wait": 10})
    _scaled(view, 0.04)
    assert not _end(policy, 0)
    _scaled(view, 0.08)                      # the pending update grew: still below
    assert not _end(policy, 1)
    _scaled(view, 0.1)                       # reached
    assert _end(policy, 2)
    assert view.types() == ["SUPPRESSED", "SUPPRESSED"]
    assert view.events[0][1] == {"trigger": "significance", "step": 0, "value": pytest.approx(0.04),
                                 "threshold": 0.1}
    assert policy.summary() == {"pushes_suppressed": 2, "updates_discarded": 0}


def test_max_wait_forces_a_push_and_logs_why():
    policy, view = _trigger("significance", {"threshold": 0.5, "max_wait": 3})
    _scaled(view, 0.01)
    assert [_end(policy, step) for step in range(7)] == [False, False, True, False, False, True, False]
    forced = [payload for type_, payload in view.events if type_ == "FORCED"]
    assert [f["step"] for f in forced] == [2, 5]
    assert forced[0] == {"trigger": "significance", "step": 2, "value": pytest.approx(0.01), "threshold": 0.5,
                         "reason": "max_wait", "waited": 3}


def test_triggers_pull_like_simple_and_push_only_at_step_ends():
    for kind, params in (("significance", {"threshold": 0.01}), ("relevance", {"threshold": 0.7}),
                         ("accuracy", {"threshold": 0.01})):
        policy, view = _trigger(kind, params)
        assert all(policy.wants_pull(Event(Moment.STEP_START, i, 0.0)) for i in range(3))
        assert not policy.wants_pull(Event(Moment.STEP_END, 0, 0.0))
        assert not policy.wants_push(Event(Moment.STEP_START, 0, 1e9))
        assert not policy.wants_pull(Event(Moment.TICK, 0, 1e9)) and not policy.wants_push(Event(Moment.TICK, 0, 1e9))
        assert not policy.batched and not view.events


def test_sign_agreement_counts_parameters_of_every_tensor():
    update = [np.array([1.0, -1.0, 0.0]), np.array([[2.0, 2.0]])]
    global_update = [np.array([3.0, 1.0, 0.0]), np.array([[-1.0, 5.0]])]
    assert sign_agreement(update, global_update) == pytest.approx(3 / 5)   # +,+ ; 0,0 ; +,+


def test_relevance_pushes_before_two_pulls_then_drops_disagreeing_updates():
    policy, view = _trigger("relevance", {"threshold": 0.7, "max_wait": 10})
    view.update = [np.full(4, 0.1, np.float32), np.full((2, 2), -0.1, np.float32)]
    assert _end(policy, 0), "no global update yet: push"
    view.global_update = [np.full(4, 1.0, np.float32), np.full((2, 2), 1.0, np.float32)]   # agreement 0.5
    view.samples = 120
    assert not _end(policy, 1) and policy.wants_discard(Event(Moment.STEP_END, 1, 1.0))
    assert not policy.wants_discard(Event(Moment.STEP_END, 2, 2.0)), "asked once per drop"
    assert view.events == [("DISCARDED", {"trigger": "relevance", "step": 1, "agreement": 0.5, "threshold": 0.7,
                                          "samples": 120})]
    view.update = [np.full(4, 0.1, np.float32), np.full((2, 2), 0.1, np.float32)]          # agreement 1
    assert _end(policy, 2) and not policy.wants_discard(Event(Moment.STEP_END, 2, 2.0))
    assert policy.summary() == {"pushes_suppressed": 0, "updates_discarded": 1}


def test_relevance_never_drops_a_last_window_and_max_wait_bounds_the_drops():
    policy, view = _trigger("relevance", {"threshold": 0.9, "max_wait": 2})
    view.global_update = [-r for r in view.ref]
    _scaled(view, 0.1)                                   # agreement 0
    assert [_end(policy, step) for step in range(4)] == [False, True, False, True]
    assert view.types() == ["DISCARDED", "FORCED", "DISCARDED", "FORCED"]
    view.final = True
    assert _end(policy, 4) and view.events[-1][1]["reason"] == "final"
    assert not policy.wants_discard(Event(Moment.STEP_END, 4, 4.0))


def test_accuracy_pushes_first_then_on_a_gain_of_threshold_since_the_last_push():
    policy, view = _trigger("accuracy", {"threshold": 0.02, "sample": 300, "max_wait": 10})
    decisions = []
    for accuracy in (0.50, 0.51, 0.515, 0.52, 0.53, 0.545):
        view.accuracy = accuracy
        decisions.append(_end(policy, len(decisions)))
    assert decisions == [True, False, False, True, False, True]
    assert view.sizes == [300] * 6
    suppressed = [payload["value"] for type_, payload in view.events if type_ == "SUPPRESSED"]
    assert suppressed == pytest.approx([0.01, 0.015, 0.01])


def test_existing_policies_keep_the_defaults_of_the_new_hooks():
    policy = create_policy("simple", {}, trains=True)
    policy.attach(FakeView([np.zeros(1)]))
    assert not policy.wants_discard(Event(Moment.STEP_END, 0, 0.0)) and policy.summary() == {}


# --- dropping an update --------------------------------------------------------------------

def test_a_dropped_update_leaves_the_model_at_its_reference_and_uncovered():
    model = ModelState(create_application("mnist_mlp", {"hidden": [4]}, seed=1))
    pulled = [np.full_like(w, 2.0) for w in model.app.get_weights()]
    model.adopt(pulled, {"w1": 0, "w2": 1}, version=3)
    model.app.apply_update([np.ones_like(w) for w in pulled])
    model.trained(50)
    model.covered("w1", 1)
    model.committed(model.pending())                    # window 1 pushed
    model.app.apply_update([np.ones_like(w) for w in pulled])
    model.trained(40)
    model.covered("w1", 2)
    assert model.discard() == 40
    assert all(np.allclose(w, 3.0) for w in model.app.get_weights())
    assert not model.has_pending() and model.coverage == {"w1": 1, "w2": 1}
    model.app.apply_update([np.ones_like(w) for w in pulled])   # training goes on from the reference
    assert all(np.allclose(r, 3.0) for r in model.reference)


def test_the_global_update_is_between_the_last_two_different_models_pulled():
    model = ModelState(create_application("mnist_mlp", {"hidden": [4]}, seed=1))
    first = [np.full_like(w, 1.0) for w in model.app.get_weights()]
    model.adopt(first, {}, 0)
    model.adopt([w.copy() for w in first], {}, 0)        # the same model again: no news
    assert len(model.pulls) == 1
    model.adopt([w + 0.5 for w in first], {}, 1)
    assert [p[0][0, 0] for p in model.pulls] == [1.0, 1.5]


# --- parameters, with file, line and field -------------------------------------------------

def test_defaults_apply_and_a_trigger_may_be_a_default():
    spec = load_spec_text(TREE + "defaults: {policy: {type: accuracy, threshold: 0.01}}\n")
    assert dict(spec.node("w1").policy.params) == {"threshold": 0.01, "max_wait": 3, "sample": 500}
    assert spec.node("root").policy.type == "accuracy"


@pytest.mark.parametrize("policy, field, words", [
    ("{type: significance}", "nodes[1].policy.threshold", ["missing", "a relative magnitude ‖Δ‖/‖w‖ like 0.01"]),
    ("{type: significance, threshold: 0}", "nodes[1].policy.threshold", ["0 is too small; expected more than 0"]),
    ("{type: significance, threshold: 0.01, max_wait: 0}", "nodes[1].policy.max_wait",
     ["0 is too small; expected at least 1"]),
    ("{type: significance, threshold: 0.01, max_wait: 2s}", "nodes[1].policy.max_wait",
     ["'2s' is not a whole number", "a number of steps"]),
    ("{type: significance, treshold: 0.01}", "nodes[1].policy.treshold",
     ["unknown key 'treshold'", "did you mean 'threshold'?", "expected one of max_wait, threshold"]),
    ("{type: relevance, threshold: 1.5}", "nodes[1].policy.threshold", ["1.5 is too large; expected", "at most 1"]),
    ("{type: relevance, threshold: -0.2}", "nodes[1].policy.threshold", ["too small"]),
    ("{type: relevance, threshold: '0.7'}", "nodes[1].policy.threshold", ["not a number", "agrees in sign"]),
    ("{type: accuracy, threshold: 0.01, sample: 0}", "nodes[1].policy.sample", ["too small"]),
    ("{type: accuracy, threshold: 2}", "nodes[1].policy.threshold", ["2 is too large", "at most 1"]),
    ("{type: accuracy, threshold: 0.01, window: 2}", "nodes[1].policy.window", ["unknown key 'window'"]),
])
def test_bad_trigger_parameters_are_reported_at_their_line_and_field(tmp_path, policy, field, words):
    assert_problem(tmp_path, TREE + f"    policy: {policy}\n", 9, field, *words)


def test_a_trigger_in_defaults_is_checked_there(tmp_path):
    assert_problem(tmp_path, TREE + "defaults: {policy: {type: relevance, threshold: 0}}\n", 9,
                   "defaults.policy.threshold", "too small")


# --- the node's view -----------------------------------------------------------------------

def _node_view():
    """A node's view of a fresh mnist_mlp model, in a stand-in runtime with a small test set."""
    rng = np.random.default_rng(0)
    runtime = SimpleNamespace(spec=SimpleNamespace(seed=1, windows=SimpleNamespace(limit=4)),
                              evaluation_data=(rng.random((50, 784), dtype=np.float32), rng.integers(0, 10, 50)),
                              log=SimpleNamespace(write=lambda type_, **payload: None))
    model = ModelState(create_application("mnist_mlp", {"hidden": [4]}, seed=1))
    return NodeModelView(runtime, model), model


def test_the_node_view_reads_the_model_without_changing_it():
    view, model = _node_view()
    first = view.validation_sample(20)
    assert len(first[0]) == 20 and view.validation_sample(20) is first
    assert len(view.validation_sample(10_000)[0]) == 50, "at most the whole test set"
    assert 0 <= view.validation_accuracy(20) <= 1
    pulled = [np.full_like(w, 1.0) for w in model.app.get_weights()]
    model.adopt(pulled, {}, 0)
    assert view.last_global_update() is None
    model.adopt([w + 0.25 for w in pulled], {}, 1)
    assert all(np.allclose(g, 0.25) for g in view.last_global_update())
    model.app.apply_update([np.full_like(w, 0.5) for w in pulled])
    model.trained(10)
    model.covered("w1", 2)
    assert all(np.allclose(d, 0.5) for d in view.pending_update()) and view.pending_samples() == 10
    assert not view.final_window_pending()
    model.covered("w1", 3)
    assert view.final_window_pending()
    view.reference()[0][...] = 99.0
    assert np.allclose(model.reference[0], 1.25), "a copy: the view is read-only"
