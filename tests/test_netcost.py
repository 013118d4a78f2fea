"""Network cost analysis: the pcap reader and the reconciliation on hand-made captures and runs
(no root); then, on real emulated networks, a synthetic ZeroMQ exchange classified by message
class, and the seeds' 1+3 tree with the simple policy against the cost model."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import ICMPv6ND_RS, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from edgetestbed.analysis.netcost import SEGMENT_HEADERS, TCP_OVERHEAD, expected_time, network_cost
from edgetestbed.analysis.pcap import (CONTROL, DOWN, MODEL_PULL, OTHER, SENSOR_DATA, UNKNOWN, UP, UPDATE_PUSH,
                                       read_link)
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.process.protocol import NOT_MODIFIED, PULL, Message, encode, wire_bytes
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec
from test_meters import metered, while_busy
from test_network import CAPS, SPEC as NETWORK_SPEC

CHILD_MAC, PARENT_MAC, STRANGER_MAC = "00:00:00:00:00:02", "00:00:00:00:00:01", "66:66:66:66:66:66"
CHILD_IP, PARENT_IP, SENSOR_IP = "10.0.0.2", "10.0.0.1", "10.1.0.1"
NODE_PORT, SENSOR_PORT = 5555, 5556
LISTENERS = {(PARENT_IP, NODE_PORT): "node", (SENSOR_IP, SENSOR_PORT): "sensor"}
THRESHOLD = 2000
MSS = 1448


class Capture:
    """Hand-made frames of one link (child side ``a``, parent side ``b``), and the bytes each
    direction and message class should add up to."""

    def __init__(self) -> None:
        self.frames: list = []
        self.expected: dict = defaultdict(int)
        self.clock = 1000.0

    def tcp(self, up: bool, payload: int, message_class: str, flags: str = "PA", server: tuple = None,
            client_port: int = 40000) -> None:
        server_ip, server_port = server or (PARENT_IP, NODE_PORT)
        src, dst = (CHILD_IP, server_ip) if up else (server_ip, CHILD_IP)
        sport, dport = (client_port, server_port) if up else (server_port, client_port)
        layer = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, options=[("Timestamp", (1, 1))])
        self._frame(up, layer / Raw(b"x" * payload) if payload else layer, message_class)

    def _frame(self, up: bool, layer, message_class: str) -> None:
        frame = Ether(src=CHILD_MAC if up else PARENT_MAC, dst=PARENT_MAC if up else CHILD_MAC) / layer
        self.clock += 0.001
        frame.time = self.clock
        self.frames.append(frame)
        self.expected[(UP if up else DOWN, message_class)] += len(frame) - 14

    def message(self, up: bool, size: int, message_class: str, server: tuple = None) -> None:
        """``size`` bytes in MSS segments, every second one acknowledged by the other side."""
        sent = 0
        while sent < size:
            self.tcp(up, min(MSS, size - sent), message_class, server=server)
            sent += MSS
            if (sent // MSS) % 2 == 0:
                self.tcp(not up, 0, message_class, flags="A", server=server)

    def write(self, path: Path) -> Path:
        wrpcap(str(path), self.frames)
        return path


def exchange_capture() -> Capture:
    """A child's connection to its parent: handshake, ZMTP greeting, a pull, a push, DONE, close;
    plus an iperf3 segment and an IPv6 router solicitation from an unknown MAC."""
    capture = Capture()
    for up, flags in ((True, "S"), (False, "SA"), (True, "A")):
        capture.tcp(up, 0, CONTROL, flags=flags)
    for up, size in ((True, 64), (False, 64), (True, 30), (False, 30)):   # greeting, READY
        capture.tcp(up, size, CONTROL)
    capture.tcp(True, 120, MODEL_PULL)                 # PULL
    capture.message(False, 4 * MSS + 300, MODEL_PULL)  # MODEL, acknowledged
    capture.message(True, 3 * MSS + 100, UPDATE_PUSH)  # PUSH, acknowledged
    capture.tcp(False, 80, UPDATE_PUSH)                # its ACK
    capture.tcp(True, 100, CONTROL)                    # DONE
    capture.tcp(False, 80, CONTROL)                    # its ACK
    for up in (True, False):
        capture.tcp(up, 0, CONTROL, flags="FA")
    capture.tcp(True, 1000, OTHER, server=(PARENT_IP, 5201))
    stranger = Ether(src=STRANGER_MAC, dst="33:33:00:00:00:02") / IPv6(src="fe80::1", dst="ff02::2") / ICMPv6ND_RS()
    stranger.time = capture.clock
    capture.frames.append(stranger)
    capture.expected[(UNKNOWN, OTHER)] += len(stranger) - 14
    return capture


def test_bursts_are_classified_by_endpoint_direction_and_size(tmp_path):
    capture = exchange_capture()
    traffic = read_link(capture.write(tmp_path / "link.pcap"), [CHILD_MAC], [PARENT_MAC], LISTENERS, THRESHOLD)
    found = {(d, c): t.bytes for d, classes in traffic.classes.items() for c, t in classes.items()}
    assert found == dict(capture.expected)
    assert dict(traffic.messages) == {MODEL_PULL: 1, UPDATE_PUSH: 1}
    assert traffic.directions[UP].bytes == sum(v for (d, _), v in capture.expected.items() if d == UP)
    assert traffic.directions[UP].packets == sum(1 for f in capture.frames if f.src == CHILD_MAC)
    assert traffic.first == pytest.approx(1000.001) and traffic.last == pytest.approx(capture.clock)


def not_modified_bytes() -> int:
    """The message bytes of a real ``NOT_MODIFIED`` reply (the header frame; no weights)."""
    reply = Message(PULL, "w1", seq=9, version=3).reply(NOT_MODIFIED, "root", version=7,
                                                        coverage={f"w{i}": 20 for i in range(20)}, ts=2.5)
    return wire_bytes(encode(reply))


def test_a_pull_answered_not_modified_is_control_not_model_pull(tmp_path):
    """A PULL answered NOT_MODIFIED carries no model: both its bursts are small, so both count as
    ``control`` (like DONE and its ACK) whatever comes before or after; ``model pull`` is left
    with the PULL answered by a MODEL only, and one model-carrying message."""
    reply = not_modified_bytes()
    assert reply < THRESHOLD
    capture = Capture()
    for up, flags in ((True, "S"), (False, "SA"), (True, "A")):
        capture.tcp(up, 0, CONTROL, flags=flags)
    capture.tcp(True, 120, CONTROL)                    # PULL ...
    capture.tcp(False, reply, CONTROL)                 # ... answered NOT_MODIFIED
    capture.tcp(True, 0, CONTROL, flags="A")           # its acknowledgement
    capture.message(True, 3 * MSS + 100, UPDATE_PUSH)  # PUSH, acknowledged
    capture.tcp(False, 80, UPDATE_PUSH)                # its ACK
    capture.tcp(True, 120, CONTROL)                    # PULL right after an ACK ...
    capture.tcp(False, reply, CONTROL)                 # ... answered NOT_MODIFIED
    capture.tcp(True, 120, MODEL_PULL)                 # PULL right after a NOT_MODIFIED ...
    capture.message(False, 4 * MSS + 300, MODEL_PULL)  # ... answered with a MODEL
    capture.tcp(True, 120, CONTROL)                    # PULL right after a MODEL ...
    capture.tcp(False, reply, CONTROL)                 # ... answered NOT_MODIFIED
    capture.tcp(True, 100, CONTROL)                    # DONE
    capture.tcp(False, 80, CONTROL)                    # its ACK
    traffic = read_link(capture.write(tmp_path / "nm.pcap"), [CHILD_MAC], [PARENT_MAC], LISTENERS, THRESHOLD)
    found = {(d, c): t.bytes for d, classes in traffic.classes.items() for c, t in classes.items()}
    assert found == dict(capture.expected)
    assert dict(traffic.messages) == {MODEL_PULL: 1, UPDATE_PUSH: 1}
    model_pull = traffic.classes[UP][MODEL_PULL].packets + traffic.classes[DOWN][MODEL_PULL].packets
    assert model_pull == 1 + 5 + 2   # the one PULL, the MODEL's five segments and their two acknowledgements


def test_sensor_connections_are_sensor_data_both_ways(tmp_path):
    capture = Capture()
    capture.message(True, 10 * MSS, SENSOR_DATA)  # the sensor (side a) publishes; the worker acknowledges
    for frame in capture.frames:                  # the sensor listens: swap roles of the hand-made flow
        frame[IP].src, frame[IP].dst = (SENSOR_IP, CHILD_IP) if frame.src == CHILD_MAC else (CHILD_IP, SENSOR_IP)
        frame[TCP].sport, frame[TCP].dport = ((SENSOR_PORT, 40000) if frame.src == CHILD_MAC
                                              else (40000, SENSOR_PORT))
    traffic = read_link(capture.write(tmp_path / "s.pcap"), [CHILD_MAC], [PARENT_MAC], LISTENERS, THRESHOLD)
    assert set(traffic.classes[UP]) == set(traffic.classes[DOWN]) == {SENSOR_DATA}
    assert traffic.classes[UP][SENSOR_DATA].bytes == capture.expected[(UP, SENSOR_DATA)]


def test_a_super_packet_counts_as_the_segments_it_becomes(tmp_path):
    capture = Capture()
    capture.tcp(True, 4 * MSS + 10, OTHER, server=(PARENT_IP, 5201))   # one GSO packet: five segments
    capture.tcp(True, 500, OTHER, server=(PARENT_IP, 5201))
    traffic = read_link(capture.write(tmp_path / "g.pcap"), [CHILD_MAC], [PARENT_MAC], {}, THRESHOLD)
    up = traffic.directions[UP]
    assert up.bytes == (4 * MSS + 10 + SEGMENT_HEADERS) + (500 + SEGMENT_HEADERS)
    assert up.wire_bytes == up.bytes + 4 * SEGMENT_HEADERS
    assert (up.packets, up.gso_packets) == (2, 1)


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


# ---------------------------------------------------------------- on real emulated networks

EXCHANGE = """
import sys, time, zmq
role, parent, sensor = sys.argv[1:4]
model, pulls, pushes, samples, sample = map(int, sys.argv[4:])
context = zmq.Context()
if role == "parent":
    router = context.socket(zmq.ROUTER)
    router.bind("tcp://*:5555")
    while True:
        identity, header, *arrays = router.recv_multipart()
        reply = [b'{"type":"MODEL"}', bytes(model)] if header == b'{"type":"PULL"}' else [b'{"type":"ACK"}']
        router.send_multipart([identity, *reply])
        if header == b'{"type":"DONE"}':
            break
