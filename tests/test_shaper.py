"""The user-space link shaper: its decisions in isolation, then on a real bridged network.

The network tests build ``a —[pa] bridge [pb]— b`` by hand (two namespaces, a Linux bridge
in the root namespace, two veth pairs): direction a→b is shaped at ``pa``, b→a at ``pb``.
They need root, iptables with NFQUEUE and physdev, br_netfilter, ping and iperf3.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from edgetestbed import ledger as resources
from edgetestbed.errors import CapabilityError
from edgetestbed.ledger import Ledger
from edgetestbed.topo import shaper as shaper_module
from edgetestbed.topo.shaper import ShapedPort, UserspaceShaper, require_bridge_netfilter
from edgetestbed.topo.shaper_handler import Direction, Scheduler, arrival

ADDRESS = {"a": "10.213.0.1", "b": "10.213.0.2"}
IPERF_PORT = 5201


def run(*argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


class BridgedPair:
    """Namespaces ``etbsh-<tag>-a`` and ``-b`` joined by a Linux bridge in the root namespace.

    Every interface and process goes into ``ledger`` as it is created; the namespaces
    (a kind the ledger does not know) are deleted by name in :meth:`remove`.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.tag = secrets.token_hex(3)
        self.namespaces = {side: f"etbsh-{self.tag}-{side}" for side in "ab"}
        self.bridge = f"etb{self.tag}br"
        self.ports = {side: f"etb{self.tag}p{side}" for side in "ab"}  # bridge side of each veth
        self._created_namespaces: list[str] = []

    def create(self) -> None:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self.ledger.record("link", name=self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for side, namespace in self.namespaces.items():
            run("ip", "netns", "add", namespace)
            self._created_namespaces.append(namespace)
            port = self.ports[side]
            run("ip", "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", namespace)
            self.ledger.record("link", name=port)
            run("ip", "link", "set", port, "master", self.bridge, "up")
            self.exec(side, "ip", "addr", "add", f"{ADDRESS[side]}/24", "dev", "eth0")
            self.exec(side, "ip", "link", "set", "eth0", "up")
            self.exec(side, "ip", "link", "set", "lo", "up")

    def remove(self) -> list[dict]:
        """Remove everything recorded, then the namespaces; return what is left."""
        leftovers = resources.remove_all(self.ledger.entries())
        for namespace in reversed(self._created_namespaces):
            run("ip", "netns", "del", namespace, check=False)
        return leftovers

    def exec(self, side: str, *argv: str, timeout: float = 30,
             check: bool = True) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", self.namespaces[side], *argv,
                   timeout=timeout, check=check)

    def start_iperf_server(self) -> tuple[subprocess.Popen, dict]:
        """A one-off iperf3 server (``-1``: one test, then exit) listening in b, and its ledger entry.

        Each test gets its own: a server shared across tests could still be inside an
        earlier test (one whose lost setup datagram left it waiting) when the next client
        came, and it answers that client "busy" or, closing the connection unread, with
        a reset ("unable to receive control message: Connection reset by peer").
        """
        argv = ["ip", "netns", "exec", self.namespaces["b"], "iperf3", "-s", "-1", "-B", ADDRESS["b"],
                "-p", str(IPERF_PORT)]
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        entry = self.ledger.record_process(server.pid, argv)
        deadline = time.monotonic() + 5
        while not self.exec("b", "ss", "-Hltn", f"sport = :{IPERF_PORT}").stdout.strip():
            assert time.monotonic() < deadline, "iperf3 server did not start listening"
            time.sleep(0.05)
        return server, entry

    def ping(self, count: int, interval: float) -> list[tuple[int, float]]:
        """(icmp_seq, RTT ms) of each reply from a to b, in the order the replies arrived."""
        done = self.exec("a", "ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2",
                         ADDRESS["b"], timeout=count * interval + 10, check=False)
        replies = re.findall(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms", done.stdout)
        return [(int(seq), float(rtt)) for seq, rtt in replies]

    def iperf(self, *args: str, duration: float, attempts: int = 1) -> dict:
        """iperf3 ``--json`` report of a client in a talking to the server in b.

        A failed or hung client (killed after duration + 8 s) is retried up to ``attempts``
        times, each against a new one-off server.
        """
        argv = ["iperf3", "-c", ADDRESS["b"], "-p", str(IPERF_PORT), "-t", str(duration), "--json",
                *args]
        problem = ""
        for _ in range(attempts):
            server, entry = self.start_iperf_server()
            try:
                done = self.exec("a", *argv, timeout=duration + 8, check=False)
            except subprocess.TimeoutExpired:
                problem = "hung"
            else:
                report = json.loads(done.stdout)
                if "error" not in report:
                    return report
                problem = report["error"]
            finally:
                resources.remove(entry)  # a server still inside an aborted test goes with it
                server.wait()
        raise AssertionError(f"iperf3 {' '.join(args)} failed {attempts} times: {problem}")


def binomial_interval(n: int, p: float, confidence: float) -> tuple[int, int]:
    """The central ``confidence`` interval of Binomial(n, p), exact."""
    tail = (1 - confidence) / 2
    cdf, low = 0.0, None
    for k in range(n + 1):
        cdf += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                        + k * math.log(p) + (n - k) * math.log1p(-p))
        if low is None and cdf > tail:
            low = k
        if cdf >= 1 - tail:
            return low, k
    return low, n


