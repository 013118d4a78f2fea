"""Metrics: the definitions on hand-made numbers, a hand-written run directory (whole and
cut short), and a real run of node processes on the loopback backend."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

from edgetestbed.analysis.definitions import (convergence_time, lag_curve, own_labels, propagation_latency,
                                              split_per_class)
from edgetestbed.analysis.metrics import compute_metrics, write_metrics
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.data.streams import StreamDefinition
from edgetestbed.errors import UserError
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text
from test_nodes import run_spec

# ---------------------------------------------------------------- the definitions


def test_latency_is_the_seeds_formula_over_coverage_vectors():
    finished = {"w1": {0: 1.0, 1: 2.0}, "w2": {0: 1.5, 1: 2.2}}
    received = {"w1": [(2.9, {"w1": 1, "w2": 1}), (1.2, {"w1": 0}), (1.8, {"w1": 0, "w2": 0})],
                "w2": [(2.0, {"w1": 0, "w2": 0}), (2.5, {"w1": 1, "w2": 0}), (3.0, {"w1": 1, "w2": 1})]}
    latency = propagation_latency(finished, received, windows=2)
    assert latency["workers"]["w1"]["per_window"] == pytest.approx([1.8 - 1.5, 2.9 - 2.2])
    assert latency["workers"]["w2"]["per_window"] == pytest.approx([2.0 - 1.5, 3.0 - 2.2])
    assert latency["workers"]["w1"]["seconds"] == pytest.approx(0.7) and latency["workers"]["w1"]["window"] == 1
    assert latency["seconds"] == pytest.approx(0.8)
    assert (latency["worker"], latency["window"], latency["complete"], latency["missing"]) == ("w2", 1, True, [])


def test_latency_says_which_windows_never_finished_or_never_came_back():
    finished = {"w1": {0: 1.0, 1: 2.0, 2: 3.0}, "w2": {0: 1.5, 1: 2.5}}
    received = {"w1": [(1.7, {"w1": 0, "w2": 0})], "w2": [(1.6, {"w1": 0, "w2": 0}), (2.7, {"w1": 1, "w2": 1})]}
    latency = propagation_latency(finished, received, windows=3)
    assert latency["workers"]["w1"]["per_window"] == pytest.approx([0.2, None, None])
    assert latency["workers"]["w2"]["per_window"] == pytest.approx([0.1, 0.2, None])
    assert latency["seconds"] == pytest.approx(0.2) and not latency["complete"]
    assert latency["missing"] == ["window 2: never finished by w2",
                                  "w1: never received a model holding every worker's window 1"]
    assert propagation_latency({"w1": {}}, {}, windows=1)["seconds"] is None


def test_lag_interpolates_the_cloud_and_holds_its_last_value():
    cloud_t, cloud = [1.0, 2.0, 3.0], [0.2, 0.4, 0.5]
    t, lag = lag_curve([0.5, 1.5, 2.5, 4.0], [0.1, 0.2, 0.3, 0.45], cloud_t, cloud)
    assert t == [1.5, 2.5, 4.0] and lag == pytest.approx([0.1, 0.15, 0.05])
    _, rmse_lag = lag_curve([2.0], [30.0], cloud_t, [40.0, 25.0, 20.0], higher_is_better=False)
    assert rmse_lag == pytest.approx([5.0])
    assert lag_curve([1.0], [0.5], [], []) == ([], [])


def test_convergence_is_the_first_time_within_the_tolerance_of_the_final_value():
    t, accuracy = [1, 2, 3, 4, 5], [0.1, 0.795, 0.7, 0.81, 0.8]
    assert convergence_time(t, accuracy, 0.01) == 2
    assert convergence_time(t, accuracy, 0.001) == 5
    assert convergence_time([], [], 0.01) is None


def test_own_labels_come_from_the_partition():
    biased = StreamDefinition("mnist", "biased", {"bias": 0.64})
    assert own_labels([biased.label_distribution(13, 20)]) == [3]
    assert own_labels([biased.label_distribution(0, 2), biased.label_distribution(1, 2)]) == [0, 1]
    by_label = StreamDefinition("mnist", "by_label", {"labels": 2})
    assert own_labels([by_label.label_distribution(1, 5)]) == [2, 3]
    assert own_labels([StreamDefinition("mnist", "iid", {}).label_distribution(0, 2)]) == []


def test_per_class_splits_into_own_and_other_leaving_absent_classes_out():
    assert split_per_class([1.0, 0.5, None, 0.0], [0, 2]) == (1.0, 0.25)
    assert split_per_class([None, 0.5], [0]) == (None, 0.5)


# ---------------------------------------------------------------- a hand-written run directory

SPEC = """\
name: handmade
seed: 1
application: {name: mnist_mlp}
data: {dataset: mnist, partition: biased}
windows: {interval: 1s, limit: 2, epochs: 1}
nodes:
  - {id: root}
  - {id: w1, parent: root, sensors: [0], link: {bw: 10Mbit, delay: 5ms}}
  - {id: w2, parent: root, sensors: [1]}
