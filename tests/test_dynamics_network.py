"""Link events applied during a run on the emulated network, measured by the run's probe and
its captures: w1's link goes from 5 ms to 40 ms at 2 s; w2's link goes down at 3 s and comes
back up at 5 s. One run of 8 windows of 1 s (about 35 s), shared by the module.

Measured over N runs: see the asserts' comments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

import pytest
from scapy.utils import RawPcapReader

from edgetestbed.process.start import read_start
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text
from test_run import events, small_spec

pytestmark = pytest.mark.root

LIMIT = 8
NODES = """\
  - {id: root, cpu: 0.3}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1]}
events:
  - {at: 2s, link: w1, set: {delay: 40ms}}
  - {at: 3s, link: w2, down: true}
  - {at: 5s, link: w2, up: true}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    spec = load_spec_text(small_spec(NODES, limit=LIMIT), "dynamics.yaml")
    summary = run_experiment(spec, tmp_path_factory.mktemp("dynamics"), say=print)
    assert set(summary["finished"].values()) == {"DONE"}, summary["finished"]
    return Path(summary["run_dir"])


def applied(run_dir: Path) -> List[dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return metrics["network_events"]["events"]


def frame_times(run_dir: Path, link: str, start_at: float) -> List[float]:
    """When each frame the link's capture holds crossed it, in seconds since window 0 began."""
    return [meta.sec + meta.usec / 1e6 - start_at for _data, meta in RawPcapReader(str(run_dir / "net" / f"{link}.pcap"))]


def test_every_event_is_applied_when_due(run):
    records = applied(run)
    print("due, applied:", [(r["due"], r["applied"]) for r in records])
    assert [(r["link"], r.get("state")) for r in records] == [("w1", None), ("w2", "down"), ("w2", "up")]
    assert all(0 <= r["applied"] - r["due"] < 0.5 for r in records)


def test_a_delay_change_is_measured_on_the_link(run):
    change = applied(run)[0]
    before, after = change["before"]["delay_ms"], change["after"]["delay_ms"]
    print("w1's link, measured one-way delay before and after:", before, after)
    assert change["configured_before_ms"] == 5 and change["configured_after_ms"] == 40
    assert abs(before - 5) <= 1 + 0.05 * 5
    assert abs(after - 40) <= 1 + 0.05 * 40


def test_a_link_down_carries_nothing_and_up_restores_it(run):
    down, up = applied(run)[1:]
    times = frame_times(run, "w2-root", read_start(run))
    during = [t for t in times if down["applied"] + 0.05 < t < up["applied"]]
    after = [t for t in times if t > up["applied"]]
    print(f"w2-root frames: {len(times)}, while down: {len(during)}, after up: {len(after)}")
    assert down["after"] is None or down["after"]["received"] == 0
    assert not during and len(after) > 100
    assert up["after"]["received"] > 0


def test_the_worker_behind_the_downed_link_trains_every_window_and_its_exchanges_resume(run):
    up = applied(run)[2]["applied"] + read_start(run)
    assert events(run, "root", "DONE")[-1]["payload"]["coverage"]["w2"] == LIMIT - 1
    acknowledged = [e for e in events(run, "w2", "CONNECTION") if e["ts"] > up
                    and e["payload"]["kind"] == "ACK" and e["payload"]["direction"] == "received"]
    assert acknowledged, "w2's pushes reach the root again once its link is up"
