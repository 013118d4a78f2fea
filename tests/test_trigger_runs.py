"""Learning-based triggers in real node processes on the loopback backend (no root needed):
one run of four workers under one root, a ``simple`` one beside a worker for each trigger,
so that their pushes compare within a run. Windows are 1 s; the run takes about 15 s."""

from __future__ import annotations

from typing import Dict, List

import pytest

from test_nodes import LoopbackRun, assert_all_done, finished_run

LIMIT = 6
WORKERS = ("w1", "w2", "w3", "w4")
NODES = """\
  - {id: root}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1], policy: {type: significance, threshold: 10, max_wait: 3}}
  - {id: w3, parent: root, sensors: [2], policy: {type: relevance, threshold: 0.7, max_wait: 3}}
  - {id: w4, parent: root, sensors: [3], policy: {type: accuracy, threshold: 0.01, sample: 300, max_wait: 3}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("triggers"), NODES, LIMIT, 25)


def pushed_windows(run: LoopbackRun, worker: str) -> List[int]:
    """The windows of the PUSH requests ``worker`` sent (a resent one counted once)."""
    sent = {e["payload"]["seq"]: e["payload"]["window"] for e in run.events(worker, "CONNECTION")
            if e["payload"]["direction"] == "sent" and e["payload"]["kind"] == "PUSH"}
    return list(sent.values())


def steps(run: LoopbackRun, worker: str, type_: str) -> List[int]:
    return [e["payload"]["step"] for e in run.events(worker, type_)]


def done(run: LoopbackRun, ident: str) -> Dict:
    return run.events(ident, "DONE")[0]["payload"]


def test_the_run_completes_with_every_last_window_at_the_root(run):
    assert_all_done(run, run.codes)
    assert done(run, "root")["coverage"] == {w: LIMIT - 1 for w in WORKERS}
    assert "pushes_suppressed" not in done(run, "w1"), "simple's DONE is as it was"


def test_significance_holds_small_updates_back_until_max_wait(run):
    assert pushed_windows(run, "w1") == list(range(LIMIT))
    assert pushed_windows(run, "w2") == [2, 5], "forced every third window, nothing else"
    assert steps(run, "w2", "SUPPRESSED") == [0, 1, 3, 4]
    assert all(e["payload"]["value"] < 10 for e in run.events("w2", "SUPPRESSED"))
    forced = [e["payload"] for e in run.events("w2", "FORCED")]
    assert [(f["step"], f["reason"], f["waited"]) for f in forced] == [(2, "max_wait", 3), (5, "max_wait", 3)]
    assert done(run, "w2")["pushes_suppressed"] == 4 and done(run, "w2")["updates_discarded"] == 0
    trained = sum(e["payload"]["samples"] for e in run.events("w2", "STATISTIC"))
    assert done(run, "w2")["samples"] == trained, "held updates are pushed later, not lost"


def test_relevance_pushes_or_drops_every_window_and_the_root_never_gets_a_dropped_one(run):
    pushed, dropped = pushed_windows(run, "w3"), steps(run, "w3", "DISCARDED")
    assert sorted(pushed + dropped) == list(range(LIMIT)), (pushed, dropped)
    assert pushed[0] == 0 and pushed[-1] == LIMIT - 1, "pushed before two pulls, and the last window"
    assert done(run, "w3")["updates_discarded"] == len(dropped)
    assert all(e["payload"]["agreement"] < 0.7 for e in run.events("w3", "DISCARDED"))
    discarded = sum(e["payload"]["samples"] for e in run.events("w3", "DISCARDED"))
    trained = sum(done(run, w)["samples"] for w in WORKERS)
    assert done(run, "root")["samples"] == trained - discarded


def test_accuracy_pushes_on_a_gain_and_holds_back_otherwise(run):
    pushed, suppressed = pushed_windows(run, "w4"), steps(run, "w4", "SUPPRESSED")
    assert pushed[0] == 0, "nothing to compare with before the first push"
    held = set(suppressed)
    assert held.isdisjoint(pushed) and held | set(pushed) == set(range(LIMIT)) | held
    assert all(e["payload"]["value"] < 0.01 for e in run.events("w4", "SUPPRESSED"))
    assert done(run, "w4")["pushes_suppressed"] == len(suppressed)
    assert {e["payload"]["reason"] for e in run.events("w4", "FORCED")} <= {"max_wait"}
