"""The pcap reader's classification of a link's traffic: bursts by endpoint, direction and
size into message classes, on hand-made captures (no root); then, on a real emulated network,
a synthetic ZeroMQ exchange classified by message class. The hand-made captures (``Capture``)
serve test_netcost's runs too."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import ICMPv6ND_RS, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from edgetestbed.analysis.netcost import SEGMENT_HEADERS, network_cost
from edgetestbed.analysis.pcap import (CONTROL, DOWN, MODEL_PULL, OTHER, SENSOR_DATA, UNKNOWN, UP, UPDATE_PUSH,
                                       read_link)
from edgetestbed.process.protocol import NOT_MODIFIED, PULL, Message, encode, wire_bytes
from test_meters import metered
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


# ---------------------------------------------------------------- on a real emulated network

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