cloud: {}
"""
T0 = 1000.0


def per_class(own: int, accuracy: float) -> List[float]:
    """A per-class list with ``own`` right and every other digit at ``accuracy``."""
    return [1.0 if digit == own else accuracy for digit in range(10)]


def evaluation(accuracy: float, own: int = 0) -> dict:
    return {"accuracy": accuracy, "score": accuracy, "per_class": per_class(own, accuracy)}


def message(direction: str, peer: str, kind: str, seq: int, size: int) -> tuple:
    return ("CONNECTION", {"direction": direction, "peer": peer, "kind": kind, "seq": seq, "bytes": size})


def worker_events(ident: str, own: int, delay: float) -> List[tuple]:
    """Pull, train, push per window, then the final pull and DONE; trained at T0 + j + 1 + delay."""
    events: List[tuple] = [(T0 - 1, "START", {"role": "worker", "start_at": T0})]
    seq = 10
    for window, coverage_back in ((0, {}), (1, {"w1": 0, "w2": 0})):
        start = T0 + window + 1 + delay - 0.05
        events += [(start, *message("sent", "root", "PULL", seq, 100)),
                   (start + 0.01, *message("received", "root", "MODEL", seq, 1000)),
                   (start + 0.01, "MODEL_RECEIVED", {"peer": "root", "coverage": coverage_back})]
        trained = start + 0.05
        events += [(trained + 0.01, *message("sent", "root", "PUSH", seq + 1, 1000)),
                   (trained + 0.02, *message("received", "root", "ACK", seq + 1, 50)),
                   (trained + 0.2, "STATISTIC", {"window": window, "samples": 40, "trained_at": trained,
                                                 **evaluation(0.2 + 0.1 * window, own), "cpu_total": 1.0 + window,
                                                 "memory_peak": 100 + window})]
        seq += 2
    events += [(T0 + 3.5, "MODEL_RECEIVED", {"peer": "root", "coverage": {"w1": 1, "w2": 1}}),
               (T0 + 3.6, *message("sent", "root", "DONE", seq, 60)),
               (T0 + 3.6, *message("received", "root", "ACK", seq, 50)),
               (T0 + 3.7, "DONE", {"windows": 2, "samples": 80, **evaluation(0.5, own), "cpu_total": 3.0,
                                   "memory_peak": 200})]
    return events


def root_events() -> List[tuple]:
    merges = [(T0 + 1.5, 0, 0.1, 0.3, {"w1": 0, "w2": 0}), (T0 + 2.5, 1, 0.3, 0.6, {"w1": 1, "w2": 1})]
    events: List[tuple] = [(T0 - 1, "START", {"role": "root", "start_at": T0})]
    for ts, merge, before, after, coverage in merges:
        events.append((ts, "STATISTIC", {"merge": merge, "samples": 80, "coverage": coverage, "wall_time": 0.2,
                                         "before": evaluation(before), **evaluation(after), "cpu_total": 2.0}))
    return events + [(T0 + 3.8, "DONE", {"merges": 2, **evaluation(0.605), "cpu_total": 2.5, "memory_peak": 300})]


def cloud_events() -> List[tuple]:
    return [(T0 - 1, "START", {"role": "cloud", "start_at": T0}),
            *[(T0 + j + 1.2, "STATISTIC", {"window": j, "samples": 80, "trained_at": T0 + j + 1.1,
                                           **evaluation(0.4 + 0.3 * j)}) for j in range(2)],
            (T0 + 2.3, "DONE", {**evaluation(0.7), "cpu_total": 1.5, "memory_peak": 400})]


def sensor_events(index: int) -> List[tuple]:
    return [(T0 - 1, "START", {"role": "sensor", "start_at": T0}),
            *[(T0 + j + 1, "STATISTIC", {"window": j, "samples": 40, "bytes": 30000}) for j in range(2)],
            (T0 + 2.1, "DONE", {"samples": 80, "bytes": 60000, "cpu_total": 0.5, "memory_peak": 50})]


def write_log(run_dir: Path, ident: str, events: List[tuple]) -> None:
    lines = [json.dumps({"node": ident, "type": kind, "payload": payload, "ts": ts}) for ts, kind, payload in events]
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "logs" / f"{ident}.jsonl").write_text("".join(line + "\n" for line in lines))


def handmade_logs() -> Dict[str, List[tuple]]:
    """Every process's events of the hand-written run; the root's CONNECTIONs mirror the workers'."""
    logs = {"w1": worker_events("w1", own=0, delay=0.0), "w2": worker_events("w2", own=1, delay=0.3),
            "cloud": cloud_events(), "sensor0": sensor_events(0), "sensor1": sensor_events(1)}
    mirrored = [(ts, kind, {**payload, "peer": worker,
                            "direction": {"sent": "received", "received": "sent"}[payload["direction"]]})
                for worker in ("w1", "w2") for ts, kind, payload in logs[worker] if kind == "CONNECTION"]
    logs["root"] = sorted(root_events() + mirrored, key=lambda event: event[0])
    return logs


