"""Network meters on real emulated networks: known traffic counted alike by every source, on both
switch backends; what each link's capture and counters cover; everything removed afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

from edgetestbed import ledger as resources
from edgetestbed.analysis.netcost import MSS, SEGMENT_HEADERS, TCP_OVERHEAD, TOLERANCE, network_cost
from edgetestbed.errors import LeftoverError
from edgetestbed.measure.capture import parse_tcpdump_report
from edgetestbed.measure.counters import read_counters
from edgetestbed.measure.meters import NetworkMeters
from edgetestbed.spec.load import load_spec_text
from edgetestbed.testbed import open_testbed
from test_network import SPEC, switch_backends  # the network tests' tree: root, w1, w2, sensors, cloud

MACHINE_WAIT = 600.0  # seconds to wait while another run holds the machine
T = TypeVar("T")


def while_busy(attempt: Callable[[], T]) -> T:
    """``attempt()``, retried while another run (a colleague's test) holds the machine."""
    deadline = time.monotonic() + MACHINE_WAIT
    while True:
        try:
            return attempt()
        except LeftoverError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


@contextlib.contextmanager
def metered(spec_text: str, runs_dir: Path) -> Iterator[tuple]:
    """A network built from ``spec_text`` with its meters running; meters stopped, then the network
    torn down, on every path. Yields ``(run, network, meters)``."""
    spec = load_spec_text(spec_text, "meters.yaml")
    with contextlib.ExitStack() as stack:
        run, network = while_busy(lambda: stack.enter_context(open_testbed(spec, runs_dir, "test")))
        meters = NetworkMeters(network, run.path, run.ledger, counter_interval=0.5)
        meters.start()
        stack.callback(meters.stop)
        yield run, network, meters


RECEIVER = """
import socket, sys
server = socket.create_server(("", 5201))
print("listening", flush=True)
connection, _ = server.accept()
received = 0
while chunk := connection.recv(1 << 16):
    received += len(chunk)
print(received, flush=True)
"""
SENDER = """
import socket, sys
connection = socket.create_connection((sys.argv[1], 5201))
connection.sendall(bytes(int(sys.argv[2])))
connection.shutdown(socket.SHUT_WR)
connection.recv(1)
"""


def transfer(network, run, sender: str, receiver: str, size: int) -> int:
    """Exactly ``size`` bytes over one TCP connection from ``sender`` to ``receiver``; bytes received."""
    server = network.host(receiver).popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    run.ledger.record_process(server.pid, "test receiver")
    assert server.stdout.readline().strip() == "listening"
    client = network.host(sender).popen([sys.executable, "-c", SENDER, network.host(receiver).IP(), str(size)])
    run.ledger.record_process(client.pid, "test sender")
    assert client.wait(timeout=60) == 0, "the sender could not deliver: is the network whole?"
    return int(server.communicate(timeout=10)[0])


def nothing_left(run) -> list:
    return [entry for entry in run.ledger.entries() if resources.exists(entry)]


def test_counters_and_tcpdump_reports_are_parsed():
    dev = ("Inter-|   Receive                                            |  Transmit\n"
           " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop ...\n"
           "s1-eth1: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n")
    assert read_counters(dev) == {"s1-eth1": {"rx_bytes": 1000, "rx_packets": 10, "rx_errors": 1, "rx_dropped": 2,
                                              "tx_bytes": 2000, "tx_packets": 20, "tx_errors": 3, "tx_dropped": 4}}
    report = ("tcpdump: listening on x\n\n12 packets captured\n13 packets received by filter\n"
              "1 packet dropped by kernel\n")
    assert parse_tcpdump_report(report) == {"captured": 12, "received": 13, "dropped": 1}


@pytest.mark.root
@pytest.mark.parametrize("switch", switch_backends())
def test_known_traffic_is_counted_alike_by_every_source(switch, tmp_path):
    with metered(SPEC.replace("SWITCH", switch), tmp_path) as (run, network, meters):
        up = transfer(network, run, "w1", "root", 3_000_000)
        down = transfer(network, run, "root", "w1", 2_000_000)
    result = network_cost(run.path)
    link = next(item for item in result["items"] if item["link"] == "w1-root")
    sources = ["pcap", "counters"] + (["openflow"] if switch != "lxbr" else [])
    assert (up, down) == (3_000_000, 2_000_000)
    for direction, sent in (("up", up), ("down", down)):
        part = link[direction]
        for source in sources:
            assert part[source]["bytes"] == pytest.approx(part["pcap"]["bytes"], rel=TOLERANCE), (direction, source)
        assert part["disagreement"] < TOLERANCE and part["pcap"]["wire_bytes"] > sent, direction
        # no loss here; the far end may count super-packets (one set of headers for many segments)
        assert part["far_end"]["bytes"] == pytest.approx(part["pcap"]["bytes"], rel=0.05)
    # the data in full-sized segments with their headers, and at most one acknowledgement per two
    data_segments = (up + down) * (1 + SEGMENT_HEADERS / MSS)
    assert data_segments < link["wire_bytes"] < (up + down) * (1 + TCP_OVERHEAD) * (1 + TOLERANCE)
    assert not link["flagged"] and result["flagged"] == []
    assert link["by_class"]["other"] == link["bytes"]   # no ZeroMQ endpoint
    assert (run.path / "net" / "sensor0-w1.pcap").is_file() and (run.path / "net" / "cloud-root.pcap").is_file()
    assert run.manifest["meters"]["controller"]["used"] == (switch != "lxbr")
    assert nothing_left(run) == []
