"""Exchange methods on the emulated network, their effect read from the captures: one run
of a root merging ``async`` over a ``sync`` parameter server (two workers), a ``buffered``
one (k = 2) over a ``relevance`` worker whose threshold no update passes and a ``simple`` one,
and three workers of its own: ``accuracy`` with a threshold no model passes, ``significance``
with one no update passes (the three triggers forced by ``max_wait`` now and then), and a
``simple`` worker on a slow edge, the baseline the others are set against.

Measured over 11 runs of this module (the last 3 with ps2, w6 and w7): w3 pulled 0.33-0.44 of
w5's model bytes, w4 pushed 0.25 of w5's update bytes, ps1 merged both children every round,
w5's staleness at the root reached 3-4; w6 pushed 0.375 of w7's update bytes and ps2 passed
0.545 of the update bytes it received up, in every run. The run takes about 45 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import pytest

from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text
from test_run import events, small_spec

pytestmark = pytest.mark.root

LIMIT = 8
NODES = """\
  - {id: root, cpu: 0.3, aggregation: {type: async}}
  - {id: ps1, parent: root, aggregation: {type: sync}}
  - {id: w1, parent: ps1, sensors: [0]}
  - {id: w2, parent: ps1, sensors: [1]}
  - {id: w3, parent: root, sensors: [2], policy: {type: accuracy, threshold: 0.9, sample: 200, max_wait: 10}}
  - {id: w4, parent: root, sensors: [3], policy: {type: significance, threshold: 10, max_wait: 4}}
  - {id: w5, parent: root, sensors: [4], link: {bw: 2Mbit, delay: 100ms}}
  - {id: ps2, parent: root, aggregation: {type: buffered, k: 2, timeout: 5s}}
  - {id: w6, parent: ps2, sensors: [5], policy: {type: relevance, threshold: 1, max_wait: 4}}
  - {id: w7, parent: ps2, sensors: [6]}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    spec = load_spec_text(small_spec(NODES, limit=LIMIT), "exchange.yaml")
    summary = run_experiment(spec, tmp_path_factory.mktemp("exchange"), say=lambda _: None)
    assert set(summary["finished"].values()) == {"DONE"}, summary["finished"]
    return Path(summary["run_dir"])


def captured(run_dir: Path) -> Dict[str, dict]:
    """Per link, its network-cost item (bytes from the captures)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["links"]["source"] == "packet captures"
    return {item["link"]: item for item in metrics["links"]["items"]}


def class_bytes(item: dict, direction: str, message_class: str) -> int:
    return item[direction]["pcap"]["by_class"].get(message_class, 0)


def captured_bytes(run_dir: Path, parent: str, workers: tuple, direction: str, message_class: str) -> Dict[str, int]:
    """Per worker, the bytes of one message class its link to ``parent`` carried one way."""
    links = captured(run_dir)
    return {worker: class_bytes(links[f"{worker}-{parent}"], direction, message_class) for worker in workers}


def merges(run_dir: Path, server: str) -> List[dict]:
    return [e["payload"] for e in events(run_dir, server, "STATISTIC")]


def test_accuracy_pulls_fewer_model_bytes_than_simple_with_not_modified_replies(run):
    pulled = captured_bytes(run, "root", ("w3", "w5"), "down", "model pull")
    kept = events(run, "w3", "KEPT_MODEL")
    print("model pull bytes captured:", pulled, "NOT_MODIFIED replies:", len(kept))
    assert kept and events(run, "root", "DONE")[-1]["payload"]["pulls_not_modified"] == len(kept)
    assert pulled["w3"] < 0.8 * pulled["w5"]   # 0.44 measured; each full model more adds 0.11


def test_significance_pushes_fewer_update_bytes_than_simple(run):
    pushed = captured_bytes(run, "root", ("w4", "w5"), "up", "update push")
    print("update push bytes captured:", pushed)
    assert events(run, "w4", "SUPPRESSED") and pushed["w4"] < 0.8 * pushed["w5"]   # 0.25: every 4th window


def test_sync_merges_once_a_round_with_every_childs_update(run):
    rounds = merges(run, "ps1")
    assert len(rounds) >= LIMIT
    assert all(sorted(merge["staleness"]) == ["w1", "w2"] and not merge.get("missing") for merge in rounds), rounds


def test_async_merges_per_update_and_logs_staleness_on_the_slow_edge(run):
    stats = merges(run, "root")
    assert all(sum(len(pushes) for pushes in merge["staleness"].values()) == 1 for merge in stats)
    slow = [s for merge in stats for s in merge["staleness"].get("w5", [])]
    print("w5's staleness at the root:", slow)
    assert slow and max(slow) >= 1


def test_relevance_drops_updates_and_pushes_fewer_bytes_than_simple(run):
    pushed = captured_bytes(run, "ps2", ("w6", "w7"), "up", "update push")
    dropped = events(run, "w6", "DISCARDED")
    print("update push bytes captured:", pushed, "updates dropped:", len(dropped))
    assert dropped and events(run, "w6", "DONE")[-1]["payload"]["updates_discarded"] == len(dropped)
    assert pushed["w6"] < 0.8 * pushed["w7"]


def test_buffered_merges_two_updates_at_a_time_and_pushes_once_per_merge(run):
    taken = [sum(len(pushes) for pushes in merge["staleness"].values()) for merge in merges(run, "ps2")]
    assert taken and all(count == 2 for count in taken[:-1]) and taken[-1] <= 2, taken
    below = sum(captured_bytes(run, "ps2", ("w6", "w7"), "up", "update push").values())
    above = captured_bytes(run, "root", ("ps2",), "up", "update push")["ps2"]
    print("update push bytes captured into ps2:", below, "out of ps2:", above, "merges:", taken)
    assert above < 0.7 * below   # one model up per two down: 0.5, and one more for an odd last merge