# --- decisions, no network needed ------------------------------------------------------

class FakePacket:
    """What the scheduler uses of a NetfilterQueue packet."""

    def __init__(self, stamp: float = 0.0) -> None:
        self.verdict: str | None = None
        self.stamp = stamp

    def get_timestamp(self) -> float:
        return self.stamp

    def accept(self) -> None:
        self.verdict = "accept"

    def drop(self) -> None:
        self.verdict = "drop"


def test_port_parameters_are_validated() -> None:
    for bad in ({"delay_ms": -1}, {"jitter_ms": -1}, {"loss_pct": 101}, {"queue": 0}):
        with pytest.raises(ValueError):
            ShapedPort("p0", **bad)
    with pytest.raises(ValueError):
        ShapedPort("a-name-longer-than-15")
    assert ShapedPort("p0").limit == 1000 and ShapedPort("p0", queue=7).limit == 7
    ledger = Ledger(Path("never-written"))
    with pytest.raises(ValueError):
        UserspaceShaper("X" * 29, [ShapedPort("p0")], Path("."), 1, ledger)
    with pytest.raises(ValueError):
        UserspaceShaper("ETB-x", [ShapedPort("p0"), ShapedPort("p0")], Path("."), 1, ledger)


def test_missing_bridge_netfilter_is_a_capability_error(tmp_path: Path) -> None:
    with pytest.raises(CapabilityError, match="br_netfilter"):
        require_bridge_netfilter(tmp_path / "absent")
    (tmp_path / "off").write_text("0\n")
    with pytest.raises(CapabilityError, match="bridge-nf-call-iptables=1"):
        require_bridge_netfilter(tmp_path / "off")


def test_jitter_never_reorders_a_direction() -> None:
    direction = Direction(ShapedPort("p0", delay_ms=10, jitter_ms=5), random.Random(1))
    arrivals = [i * 0.0005 for i in range(2000)]  # one packet every 0.5 ms, jitter ±5 ms
    releases = [direction.admit(now) for now in arrivals]
    assert releases == sorted(releases)
    assert all(r >= a + 0.005 for r, a in zip(releases, arrivals))
    assert max(r - a for r, a in zip(releases, arrivals)) <= 0.015 + 1e-9


def test_loss_draws_follow_the_configured_rate() -> None:
    direction = Direction(ShapedPort("p0", loss_pct=5), random.Random(7))
    for _ in range(20000):
        direction.admit(0.0)
    low, high = binomial_interval(20000, 0.05, 0.99)
    assert low <= direction.lost <= high


def test_delay_counts_from_the_kernel_receive_stamp() -> None:
    now = time.monotonic()
    assert arrival(FakePacket(time.time() - 0.004), now) == pytest.approx(now - 0.004, abs=1e-3)
    assert arrival(FakePacket(0.0), now) == now  # no stamp: the time it was read
    assert arrival(FakePacket(time.time() + 5), now) == now  # implausible stamp


