"""Network cost analysis: the reconciliation of a link's wire sources (pcap, interface
counters, OpenFlow port statistics, logged payloads) and the cost model, on hand-made run
directories (no root); then, on a real emulated network, the seeds' 1+3 tree with the simple
policy against the cost model. How the pcap reader classifies traffic: test_pcap."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from edgetestbed.analysis.netcost import SEGMENT_HEADERS, TCP_OVERHEAD, expected_time, network_cost
from edgetestbed.analysis.pcap import CONTROL, DOWN, MODEL_PULL, OTHER, SENSOR_DATA, UP, UPDATE_PUSH
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec
from test_meters import while_busy
from test_pcap import (CHILD_IP, CHILD_MAC, MSS, NODE_PORT, PARENT_IP, PARENT_MAC, SENSOR_IP, SENSOR_PORT,
                       STRANGER_MAC, Capture, exchange_capture)


# ---------------------------------------------------------------- a hand-made run directory

SPEC = """
name: handmade
seed: 1
application: {name: mnist_mlp}
data: {dataset: mnist, partition: iid}
windows: {interval: 1s, limit: 1}
defaults: {link: {bw: 8Mbit, delay: 10ms}}
sensors: {rate: 10/s}
nodes:
  - id: root
  - {id: w1, parent: root, sensors: [0]}
network: {switch: ovs-user}
"""
MODEL_ARRAYS = 4 * MSS + 300 - 200   # the MODEL/PUSH message sizes of exchange_capture(), less a header
COUNTERS_FIRST, COUNTERS_LAST = 999.5, 1500.0   # the counters' first and last samples; frames from 1000.001


def frames_counted(capture: Capture, direction: str) -> tuple[int, int]:
    """(frame bytes, frames) of ``direction`` as an interface counter would count them: those
    between its first and last samples."""
    frames = [f for f in capture.frames if (f.src == CHILD_MAC) == (direction == UP) and f.src != STRANGER_MAC
              and COUNTERS_FIRST <= f.time <= COUNTERS_LAST]
    return sum(len(f) for f in frames), len(frames)


def sensor_capture(outside: int) -> Capture:
    """The sensor link's capture: an iperf3-like flow of 100 segments up, with ``outside``
    segments more both before the counters' first sample and after their last."""
    capture = Capture()
    server = (PARENT_IP, 5201)
    if outside:
        capture.clock = COUNTERS_FIRST - 0.2   # the captures start before the counters
        capture.message(True, outside * MSS, OTHER, server=server)
        capture.clock = 1000.0
    capture.message(True, 100 * MSS, OTHER, server=server)
    if outside:
        capture.clock = COUNTERS_LAST          # ... and stop after them
        capture.message(True, outside * MSS, OTHER, server=server)
    return capture


