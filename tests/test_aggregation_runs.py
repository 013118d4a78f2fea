"""Aggregations in real node processes on the loopback backend (no root needed): one run of a
three-level tree whose root merges ``async`` and whose parameter server merges ``buffered``
(``k: 2``), with one slow worker under each (``policy: {type: window, every: 3}``: it pulls
and pushes every third window only, so its updates are computed from old models). Windows
are 1 s; the run takes about 15 s."""

from __future__ import annotations

from typing import Dict, List

import pytest

from edgetestbed.analysis.metrics import compute_metrics
from edgetestbed.analysis.report import staleness_section
from test_nodes import LoopbackRun, assert_all_done, finished_run, run_spec

LIMIT = 6
WORKERS = ("w1", "w2", "w3", "w5")
NODES = """\
  - {id: root, aggregation: {type: async, alpha: 0.6, a: 0.5}}
  - {id: ps, parent: root, aggregation: {type: buffered, k: 2, timeout: 30s}}
  - {id: w1, parent: ps, sensors: [0]}
  - {id: w2, parent: ps, sensors: [1]}
  - {id: w3, parent: ps, sensors: [2], policy: {type: window, every: 3}}
  - {id: w5, parent: root, sensors: [3], policy: {type: window, every: 3}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("aggregations"), NODES, LIMIT, 40)


def merges(run: LoopbackRun, server: str) -> List[Dict]:
    return [e["payload"] for e in run.events(server, "STATISTIC")]


def pushes(run: LoopbackRun, child: str) -> int:
    """The PUSH requests ``child`` sent (a resent one counted once)."""
    return len({e["payload"]["seq"] for e in run.events(child, "CONNECTION")
                if e["payload"]["direction"] == "sent" and e["payload"]["kind"] == "PUSH"})


def done(run: LoopbackRun, ident: str) -> Dict:
    return run.events(ident, "DONE")[0]["payload"]


def test_the_run_completes_with_every_window_of_every_worker_at_the_root(run):
    assert_all_done(run, run.codes)
    assert done(run, "root")["coverage"] == {w: LIMIT - 1 for w in WORKERS}
    assert done(run, "root")["samples"] == sum(done(run, w)["samples"] for w in WORKERS), "no update lost"


def test_buffered_merges_exactly_when_two_updates_are_queued(run):
    stats = merges(run, "ps")
    taken = [sum(len(pushed) for pushed in merge["staleness"].values()) for merge in stats]
    assert taken and all(count == 2 for count in taken), taken
    assert sum(taken) == sum(pushes(run, w) for w in ("w1", "w2", "w3")), "every push merged, two at a time"
    assert "weights" not in stats[0], "sample-weighted, as average"
    slow = [s for merge in stats for s in merge["staleness"].get("w3", [])]
    assert slow and max(slow) >= 1, "w3 pulls every third window: its updates come from older models"


def test_async_merges_every_update_on_its_own_and_weighs_it_by_its_staleness(run):
    stats = merges(run, "root")
    assert [len(merge["children"]) for merge in stats] == [1] * len(stats)
    assert all(len(pushed) == 1 for merge in stats for pushed in merge["staleness"].values())
    assert len(stats) == pushes(run, "ps") + pushes(run, "w5"), "one merge per update"
    for merge in stats:
        (child, (staleness,)), = merge["staleness"].items()
        assert merge["weights"] == {child: pytest.approx(0.6 * (1 + staleness) ** -0.5)}
    slow = [merge["staleness"]["w5"][0] for merge in stats if "w5" in merge["staleness"]]
    assert slow and max(slow) >= 1, slow


def test_metrics_and_the_report_show_the_staleness_per_link(run):
    metrics = compute_metrics(run.dir)
    staleness = metrics["staleness"]
    links = {item["child"]: item for item in staleness["links"]}
    assert set(links) == {"ps", "w1", "w2", "w3", "w5"}
    assert links["w5"]["parent"] == "root" and links["w5"]["aggregation"] == "async"
    assert links["w5"]["count"] == pushes(run, "w5") and links["w5"]["max"] >= 1
    assert links["w3"]["aggregation"] == "buffered" and links["w3"]["count"] == pushes(run, "w3")
    assert sum(links["w5"]["histogram"].values()) == links["w5"]["count"]
    assert staleness["all"]["count"] == sum(item["count"] for item in links.values())
    assert metrics["summary"]["staleness_max"] == max(item["max"] for item in links.values())
    (table,) = [block for block in staleness_section(metrics) if block.kind == "table"]
    assert [row[0] for row in table.content[1:]] == [item["link"] for item in staleness["links"]]


# --- sync: rounds, with a worker killed mid-run -------------------------------------------------

SYNC_NODES = """\
  - {id: root, aggregation: {type: sync, timeout: 1500ms}}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1]}
  - {id: w3, parent: root, sensors: [2]}