elif role == "sensor":
    publisher = context.socket(zmq.PUB)
    publisher.bind("tcp://*:5556")
    time.sleep(1.5)  # the child subscribes meanwhile
    for n in range(samples):
        publisher.send_multipart([b'{"type":"SAMPLE"}', bytes(sample)])
else:
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(f"tcp://{sensor}:5556")
    for n in range(samples):
        subscriber.recv_multipart()
    dealer = context.socket(zmq.DEALER)
    dealer.connect(f"tcp://{parent}:5555")
    requests = [[b'{"type":"PULL"}']] * pulls + [[b'{"type":"PUSH"}', bytes(model)]] * pushes
    for request in requests + [[b'{"type":"DONE"}']]:
        dealer.send_multipart(request)
        dealer.recv_multipart()
context.destroy(linger=2000)
"""
MODEL, PULLS, PUSHES, SAMPLES, SAMPLE = 30_000, 3, 2, 60, 2_000


@pytest.mark.root
def test_a_zeromq_exchange_is_classified_on_the_wire(tmp_path):
    switch = "ovs-user" if CAPS.ovs_user.ok else "lxbr"
    with metered(NETWORK_SPEC.replace("SWITCH", switch), tmp_path) as (run, network, meters):
        root, w1, sensor = (network.host(ident) for ident in ("root", "w1", "sensor0"))
        (run.path / "wiring.json").write_text(json.dumps({"endpoints": {
            "root": {"host": root.IP(), "port": NODE_PORT}, "w1": {"host": w1.IP(), "port": NODE_PORT},
            "sensor0": {"host": sensor.IP(), "port": SENSOR_PORT}}}))
        numbers = [str(n) for n in (MODEL, PULLS, PUSHES, SAMPLES, SAMPLE)]
        processes = [host.popen([sys.executable, "-c", EXCHANGE, role, root.IP(), sensor.IP(), *numbers])
                     for host, role in ((root, "parent"), (sensor, "sensor"), (w1, "child"))]
        for process in processes:
            run.ledger.record_process(process.pid, "test exchange")
        assert [process.wait(timeout=60) for process in processes] == [0, 0, 0]
    items = {item["link"]: item for item in network_cost(run.path)["items"]}
    tree, sensor_link = items["w1-root"], items["sensor0-w1"]
    assert tree["model_messages"] == {MODEL_PULL: PULLS, UPDATE_PUSH: PUSHES}
    carried = MODEL * (1 + SEGMENT_HEADERS / MSS)   # a model's segments, before their acknowledgements
    assert carried * PULLS < tree["down"]["pcap"]["by_class"][MODEL_PULL] < 1.03 * carried * PULLS
    assert carried * PUSHES < tree["up"]["pcap"]["by_class"][UPDATE_PUSH] < 1.03 * carried * PUSHES
    acknowledgements = tree["up"]["pcap"]["by_class"][MODEL_PULL] + tree["down"]["pcap"]["by_class"][UPDATE_PUSH]
    assert acknowledgements < 0.05 * carried * (PULLS + PUSHES)
    assert tree["by_class"][CONTROL] < 3_000   # handshakes, greetings, DONE and its ACK
    sent = SAMPLES * SAMPLE
    assert sent < sensor_link["up"]["pcap"]["by_class"][SENSOR_DATA] < 1.1 * sent
    assert not tree["flagged"] and not sensor_link["flagged"]


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