def write_run(run_dir: Path, sensor_skew: float = 1.0, actions: list = None, captured: list = None,
              windows: int = 1, switch: str = "ovs-user", outside: int = 0) -> tuple[Capture, Capture]:
    """A run directory as meters and the processes would leave it: the tree link's capture agrees
    with the counters; the sensor link's counters say ``sensor_skew`` times what it captured.
    With ``actions`` (see ``protocol_actions``) w1 logged those and the tree link captured
    ``captured`` (default: the same); else one pull and one push, no START or STATISTIC.
    ``switch: lxbr``: no OpenFlow port statistics (Linux bridges). ``outside``: segments the
    sensor link captured before the counters' first sample and as many after their last."""
    net = run_dir / "net"
    net.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text(SPEC.replace("limit: 1", f"limit: {windows}").replace("ovs-user", switch))
    (run_dir / "wiring.json").write_text(json.dumps({"endpoints": {
        "root": {"host": PARENT_IP, "port": NODE_PORT}, "w1": {"host": CHILD_IP, "port": NODE_PORT},
        "sensor0": {"host": SENSOR_IP, "port": SENSOR_PORT}}}))
    tree = exchange_capture() if actions is None else protocol_capture(actions if captured is None else captured)
    sensor = sensor_capture(outside)
    tree.write(net / "w1-root.pcap")
    sensor.write(net / "sensor0-w1.pcap")
    params = {"bw_mbit": 8.0, "delay_ms": 10.0, "jitter_ms": 0.0, "loss_pct": 0.0, "queue": None}
    links = [{"label": "w1-root", "kind": "tree", "ends": ["w1", "root"], "params": params, "pcap": "w1-root.pcap",
              "capture": "s1-eth1",
              "interfaces": [{"name": "s2-eth1", "host": None}, {"name": "s1-eth1", "host": None}],
              "a_macs": [CHILD_MAC], "b_macs": [PARENT_MAC],
              "openflow": {"dpid": "0000000000000001", "port": 2} if switch != "lxbr" else None},
             {"label": "sensor0-w1", "kind": "sensor", "ends": ["sensor0", "w1"], "params": params,
              "pcap": "sensor0-w1.pcap", "capture": "s2-eth2", "interfaces": [{"name": "d0-eth0", "host": "d0"},
                                                                                {"name": "s2-eth2", "host": None}],
              "a_macs": [CHILD_MAC], "b_macs": [PARENT_MAC], "openflow": None}]
    captures = {"w1-root": {"captured": 1, "received": 1, "dropped": 0}}
    (net / "meters.json").write_text(json.dumps({"links": links, "controller": {"used": True}, "captures": captures}))
    write_counters(net, tree, sensor, sensor_skew, openflow=switch != "lxbr")
    write_logs(run_dir, None if actions is None else protocol_logs(actions))
    return tree, sensor