def write_handmade_run(run_dir: Path, logs: Dict[str, List[tuple]] = None) -> Path:
    """A run directory with ``SPEC`` and the hand-written logs (``handmade_logs()`` by default)."""
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text(SPEC)
    for ident, events in (logs or handmade_logs()).items():
        write_log(run_dir, ident, events)
    return run_dir


@pytest.fixture
def handmade(tmp_path) -> Path:
    return write_handmade_run(tmp_path / "run")


def test_a_whole_run_gives_every_metric(handmade):
    metrics = json.loads(write_metrics(handmade).read_text())
    assert metrics["completeness"] == {"complete": True, "missing": []}
    root = metrics["accuracy"]["nodes"]["root"]
    assert root["t"] == pytest.approx([1.3, 1.5, 2.3, 2.5, 3.8]) and root["value"] == [0.1, 0.3, 0.3, 0.6, 0.605]
    assert metrics["convergence"] == {"node": "root", "final": 0.605, "tolerance": 0.01,
                                      "time_s": pytest.approx(2.5)}
    latency = metrics["latency"]
    # window j finished by both at T0 + j + 1.3; back at each worker's next pull, or the final one at T0 + 3.5
    assert latency["workers"]["w1"]["per_window"] == pytest.approx([1.96 - 1.3, 3.5 - 2.3])
    assert latency["workers"]["w2"]["per_window"] == pytest.approx([2.26 - 1.3, 3.5 - 2.3])
    assert latency["seconds"] == pytest.approx(1.2) and latency["complete"]
    lag = metrics["lag"]["nodes"]["root"]   # the cloud: 0.4 at 1.1 s, 0.7 from 2.1 s on
    assert lag["t"] == pytest.approx([1.3, 1.5, 2.3, 2.5, 3.8])
    assert lag["value"] == pytest.approx([0.46 - 0.1, 0.52 - 0.3, 0.4, 0.1, 0.095])


