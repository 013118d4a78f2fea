"""The rate probe's train (edgetestbed.dynamics.train): its size, the rate from its arrivals,
and a real train over loopback sockets. Its measurement of an emulated link is in
test_dynamics_network.py (a rate change during a run)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from edgetestbed.dynamics import train
from edgetestbed.dynamics.probe import Probe

FRAME = train.FRAME_BITS


def test_a_train_passes_htb_burst_then_measures_at_least_a_dozen_frames():
    skipped = train.skipped_packets()
    assert skipped * FRAME / 8 >= train.SKIP_BYTES > 15 * 1024 - 1   # past HTB_BURST ("15k")
    assert train.train_length(1) == skipped + train.MIN_MEASURED == 24
    assert train.train_length(100) == skipped + 87             # 10 ms of 100 Mbit/s
    assert train.train_length(1000) == train.MAX_PACKETS
    assert train.idle_wait(1) == pytest.approx(0.3 + 4 * FRAME / 1e6)


def spaced(rate_mbit: float, count: int, start: float = 100.0) -> list[tuple[int, float]]:
    """Arrivals of ``count`` datagrams: the skipped ones at once, then one frame time apart."""
    skipped, gap = train.skipped_packets(), FRAME / (rate_mbit * 1e6)
    return [(index, start + max(0, index - skipped) * gap) for index in range(count)]


def test_the_rate_is_one_frame_over_the_median_spacing():
    assert train.delivered_rate(spaced(2.0, 30)) == pytest.approx(2.0)
    # a competing flow's packets between two of the train's lengthen those gaps only
    arrivals = spaced(2.0, 30)
    arrivals = arrivals[:20] + [(index, at + 0.05) for index, at in arrivals[20:]]
    assert train.delivered_rate(arrivals) == pytest.approx(2.0)
    # lost datagrams take no link time: the next one arrives one frame time later
    assert train.delivered_rate([a for a in spaced(2.0, 30) if a[0] % 5]) == pytest.approx(2.0)
    # out of order in the list is fine: sorted by arrival
    assert train.delivered_rate(list(reversed(spaced(5.0, 30)))) == pytest.approx(5.0)


@pytest.mark.parametrize("arrivals", [
    [],
    [(index, 1.0) for index in range(30)],                       # all at once: no spacing
    spaced(2.0, train.skipped_packets() + 2),                    # one gap after the burst
])
def test_too_little_to_measure_is_none(arrivals):
    assert train.delivered_rate(arrivals) is None


def test_a_probe_records_its_rate():
    assert Probe(1.0, 8, 8, 10.0, 2.5).as_dict() == {"at": 1.0, "sent": 8, "received": 8, "rtt_min_ms": 10.0,
                                                     "rate_mbit": 2.5, "delay_ms": 5.0}


class Lines(io.StringIO):
    """What the receiver prints, with an event set when it is ready."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        if text.startswith("ready"):
            self.ready.set()
        return super().write(text)


def free_udp_port() -> int:
    """A UDP port no socket holds now (the kernel's pick, not one two runs could share)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


def test_a_train_over_loopback_arrives_whole_and_in_order():
    """Real sockets: the receiver keeps only its own train's datagrams, stamped by the kernel."""
    out, port = Lines(), free_udp_port()
    receiver = threading.Thread(target=train.receive, args=(port, 7, 30, 0.5, out))
    receiver.start()
    assert out.ready.wait(5)
    train.send("127.0.0.1", port, 8, 5)     # another train: not counted
    train.send("127.0.0.1", port, 7, 30)
    receiver.join(10)
    arrivals = json.loads(out.getvalue().splitlines()[-1])["arrivals"]
    assert [index for index, _ in arrivals] == list(range(30))
    times = [at for _, at in arrivals]
    assert times == sorted(times) and abs(times[0] - time.time()) < 10   # kernel time, unix epoch


def test_the_module_runs_as_a_program_and_refuses_a_send_without_an_address():
    done = subprocess.run([sys.executable, "-m", "edgetestbed.dynamics.train", "send", "--port", "1",
                           "--train", "1", "--packets", "1"], capture_output=True, text=True)
    assert done.returncode == 2 and "send needs --to" in done.stderr