def write_counters(net: Path, tree: Capture, sensor: Capture, sensor_skew: float, openflow: bool = True) -> None:
    def interface(rx: tuple, tx: tuple) -> dict:
        return {"rx_bytes": rx[0], "rx_packets": rx[1], "rx_errors": 0, "rx_dropped": 0,
                "tx_bytes": tx[0], "tx_packets": tx[1], "tx_errors": 0, "tx_dropped": 0}
    up, down = frames_counted(tree, UP), frames_counted(tree, DOWN)
    sensor_up = frames_counted(sensor, UP)
    skewed = (int(sensor_up[0] * sensor_skew), sensor_up[1])
    zero = interface((0, 0), (0, 0))
    end = {"s1-eth1": interface(up, down), "s2-eth1": interface(down, up),
           "s2-eth2": interface(skewed, frames_counted(sensor, DOWN)), "d0-eth0": interface((0, 0), sensor_up)}
    samples = [{"time": COUNTERS_FIRST, "sample": "start", "interfaces": {name: zero for name in end}},
               {"time": COUNTERS_LAST, "sample": "end", "interfaces": end}]
    (net / "counters.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    if not openflow:
        return
    port = {"dpid": "0000000000000001", "port": 2, "name": "s1-eth1"}
    stats = [{**port, "time": 999.0, "rx_bytes": 0, "rx_packets": 0, "tx_bytes": 0, "tx_packets": 0},
             {**port, "time": 1600.0, "rx_bytes": up[0], "rx_packets": up[1], "tx_bytes": down[0],
              "tx_packets": down[1]},
             {**port, "time": 1601.0, "rx_bytes": 2 ** 64 - 1, "rx_packets": None, "tx_bytes": None,
              "tx_packets": None}]
    (net / "portstats.jsonl").write_text("".join(json.dumps(s) + "\n" for s in stats) + '{"cut short')


MODEL_MESSAGE = {"bytes": MODEL_ARRAYS + 200, "payload_bytes": MODEL_ARRAYS}


def protocol_actions(windows: int, sync_pulls: int, server: bool = False) -> list:
    """What a child of the simple policy does: a pull on joining; per step a pull, a push and its
    STATISTIC (a server logs it before the push, a worker after); then ``sync_pulls`` pulls."""
    step = ["pull", "step", "push"] if server else ["pull", "push", "step"]
    return ["start", "pull"] + step * windows + ["pull"] * sync_pulls + ["done"]


def protocol_capture(actions: list) -> Capture:
    """The tree link's capture of ``actions``: a TCP handshake, then every exchange."""
    capture = Capture()
    for up, flags in ((True, "S"), (False, "SA"), (True, "A")):
        capture.tcp(up, 0, CONTROL, flags=flags)
    for action in actions:
        if action in ("pull", "resent pull"):
            capture.tcp(True, 120, MODEL_PULL)
            capture.message(False, MODEL_ARRAYS + 200, MODEL_PULL)
        elif action == "push":
            capture.message(True, MODEL_ARRAYS + 200, UPDATE_PUSH)
            capture.tcp(False, 80, UPDATE_PUSH)
        elif action == "done":
            capture.tcp(True, 100, CONTROL)
            capture.tcp(False, 80, CONTROL)
    return capture


def protocol_logs(actions: list) -> list:
    """w1's log of ``actions``, 0.1 s apart: (ts, type, payload); a ``resent pull`` keeps its seq."""
    events, seq, window, ts = [], 0, 0, 10.0
    replies = {"pull": ("PULL", 120, "MODEL", MODEL_MESSAGE), "resent pull": ("PULL", 120, "MODEL", MODEL_MESSAGE),
               "push": ("PUSH", MODEL_MESSAGE, "ACK", 80), "done": ("DONE", 100, "ACK", 80)}
    for action in actions:
        ts += 0.1
        if action == "start":
            events.append((ts, "START", {"role": "worker"}))
        elif action == "step":
            events.append((ts, "STATISTIC", {"window": window, "samples": 10}))
            window += 1
        else:
            seq += action != "resent pull"
            request, request_size, reply, reply_size = replies[action]
            events += [(ts, "CONNECTION", connection("sent", request, seq, request_size)),
                       (ts + 0.05, "CONNECTION", connection("received", reply, seq, reply_size))]
    return events


def connection(direction: str, kind: str, seq: int, size) -> dict:
    sizes = size if isinstance(size, dict) else {"bytes": size, "payload_bytes": 0}
    return {"direction": direction, "peer": "root", "kind": kind, "seq": seq, **sizes}


def write_logs(run_dir: Path, w1: list = None) -> None:
    """w1's log (default: a pull and a push) and root's, which mirrors w1's CONNECTION events."""
    if w1 is None:
        w1 = [(10.0, "CONNECTION", connection("sent", "PULL", 1, 120)),
              (10.05, "CONNECTION", connection("received", "MODEL", 1, MODEL_MESSAGE)),
              (11.0, "CONNECTION", connection("sent", "PUSH", 2, MODEL_MESSAGE)),
              (11.04, "CONNECTION", connection("received", "ACK", 2, 80))]
    mirrored = {"sent": "received", "received": "sent"}
    root = [(ts, kind, {**fields, "peer": "w1", "direction": mirrored[fields["direction"]]})
            for ts, kind, fields in w1 if kind == "CONNECTION"]
    logs = {"w1": w1, "root": root, "sensor0": [(10.0, "STATISTIC", {"window": 0, "samples": 10, "bytes": 140_000})]}
    (run_dir / "logs").mkdir()
    for ident, events in logs.items():
        lines = [json.dumps({"node": ident, "type": kind, "payload": payload, "ts": ts})
                 for ts, kind, payload in events]
        (run_dir / "logs" / f"{ident}.jsonl").write_text("".join(line + "\n" for line in lines))


def test_every_source_per_link_and_direction(tmp_path):
    tree, _ = write_run(tmp_path / "run")
    result = network_cost(tmp_path / "run")
    item = result["items"][0]
    assert item["link"] == "w1-root" and item["ends"] == ["w1", "root"]
    up_ip = sum(v for (d, _), v in tree.expected.items() if d == UP)
    assert item["up_bytes"] == up_ip and item["up"]["pcap"]["bytes"] == up_ip
    for source in ("counters", "openflow"):  # like for like: frames less 14 bytes each
        assert item["up"][source]["bytes"] == up_ip
    assert item["up"]["disagreement"] == 0.0 and item["total"]["disagreement"] == 0.0
    assert item["up"]["pcap"]["counter_interval_bytes"] == up_ip   # every frame is within the counters' interval
    assert item["total"]["pcap"]["counter_interval_bytes"] == item["bytes"]
    assert item["up"]["openflow"]["packets"] == item["up"]["pcap"]["packets"]  # the 2^64-1 sample is ignored
    assert item["down"]["far_end"]["interface"] == "s2-eth1" and item["down"]["far_end"]["bytes"] > 0
    assert item["up"]["payload"] == {"message_bytes": 120 + MODEL_ARRAYS + 200, "array_bytes": MODEL_ARRAYS,
                                     "messages": 2}
    assert item["up"]["overhead"] == pytest.approx(item["up"]["pcap"]["wire_bytes"] / (120 + MODEL_ARRAYS + 200))
    assert item["by_class"][MODEL_PULL] == tree.expected[(UP, MODEL_PULL)] + tree.expected[(DOWN, MODEL_PULL)]
    assert result["sources"] == ["pcap", "payload", "counters", "openflow"]
    assert result["controller"] == {"used": True}


def test_what_a_node_sent_is_read_from_its_log_or_else_from_its_receivers(tmp_path):
    write_run(tmp_path / "run")
    run = RunLogs.read(tmp_path / "run")
    assert [e.payload["kind"] for e in run.sent("w1", "root")] == ["PULL", "PUSH"]
    assert [e.payload["kind"] for e in run.sent("root", "w1", "MODEL", "NOT_MODIFIED")] == ["MODEL"]
    assert [e.payload["kind"] for e in run.connections("w1", "root")] == ["PULL", "MODEL", "PUSH", "ACK"]
    run.logs["w1"] = []   # w1 left no log: only with or_received does root's log stand in for it
    assert run.sent("w1", "root") == []
    received = run.sent("w1", "root", or_received=True)
    assert [(e.node, e.payload["kind"], e.payload["direction"]) for e in received] == \
        [("root", "PULL", "received"), ("root", "PUSH", "received")]


def test_links_beyond_the_tolerance_are_flagged_with_the_numbers(tmp_path):
    write_run(tmp_path / "run", sensor_skew=1.05)
    meters = tmp_path / "run" / "net" / "meters.json"
    described = json.loads(meters.read_text())
    described["captures"]["sensor0-w1"] = {"captured": 5, "received": 9, "dropped": 2}
    meters.write_text(json.dumps(described))
    result = network_cost(tmp_path / "run")
    sensor = result["items"][1]
    assert sensor["bytes"] > 100_000
    assert sensor["up"]["openflow"] is None and sensor["total"]["openflow"] is None
    assert sensor["up"]["disagreement"] == pytest.approx(0.05 / 1.05, rel=0.02)
    assert result["flagged"] == ["sensor0-w1"] and sensor["flagged"]
    assert any("wire sources disagree by 4.8%" in flag and "counters" in flag for flag in sensor["flags"])
    assert "the kernel dropped 2 packets before tcpdump took them" in sensor["flags"]
    assert sensor["up"]["payload"] == {"message_bytes": 140_000, "array_bytes": None, "messages": 1}
    assert "cost_model" not in sensor
    assert result["max_disagreement"] == pytest.approx(sensor["total"]["disagreement"])


def test_frames_before_the_counters_first_sample_and_after_their_last_are_not_a_disagreement(tmp_path):
    """The captures start before the counters' first sample and stop after their last: what
    they hold outside that interval is the link's cost, but not what the counters counted."""
    _, sensor = write_run(tmp_path / "run", outside=4)
    item = network_cost(tmp_path / "run")["items"][1]
    up = item["up"]
    assert not item["flagged"], item["flags"]
    assert up["disagreement"] == 0.0 and item["total"]["disagreement"] == 0.0
    captured = [len(f) - 14 for f in sensor.frames if f.src == CHILD_MAC]   # IP bytes, as the reader counts
    inside = sum(len(f) - 14 for f in sensor.frames
                 if f.src == CHILD_MAC and COUNTERS_FIRST <= f.time <= COUNTERS_LAST)
    assert up["pcap"]["bytes"] == item["up_bytes"] == sum(captured)
    assert up["pcap"]["bytes"] - inside > 0.05 * inside   # the whole capture would be 5 % over the counters
    assert up["pcap"]["counter_interval_bytes"] == inside == up["counters"]["bytes"]
    assert up["pcap"]["counter_interval_packets"] == up["counters"]["packets"] < up["pcap"]["packets"]


def test_a_difference_within_the_counters_interval_is_still_flagged(tmp_path):
    write_run(tmp_path / "run", sensor_skew=0.97, outside=4)
    item = network_cost(tmp_path / "run")["items"][1]
    assert item["up"]["disagreement"] == pytest.approx(0.03, rel=0.02)
    assert any("in the counters' interval), counters" in flag for flag in item["flags"]), item["flags"]


@pytest.mark.parametrize("server, sync_pulls", [(False, 3), (False, 0), (True, 2)])
def test_the_cost_model_counts_every_transfer_the_protocol_makes(tmp_path, server, sync_pulls):
    """A pull on joining, a pull and a push per step, and the final synchronisation's pulls as
    logged (none when the child's own last window completes the model): 2 × windows + 2 was wrong."""
    windows = 3
    write_run(tmp_path / "run", actions=protocol_actions(windows, sync_pulls, server), windows=windows)
    item = network_cost(tmp_path / "run")["items"][0]
    model = item["cost_model"]
    transfers = 1 + 2 * windows + sync_pulls
    assert (model["joins"], model["steps"], model["final_sync_pulls"]) == (1, windows, sync_pulls)
    assert model["transfers"] == model["logged_transfers"] == model["captured_transfers"] == transfers
    assert model["extra_transfers"] == 0
    assert (model["model_bytes"], model["message_bytes"]) == (MODEL_ARRAYS, MODEL_ARRAYS + 200)
    assert model["simulator_estimate"] == 2 * windows * MODEL_ARRAYS
    small = statistics.median([120] * (1 + windows + sync_pulls) + [80] * (windows + 1))  # PULLs; ACKs (one of DONE)
    expected = transfers * ((MODEL_ARRAYS + 200) * (1 + TCP_OVERHEAD) + small + 2 * SEGMENT_HEADERS)
    assert model["expected_bytes"] == round(expected)
    assert model["ratio"] == pytest.approx(item["wire_bytes"] / expected)
    assert abs(model["ratio"] - 1) < 0.02 and model["within_tolerance"]


@pytest.mark.parametrize("captured, extra", [(protocol_actions(3, 3) + ["pull"] * 3, 3), (protocol_actions(3, 0), -3)])
def test_a_capture_the_logged_transfers_do_not_explain_is_off(tmp_path, captured, extra):
    """Three model messages more on the wire than the logs explain, or three fewer: OFF."""
    write_run(tmp_path / "run", actions=protocol_actions(3, 3), captured=captured, windows=3)
    model = network_cost(tmp_path / "run")["items"][0]["cost_model"]
    assert (model["transfers"], model["logged_transfers"]) == (10, 10)
    assert model["captured_transfers"] == 10 + extra and model["extra_transfers"] == extra
    assert model["ratio"] == pytest.approx(1 + extra / 10, abs=0.03) and not model["within_tolerance"]


def test_a_resent_pull_is_one_final_sync_pull_and_an_extra_transfer(tmp_path):
    actions = protocol_actions(2, 1)
    actions.insert(-1, "resent pull")
    write_run(tmp_path / "run", actions=actions, windows=2)
    model = network_cost(tmp_path / "run")["items"][0]["cost_model"]
    assert (model["final_sync_pulls"], model["transfers"]) == (1, 6)
    assert model["logged_transfers"] == model["captured_transfers"] == 7 and model["extra_transfers"] == 1


def test_exchange_times(tmp_path):
    write_run(tmp_path / "run")
    item = network_cost(tmp_path / "run")["items"][0]
    pull, push = item["exchanges"]["items"]
    assert (pull["kind"], pull["bytes"], pull["time_s"]) == ("pull", 120 + MODEL_ARRAYS + 200, pytest.approx(0.05))
    assert pull["expected_s"] == pytest.approx(0.020 + pull["bytes"] * (1 + TCP_OVERHEAD) * 8 / 8e6)
    assert push["time_s"] == pytest.approx(0.04) and item["exchanges"]["push"]["count"] == 1
    assert expected_time(1000, {"bw_mbit": None, "delay_ms": 5.0}) == pytest.approx(0.01)


def test_the_note_names_only_the_wire_sources_the_run_had(tmp_path):
    write_run(tmp_path / "ovs")
    assert network_cost(tmp_path / "ovs")["note"].endswith(
        "checked against interface counters and OpenFlow port statistics")
    write_run(tmp_path / "lxbr", switch="lxbr")
    result = network_cost(tmp_path / "lxbr")
    assert "openflow" not in result["sources"] and result["items"][0]["up"]["openflow"] is None
    assert result["note"].endswith("switch port, checked against interface counters")
    (tmp_path / "lxbr" / "net" / "counters.jsonl").unlink()
    assert "no other wire source" in network_cost(tmp_path / "lxbr")["note"]


def test_other_policies_get_no_cost_model_and_unmeasured_runs_say_so(tmp_path):
    write_run(tmp_path / "run")
    spec = tmp_path / "run" / "spec.yaml"
    spec.write_text(spec.read_text().replace("link: {bw: 8Mbit, delay: 10ms}}",
                                             "link: {bw: 8Mbit, delay: 10ms}, policy: {type: window, every: 2}}"))
    assert load_spec(spec).node("w1").policy.type == "window"
    assert network_cost(tmp_path / "run")["items"][0]["cost_model"] == {"policy": "window", "applies": False}
    (tmp_path / "bare").mkdir()
    assert "items" not in network_cost(tmp_path / "bare")


# ---------------------------------------------------------------- on a real emulated network

@pytest.mark.root
def test_the_seeds_tree_with_the_simple_policy_costs_what_the_model_says(tmp_path):
    spec = load_spec(Path(__file__).parent.parent / "examples" / "seeds-1ps-3w.yaml")
    summary = while_busy(lambda: run_experiment(spec, tmp_path, say=lambda line: None))
    assert summary["completed"], summary
    result = network_cost(Path(summary["run_dir"]))
    tree = [item for item in result["items"] if item["kind"] == "tree"]
    assert [item["link"] for item in tree] == ["w1-root", "w2-root", "w3-root"]
    for item in tree:
        model = item["cost_model"]
        assert model["within_tolerance"], (item["link"], model)
        assert model["captured_transfers"] == model["logged_transfers"] >= model["transfers"]
        assert item["exchanges"]["pull"]["count"] >= spec.windows.limit
    assert result["flagged"] == [] and result["max_disagreement"] < 0.02
    assert set(result["sources"]) >= {"pcap", "counters", "payload"}
    for item in result["items"]:
        if item["kind"] == "sensor":
            assert item["by_class"][SENSOR_DATA] > 0.95 * item["bytes"]