def test_bytes_per_link_and_message_class_from_the_logs(handmade):
    links = compute_metrics(handmade)["links"]
    by_link = {item["link"]: item for item in links["items"]}
    w1 = by_link["w1-root"]
    assert (w1["up_bytes"], w1["down_bytes"], w1["messages"]) == (2 * 100 + 2 * 1000 + 60, 2 * 1000 + 2 * 50 + 50, 10)
    assert w1["by_class"] == {"model pull": 2 * 1100, "update push": 2 * 1050, "control": 110}
    assert w1["params"] == {"bw_mbit": 10.0, "delay_ms": 5.0, "jitter_ms": 0.0, "loss_pct": 0.0, "queue": None}
    assert by_link["sensor0-w1"]["by_class"] == {"sensor data": 60000} and by_link["cloud-root"]["bytes"] == 0
    assert links["source"] == "node logs" and links["top_level_bytes"] == links["tree_bytes"] == 2 * 4410
    assert links["total_bytes"] == 2 * 4410 + 2 * 60000


def test_resources_own_labels_and_summary(handmade):
    metrics = compute_metrics(handmade)
    w1 = metrics["nodes"]["w1"]
    assert (w1["role"], w1["parent"], w1["end"], w1["windows"], w1["samples"]) == ("worker", "root", "DONE", 2, 80)
    assert (w1["cpu_seconds"], w1["memory_peak_bytes"], w1["resource_source"]) == (3.0, 200, "process logs")
    assert metrics["nodes"]["root"]["merges"] == 2 and metrics["nodes"]["sensor1"]["parent"] == "w2"
    own = metrics["own_vs_other"]["workers"]["w2"]
    assert own["own_labels"] == [1] and own["own"] == [1.0, 1.0, 1.0] and own["other"] == pytest.approx([0.2, 0.3, 0.5])
    summary = metrics["summary"]
    assert summary["final_root"] == 0.605 and summary["final_cloud"] == 0.7
    assert summary["root_lag_final"] == pytest.approx(0.095) and summary["cpu_seconds_nodes"] == 2.5 + 3.0 + 3.0


def test_cgroup_accounting_wins_over_the_logs(handmade):
    usage = {"w1": {"cpu_seconds": 4.5, "memory_peak_bytes": 5000}}
    (handmade / "manifest.json").write_text(json.dumps({"tag": "t", "backends": {"switch": "lxbr"},
                                                        "cgroup_usage": usage}))
    metrics = compute_metrics(handmade)
    w1 = metrics["nodes"]["w1"]
    assert (w1["cpu_seconds"], w1["memory_peak_bytes"], w1["resource_source"]) == (4.5, 5000, "cgroup")
    assert w1["cpu_seconds_logged"] == 3.0 and metrics["run"]["backends"] == {"switch": "lxbr"}


