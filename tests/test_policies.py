"""Exchange policies: which events make a node pull and push."""

from __future__ import annotations

import pytest

from edgetestbed.errors import UserError
from edgetestbed.policies import Event, Moment, create_policy


def _decisions(policy, moment, indices, now=0.0):
    """(index, pull, push) for each index at ``moment``."""
    return [(i, policy.wants_pull(Event(moment, i, now)), policy.wants_push(Event(moment, i, now)))
            for i in indices]


def _pulls(policy, moment, indices):
    return [i for i, pull, _ in _decisions(policy, moment, indices) if pull]


def _pushes(policy, moment, indices):
    return [i for i, _, push in _decisions(policy, moment, indices) if push]


def test_simple_pulls_before_and_pushes_after_every_window():
    policy = create_policy("simple", {}, trains=True)
    assert _pulls(policy, Moment.STEP_START, range(4)) == [0, 1, 2, 3]
    assert _pushes(policy, Moment.STEP_END, range(4)) == [0, 1, 2, 3]
    assert _pushes(policy, Moment.STEP_START, range(4)) == _pulls(policy, Moment.STEP_END, range(4)) == []
    assert not any(pull or push for _, pull, push in _decisions(policy, Moment.TICK, range(4), now=1e9))
    assert not policy.batched


def test_window_exchanges_every_k_windows():
    policy = create_policy("window", {"every": 3}, trains=True)
    assert _pulls(policy, Moment.STEP_START, range(9)) == [0, 3, 6]
    assert _pushes(policy, Moment.STEP_END, range(9)) == [2, 5, 8]


def test_downpour_counts_mini_batches_on_workers():
    policy = create_policy("downpour", {"n_fetch": 2, "n_push": 3}, trains=True)
    assert policy.batched
    assert _pulls(policy, Moment.BATCH_START, range(7)) == [0, 2, 4, 6]
    assert _pushes(policy, Moment.BATCH_END, range(7)) == [2, 5]
    assert _pulls(policy, Moment.STEP_START, range(7)) == _pushes(policy, Moment.STEP_END, range(7)) == []


def test_downpour_counts_merges_on_parameter_servers():
    policy = create_policy("downpour", {"n_fetch": 1, "n_push": 2}, trains=False)
    assert not policy.batched
    assert _pulls(policy, Moment.STEP_START, range(4)) == [0, 1, 2, 3]
    assert _pushes(policy, Moment.STEP_END, range(4)) == [1, 3]


def test_time_policy_follows_the_clock_from_the_start_time():
    """Pushes every ``push`` s from the start; pulls every ``pull`` s, half a pull interval
    out of phase, so that a pull never lands right after a push, before the parent merged it."""
    policy = create_policy("time", {"push": 2.0, "pull": 3.0}, trains=True)
    tick = lambda now: Event(Moment.TICK, 0, now)  # noqa: E731
    assert not policy.wants_push(tick(1e12)) and not policy.wants_pull(tick(1e12)), "due before the run began"
    policy.begin(100.0)
    assert not policy.wants_push(tick(101.4)) and not policy.wants_pull(tick(101.4))
    assert policy.wants_pull(tick(101.5)) and not policy.wants_push(tick(101.5))
    policy.pulled(101.5)
    assert policy.wants_push(tick(102.0)) and not policy.wants_pull(tick(102.0))
    policy.pushed(102.0)
    assert not policy.wants_push(tick(103.9)) and not policy.wants_pull(tick(104.4))
    assert policy.wants_push(tick(104.0)) and policy.wants_pull(Event(Moment.STEP_END, 1, 104.5))


def test_time_policy_pulls_as_often_as_it_pushes_by_default():
    policy = create_policy("time", {"push": 1.5, "pull": None}, trains=False)
    policy.begin(0.0)
    assert policy.wants_pull(Event(Moment.TICK, 0, 0.75)) and not policy.wants_push(Event(Moment.TICK, 0, 0.75))
    policy.pulled(0.75)
    assert policy.wants_push(Event(Moment.TICK, 0, 1.5)) and not policy.wants_pull(Event(Moment.TICK, 0, 1.5))
    assert policy.wants_pull(Event(Moment.TICK, 0, 2.25))


def test_unknown_policy_is_a_user_error():
    with pytest.raises(UserError, match="unknown exchange policy 'gossip'"):
        create_policy("gossip", {}, trains=True)