"""
KILLED_AT = 2.6   # seconds: w3 has pushed windows 0 and 1


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory):
    loopback = LoopbackRun(tmp_path_factory.mktemp("sync"), run_spec(SYNC_NODES, limit=LIMIT, rate="100/s"))
    try:
        loopback.start_all()
        loopback.at(KILLED_AT)
        loopback.kill("w3")
        loopback.codes = loopback.wait(LIMIT + 60)
    finally:
        loopback.stop()
    return loopback


def test_sync_merges_once_per_round_with_every_live_childs_update(sync_run):
    assert {ident: code for ident, code in sync_run.codes.items() if ident != "w3"} == \
        {ident: 0 for ident in sync_run.idents if ident != "w3"}, sync_run.output("root")[-2000:]
    stats = merges(sync_run, "root")
    for merge in stats:   # one update a child, and only the children it did not give up on
        assert all(len(pushed) == 1 for pushed in merge["staleness"].values()), merge["staleness"]
        assert sorted(merge["children"]) == sorted({"w1", "w2", "w3"} - set(merge["missing"])), merge
    full = [merge for merge in stats if not merge["missing"]]
    assert len(full) >= 2 and all(merge["children"] == ["w1", "w2", "w3"] for merge in full[:2]), stats
    assert all(s == 0 for merge in full for pushed in merge["staleness"].values() for s in pushed), \
        "every update of a full round comes from that round's model"


def test_sync_gives_up_on_a_dead_child_after_its_timeout_and_logs_it(sync_run):
    given_up = [merge for merge in merges(sync_run, "root") if merge["missing"]]
    assert given_up and all(merge["missing"] == ["w3"] for merge in given_up), given_up
    assert all(merge["children"] == ["w1", "w2"] for merge in given_up)


def test_workers_wait_for_each_round_to_open(sync_run):
    rounds = [e["payload"] for e in sync_run.events("w1", "ROUND")]
    assert len(rounds) == LIMIT - 1, "before every window but the first"
    assert all(r["opened"] and r["version"] > r["pushed_from"] for r in rounds), rounds
    assert max(r["waited"] for r in rounds) > 0.5, "rounds without w3 wait for the root's timeout"


def test_a_waiting_worker_polls_without_pulling_the_same_model_again(sync_run):
    """Polls say the version held; the root answers NOT_MODIFIED until it has a newer one, so a
    worker receives at most its first model, one at each window's pull and one per round that
    opened: 1 + 2 x windows (10 measured, against about 40 when every poll got the model)."""
    events = sync_run.events("w1", "CONNECTION")
    last_window = sync_run.events("w1", "STATISTIC")[-1]["ts"]
    received = [e["payload"]["kind"] for e in events if e["payload"]["direction"] == "received" and e["ts"] < last_window]
    assert received.count("NOT_MODIFIED") > 0 and received.count("MODEL") <= 1 + 2 * LIMIT, received


# --- sync down a deep tree: the root's rounds reach every worker ------------------------------

# Nothing dies here: the timeouts are long, so that a slow merge on a loaded machine cannot make
# a server give up on a child that is only late.
DEEP_NODES = """\
  - {id: root, aggregation: {type: sync, timeout: 10s}}
  - {id: ps1, parent: root, aggregation: {type: sync, timeout: 10s}}
  - {id: ps2, parent: root, aggregation: {type: sync, timeout: 10s}}
  - {id: w1, parent: ps1, sensors: [0]}
  - {id: w2, parent: ps1, sensors: [1]}
  - {id: w3, parent: ps2, sensors: [2]}
  - {id: w4, parent: ps2, sensors: [3]}
"""
DEEP_WORKERS = ("w1", "w2", "w3", "w4")


@pytest.fixture(scope="module")
def deep_run(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("deep-sync"), DEEP_NODES, LIMIT, 40)


def test_deep_sync_completes_with_every_window_at_the_root(deep_run):
    assert_all_done(deep_run, deep_run.codes)
    assert done(deep_run, "root")["coverage"] == {w: LIMIT - 1 for w in DEEP_WORKERS}


def test_deep_sync_root_merges_one_update_of_each_server_per_round(deep_run):
    stats = merges(deep_run, "root")
    assert len(stats) >= LIMIT
    for merge in stats:
        assert merge["children"] == ["ps1", "ps2"] and not merge["missing"], merge
        assert all(pushed == [0] for pushed in merge["staleness"].values()), merge["staleness"]
    for server in ("ps1", "ps2"):
        assert len(merges(deep_run, server)) == pushes(deep_run, server), "one push a merge"


def test_deep_sync_every_worker_starts_a_window_from_every_workers_last_one(deep_run):
    """Without rounds passed down, w1's window j model lacks w3's and w4's window j - 1: a
    parameter server released its own merge before the root had merged the other's."""
    for worker in DEEP_WORKERS:
        windows = [e["payload"] for e in deep_run.events(worker, "STATISTIC")]
        assert len(windows) == LIMIT
        for stat in windows[1:]:
            behind = {w: stat["coverage"].get(w, -1) for w in DEEP_WORKERS
                      if stat["coverage"].get(w, -1) < stat["window"] - 1}
            assert not behind, f"{worker}'s window {stat['window']} began without {behind}"
    held = [e["payload"] for server in ("ps1", "ps2") for e in deep_run.events(server, "ROUND")]
    assert held and all(r["opened"] for r in held), held