def test_a_run_cut_short_says_what_is_missing(tmp_path):
    logs = handmade_logs()
    logs["w2"] = [e for e in logs["w2"] if e[0] < T0 + 2] + [(T0 + 2.05, "STOP", {"signal": "SIGINT"})]
    logs["cloud"] = logs["cloud"][:2]
    del logs["sensor1"]
    run_dir = write_handmade_run(tmp_path / "run", logs)
    with open(run_dir / "logs" / "root.jsonl", "a") as log:
        log.write('{"node": "root", "type": "STATI')
    metrics = json.loads(write_metrics(run_dir).read_text())
    missing = metrics["completeness"]["missing"]
    assert not metrics["completeness"]["complete"]
    assert "sensor1: no log (logs/sensor1.jsonl); the process never started" in missing
    assert "root: line 25 of its log is unreadable (cut short?)" in missing
    assert {"w2: stopped by SIGINT", "cloud: its log ends without DONE", "w2: 1 of 2 windows"} <= set(missing)
    assert metrics["latency"]["missing"] == ["window 1: never finished by w2",
                                             "w2: never received a model holding every worker's window 0"]
    assert metrics["latency"]["seconds"] == pytest.approx(1.96 - 1.3)
    assert metrics["nodes"]["sensor1"]["end"] == "no log" and metrics["nodes"]["sensor1"]["cpu_seconds"] is None
    assert metrics["lag"]["nodes"]["root"]["value"][-1] == pytest.approx(0.4 - 0.605)


def test_a_directory_without_a_spec_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        compute_metrics(tmp_path)


# ---------------------------------------------------------------- real processes on loopback

LOOPBACK_TREE = """\
  - {id: root}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1]}
"""
LOOPBACK_WINDOWS = 3


def loopback_run(runs_dir: Path) -> Path:
    """Root, two workers and the cloud run on the loopback backend: 3 windows of 1 s, every
    process finished; the run directory."""
    spec = run_spec(LOOPBACK_TREE, cloud=True, limit=LOOPBACK_WINDOWS, rate="100/s") + "network: {backend: loopback}\n"
    summary = run_experiment(load_spec_text(spec), runs_dir, say=lambda _: None)
    assert summary["completed"], summary
    return Path(summary["run_dir"])


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    return loopback_run(tmp_path_factory.mktemp("metrics"))


def test_metrics_of_a_real_run(real_run):
    metrics = compute_metrics(real_run)
    assert metrics["completeness"]["complete"], metrics["completeness"]
    latency = metrics["latency"]
    assert latency["complete"] and 0 < latency["seconds"] < 5
    assert all(len(w["per_window"]) == LOOPBACK_WINDOWS for w in latency["workers"].values())
    root = metrics["accuracy"]["nodes"]["root"]
    assert root["value"][-1] > root["value"][0] and np.all(np.diff(root["t"]) >= 0)
    assert metrics["lag"]["nodes"]["w1"]["t"] and metrics["summary"]["final_cloud"] > 0.1
    logged = sum(e.payload["bytes"] for e in RunLogs.read(real_run).events("w1", "CONNECTION")
                 if e.payload["direction"] == "sent")
    link = next(item for item in metrics["links"]["items"] if item["link"] == "w1-root")
    assert link["up_bytes"] == logged and link["by_class"]["update push"] > LOOPBACK_WINDOWS * 60_000
    for worker in ("w1", "w2"):
        node = metrics["nodes"][worker]
        assert node["windows"] == LOOPBACK_WINDOWS and node["samples"] == LOOPBACK_WINDOWS * 100
        assert node["cpu_seconds"] > 0 and node["memory_peak_bytes"] > 10 * 2 ** 20
        assert metrics["own_vs_other"]["workers"][worker]["own_labels"] == [int(worker[1]) - 1]


def fake_netcost(monkeypatch, result: dict) -> None:
    """Stand in for edgetestbed.analysis.netcost with a module whose network_cost returns ``result``."""
    module = types.ModuleType("edgetestbed.analysis.netcost")
    module.network_cost = lambda run_dir: result
    monkeypatch.setitem(sys.modules, "edgetestbed.analysis.netcost", module)