def test_queue_limit_tail_drops_and_release_keeps_order() -> None:
    scheduler = Scheduler()
    direction = Direction(ShapedPort("p0", delay_ms=60_000, queue=3), random.Random(1))
    packets = [FakePacket() for _ in range(5)]
    for packet in packets:
        scheduler.on_packet(direction, packet)
    assert [p.verdict for p in packets] == [None, None, None, "drop", "drop"]
    assert direction.counters() | {"queue_num": 0} == {
        "queue_num": 0, "seen": 5, "lost": 0, "overflow": 2, "held_max": 3}
    scheduler.release_all()
    assert [p.verdict for p in packets[:3]] == ["accept"] * 3 and direction.held == 0


# --- on a real network ---------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, bridge, iptables)")
    missing = [tool for tool in ("iptables", "iptables-save", "ping", "iperf3", "ss")
               if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing tools: {missing}")
    try:
        require_bridge_netfilter()
    except CapabilityError as error:
        pytest.skip(str(error))
    network = BridgedPair(Ledger(tmp_path_factory.mktemp("shaper") / "ledger.jsonl"))
    try:
        network.create()
        yield network
    finally:
        leftovers = network.remove()
        assert not leftovers, leftovers


@pytest.fixture
def shape(pair: BridgedPair, tmp_path: Path):
    """Start a shaper shaping both directions alike; stopped at teardown."""
    started: list[UserspaceShaper] = []

    def start(**params: float) -> UserspaceShaper:
        ports = [ShapedPort(pair.ports[side], **params) for side in "ab"]
        shaper = UserspaceShaper(f"ETB-{pair.tag}-{secrets.token_hex(2)}", ports, tmp_path,
                                 seed=1, ledger=pair.ledger)
        started.append(shaper)
        shaper.start()
        return shaper

    yield start
    for shaper in started:
        shaper.stop()


def rtts_of(replies: list[tuple[int, float]]) -> list[float]:
    return [rtt for _, rtt in replies]


def test_delay_gives_the_configured_rtt(pair: BridgedPair, shape) -> None:
    shape(delay_ms=20)
    rtts = rtts_of(pair.ping(count=60, interval=0.02))
    median, p95 = statistics.median(rtts), statistics.quantiles(rtts, n=20)[-1]
    print(f"\n20 ms each way: RTT median {median:.2f} ms, p95 {p95:.2f}, "
          f"min {min(rtts):.2f}, max {max(rtts):.2f} ({len(rtts)} replies)")
    assert len(rtts) == 60
    assert abs(median - 40) <= max(1.0, 0.05 * 40)
    assert min(rtts) >= 39.95  # never released early (ping prints 0.1 ms steps)
    assert p95 <= 40 * 1.1


LATE_RELEASE_MS = 5.0


def test_jitter_spreads_rtt_without_reordering(pair: BridgedPair, shape) -> None:
    shape(delay_ms=20, jitter_ms=5)
    rtts = rtts_of(pair.ping(count=60, interval=0.02))
    median, spread = statistics.median(rtts), statistics.stdev(rtts)
    print(f"\n20±5 ms each way: RTT median {median:.2f} ms, stdev {spread:.2f}, "
          f"min {min(rtts):.2f}, max {max(rtts):.2f}")
    figures = f"median {median:.2f}, stdev {spread:.2f}, min {min(rtts):.2f}, max {max(rtts):.2f}, {len(rtts)} replies"
    assert len(rtts) == 60, figures
    assert abs(median - 40) <= 2.5, figures
    assert spread > 1.0, figures
    # Never early: 20 - 5 each way. Late by at most LATE_RELEASE_MS past 20 + 5 each way: 12 runs
    # on 2026-12-07 read 49.8-51.4 ms, and one suite run that day failed the earlier 2 ms bound
    # (in a spell when the hypervisor stole the CPU; see topo/idlepoll.py). A range of ±10 ms
    # each way instead of ±5 would pass 55 ms in 85 % of these tests (1 - (1 - 1/32)^60).
    assert 29.95 <= min(rtts) and max(rtts) <= 50 + LATE_RELEASE_MS, figures
    # Probes a few ms apart (ping's own pace at -i 0.002) with ±5 ms jitter: independent
    # draws would reorder some replies; thousands of datagrams a second would reorder most.
    burst = pair.ping(count=150, interval=0.002)
    sequence = [seq for seq, _ in burst]
    report = pair.iperf("-u", "-b", "10M", "-l", "256", "-w", "2M", "-R", duration=1)
    stream = report["end"]["streams"][0]["udp"]  # -R: counted where received, by the client
    print(f"burst: {len(burst)} replies, in order: {sequence == sorted(sequence)}; "
          f"UDP: {stream['out_of_order']} of {stream['packets']} datagrams out of order")
    assert len(sequence) == 150 and sequence == sorted(sequence)
    assert stream["packets"] > 4000 and stream["out_of_order"] == 0


@pytest.mark.parametrize("reverse", [False, True], ids=["a-to-b", "b-to-a"])
def test_loss_is_binomial_each_way(pair: BridgedPair, shape, reverse: bool) -> None:
    shaper = shape(loss_pct=5)
    # iperf3 3.12 announces a UDP stream with one datagram and one reply, never resent:
    # when the loss hits either, the client fails or hangs. Try again then. A 2 MB socket
    # buffer keeps the receiving iperf3 from dropping bursts itself (UdpRcvbufErrors).
    report = pair.iperf("-u", "-b", "10M", "-l", "256", "-w", "2M", *(["-R"] if reverse else []),
                        duration=2, attempts=4)
    lost, sent = report["end"]["sum"]["lost_packets"], report["end"]["sum"]["packets"]
    low, high = binomial_interval(sent, 0.05, 0.99)
    print(f"\n5 % loss, {'b→a' if reverse else 'a→b'}: {lost}/{sent} datagrams lost "
          f"({100 * lost / sent:.2f} %), 99 % interval [{low}, {high}]")
    assert sent >= 5000
    assert low <= lost <= high
    counters = shaper.stop()
    assert all(port["overflow"] == 0 and port["kernel_dropped"] == 0 for port in counters.values())


def test_tcp_through_delay_is_not_collapsed(pair: BridgedPair, shape) -> None:
    shaper = shape(delay_ms=10)
    report = pair.iperf("-C", "cubic", duration=3)
    mbits = report["end"]["sum_received"]["bits_per_second"] / 1e6
    counters = shaper.stop()
    print(f"\nTCP (cubic) through 10 ms each way: {mbits:.0f} Mbit/s; handler: {counters}")
    assert mbits >= 100


def test_stop_leaves_nothing_behind(pair: BridgedPair, shape) -> None:
    before = len(pair.ledger.entries())
    shaper = shape(delay_ms=5)
    created = pair.ledger.entries()[before:]
    assert [entry["kind"] for entry in created] == ["process", "iptables-chain"]
    assert len(pair.ping(count=5, interval=0.02)) == 5

    counters = shaper.stop()
    assert counters[pair.ports["a"]]["seen"] >= 5 and counters[pair.ports["b"]]["seen"] >= 5
    assert shaper.stop() == counters
    assert not any(resources.exists(entry) for entry in created)
    assert shaper.chain not in run("iptables", "-w", "-t", "mangle", "-S").stdout
    rtts = rtts_of(pair.ping(count=5, interval=0.02))
    assert len(rtts) == 5 and max(rtts) < 5  # neither delayed nor blackholed any more


@pytest.mark.parametrize("failure", ["handler cannot start", "handler too slow"])
def test_failed_start_cleans_up(pair: BridgedPair, tmp_path: Path, monkeypatch,
                                failure: str) -> None:
    if failure == "handler cannot start":
        monkeypatch.setattr(shaper_module, "HANDLER_MODULE", "edgetestbed.no_such_module")
        expected = CapabilityError
    else:
        monkeypatch.setattr(shaper_module, "READY_TIMEOUT", 0.0)
        expected = TimeoutError
    before = len(pair.ledger.entries())
    shaper = UserspaceShaper(f"ETB-{pair.tag}-fail", [ShapedPort(pair.ports["a"], delay_ms=1)],
                             tmp_path, seed=1, ledger=pair.ledger)
    with pytest.raises(expected):
        shaper.start()
    created = pair.ledger.entries()[before:]
    assert [entry["kind"] for entry in created] == ["process"]
    assert not resources.exists(created[0])
    assert len(pair.ping(count=3, interval=0.02)) == 3


def test_a_port_off_any_bridge_is_refused(pair: BridgedPair, tmp_path: Path) -> None:
    before = len(pair.ledger.entries())
    shaper = UserspaceShaper(f"ETB-{pair.tag}-lo", [ShapedPort("lo")], tmp_path, seed=1,
                             ledger=pair.ledger)
    with pytest.raises(ValueError, match="not a Linux bridge port"):
        shaper.start()
    assert len(pair.ledger.entries()) == before