def test_bytes_measured_on_the_wire_replace_the_logged_ones(handmade, monkeypatch):
    items = [{"link": "w1-root", "kind": "tree", "ends": ["w1", "root"], "bytes": 5000, "up_bytes": 2000,
              "down_bytes": 3000, "by_class": {"model pull": 3100, "other": 1900}},
             {"link": "sensor0-w1", "kind": "sensor", "ends": ["sensor0", "w1"], "bytes": 70000}]
    fake_netcost(monkeypatch, {"source": "packet captures", "note": "IP bytes", "items": items, "tolerance": 0.02})
    assert compute_metrics(handmade)["links"]["source"] == "node logs", "no net/: the logs"
    (handmade / "net").mkdir()
    links = compute_metrics(handmade)["links"]
    assert (links["source"], links["items"], links["netcost"]) == ("packet captures", items, {
        "source": "packet captures", "note": "IP bytes", "tolerance": 0.02})
    assert (links["total_bytes"], links["tree_bytes"], links["top_level_bytes"]) == (75000, 5000, 5000)
    fake_netcost(monkeypatch, {"source": "packet captures", "note": "no net/meters.json"})
    links = compute_metrics(handmade)["links"]
    assert links["source"] == "node logs" and links["note"].endswith("network cost analysis: no net/meters.json")


def test_pace_is_kept_while_every_sample_leaves_within_the_window_grace(tmp_path):
    """Sensors' ``behind`` decides; workers' lateness is reported (w2 trains 0.3 s after each window)."""
    def with_behind(behind_by_sensor: Dict[str, List[float]]) -> Dict[str, Any]:
        logs = handmade_logs()
        for sensor, behind in behind_by_sensor.items():
            logs[sensor] = [(ts, kind, {**payload, "behind": behind[payload["window"]]} if kind == "STATISTIC"
                             else payload) for ts, kind, payload in logs[sensor]]
        return compute_metrics(write_handmade_run(tmp_path / str(len(list(tmp_path.iterdir()))), logs))["pace"]

    on_time = with_behind({"sensor0": [0.0, 0.01], "sensor1": [0.0, 0.0]})
    assert on_time["kept"] and on_time["tolerance_s"] == 0.1 and on_time["sensor_behind_max_s"] == 0.01
    assert on_time["window_late_max_s"] == pytest.approx(0.3) and on_time["worker"] == "w2"
    assert on_time["window_late_median_s"] == pytest.approx(0.3)
    late = with_behind({"sensor0": [0.0, 0.01], "sensor1": [0.05, 0.4]})
    assert late["kept"] is False and (late["sensor"], late["sensor_window"]) == ("sensor1", 1)
    assert late["sensor_behind_max_s"] == 0.4
    assert compute_metrics(write_handmade_run(tmp_path / "old"))["pace"]["kept"] is None  # no sensor said
    # A sensor a whole window late says BEHIND at once; the run stops it before that window's STATISTIC.
    stopped = handmade_logs()
    stopped["sensor1"].append((stopped["sensor1"][-1][0], "BEHIND", {"window": 1, "behind": 1.5}))
    pace = compute_metrics(write_handmade_run(tmp_path / "stopped", stopped))["pace"]
    assert pace["kept"] is False
    assert (pace["sensor"], pace["sensor_window"], pace["sensor_behind_max_s"]) == ("sensor1", 1, 1.5)


def test_a_process_life_begins_at_ready_and_in_older_runs_at_start(tmp_path):
    """READY is a process's first event and its START follows directly: one life, not two.
    A restart is a new READY; logs from before the start barrier split at START."""
    logs = handmade_logs()
    first = logs["w1"]
    restarted_at = first[-1][0] + 1
    logs["w1"] = [(T0 - 2, "READY", {"pid": 1}), *first,
                  (restarted_at, "READY", {"pid": 2}), (restarted_at + 0.1, "START", {"role": "worker"})]
    lives = RunLogs.read(write_handmade_run(tmp_path / "barrier", logs)).lives("w1")
    assert [[e.type for e in life][:2] for life in lives] == [["READY", "START"], ["READY", "START"]]
    assert len(lives[0]) == len(first) + 1
    old = RunLogs.read(write_handmade_run(tmp_path / "old")).lives("w1")
    assert len(old) == 1 and old[0][0].type == "START"
