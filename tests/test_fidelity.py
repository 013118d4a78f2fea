"""The proof of fidelity: measurements on a real Mininet network (Linux bridges, htb-only
TCLinks: this kernel has no netem). The verdicts and loss intervals they rest on, in
isolation: test_fidelity_verdicts.

The network tests use their own host and switch names (``fa1``, ``fs1``, ...), keep all
traffic inside the network they build, and always stop it; Mininet leaves the cgroup
directories of a ``CPULimitedHost`` behind, so the CPU test removes exactly those.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from edgetestbed.measure.cpushare import measure_cpu_share
from edgetestbed.measure.fidelity import Configured, Measured, binomial_interval
from edgetestbed.measure.linkmeasure import _Path, measure_link, setup_attempts
from edgetestbed.topo.probe import probe
from test_fidelity_verdicts import GOOD

CAPS = probe()


# ---------------------------------------------------------------- on a real network

def _need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


@pytest.fixture(scope="module")
def net():
    """fa1-fs1 =10 Mbit= fs2-fb1, fs2 =50 Mbit= fs3-fc1. Access links are unshaped."""
    _need("iperf3", "ping", "brctl")
    from mininet.link import TCLink
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge

    network = Mininet(switch=LinuxBridge, link=TCLink, controller=None, build=False)
    try:
        switches = {name: network.addSwitch(name) for name in ("fs1", "fs2", "fs3")}
        for host, switch in (("fa1", "fs1"), ("fb1", "fs2"), ("fc1", "fs3")):
            network.addLink(network.addHost(host), switches[switch])
        network.addLink(switches["fs1"], switches["fs2"], bw=10)
        network.addLink(switches["fs2"], switches["fs3"], bw=50)
        network.build()
        network.start()
        yield network
    finally:
        network.stop()


@pytest.mark.root
@pytest.mark.parametrize("ends, bw_mbit", [(("fa1", "fb1"), 10), (("fb1", "fc1"), 50)])
def test_measure_link_reports_the_configured_rate(net, ends, bw_mbit):
    result = measure_link(*map(net.get, ends), Configured(bw_mbit=bw_mbit), ends)
    measured = result.measured
    assert result.ok, result.to_json()
    assert measured.bw_method == "tcp"
    assert measured.payload_share == pytest.approx(1448 / 1514)
    for rate in (measured.bw_mbit_fwd, measured.bw_mbit_rev):
        assert abs(rate - bw_mbit * measured.payload_share) <= 0.1 * bw_mbit * measured.payload_share
    assert measured.rtt_samples == 100 and measured.rtt_ms_median < 1.0
    assert measured.seconds < 12


@pytest.mark.root
def test_measure_link_fails_a_link_slower_than_configured(net):
    result = measure_link(net.get("fa1"), net.get("fb1"), Configured(bw_mbit=20), ("fa1", "fb1"))
    assert not result.ok
    assert result.checks == {"rtt": True, "bw": False, "loss": True}


# iperf3's one-datagram UDP setup messages (a 4-byte payload: 32 bytes of IP); drops the first one.
DROP_FIRST_SETUP_DATAGRAM = ("INPUT -p udp -m length --length 32 "
                             "-m statistic --mode nth --every 1000000 --packet 0 -j DROP")


@pytest.mark.root
@pytest.mark.parametrize("lost", ["connect reply", "connect message"])
def test_a_udp_test_whose_setup_datagram_is_lost_is_run_again(net, lost):
    """A lossy link sometimes drops one of the two datagrams that set up iperf3's UDP
    stream: the connect reply (the client then reads data while waiting for it and
    fails: last CI's linkcheck on the 2 %-loss link) or the connect message (iperf3
    hangs). Either way the test runs again and the rate is the link's."""
    _need("iptables")
    receiver, sender = net.get("fa1"), net.get("fb1")  # -R: the receiver runs the client
    dropping = receiver if lost == "connect reply" else sender
    dropping.cmd(f"iptables -A {DROP_FIRST_SETUP_DATAGRAM}")
    try:
        path = _Path(sender, receiver, seconds=2, slack_s=3)
        rate, payload_share = path.udp_rate(10, 0, reverse=False)
        dropped = dropping.cmd("iptables -L INPUT 1 -v -n -x").split()[0]  # the rule's packet count
    finally:
        dropping.cmd(f"iptables -D {DROP_FIRST_SETUP_DATAGRAM}")
    assert dropped == "1"
    assert abs(rate - 10 * payload_share) <= 0.1 * 10 * payload_share, rate  # linkcheck's


@contextmanager
def _testbed(spec_text: str, tmp_path: Path):
    """The testbed's own network for ``spec_text``, built under ``tmp_path``, always torn down."""
    from edgetestbed.spec.load import load_spec_text
    from edgetestbed.testbed import open_testbed

    with open_testbed(load_spec_text(spec_text, "spec.yaml"), tmp_path, "test") as (_, network):
        yield network


SHORT_QUEUE_SPEC = """
name: shortqueue
application: {name: mnist_mlp}
data: {dataset: mnist, partition: iid}
defaults: {cpu: 0.25, memory: 128M}
sensors: {rate: 1/s, cpu: 0.05, memory: 64M}
nodes:
  - id: root
  - {id: w1, parent: root, sensors: [0], link: {bw: 10Mbit, delay: DELAY, queue: 20}}
"""
TCP_CEILING_MBIT = 10 * 1448 / 1514   # TCP payload of full-size frames (timestamps on)


@pytest.mark.root
@pytest.mark.parametrize("delay_ms", [0, 5])
def test_measure_link_rate_on_a_short_queue_is_the_links_every_time(tmp_path, delay_ms):
    """TCP fills a 20-packet queue and drops from it; it gets the link's rate only if

    - the queue holds wire-sized packets (with GSO on, 64 KB super-packets counted as
      one: 5.2-9.6 Mbit/s, up to 220 retransmissions in 2 s, without delay), and
    - iperf3's end-of-test message does not wait in it (once dropped, its retransmission
      timeout counted as test time: 8.89 of 9.56 Mbit/s in a third of the tests, 5 ms).

    Three measurements, both directions, all within 4 % of what TCP can carry.
    """
    _need("iperf3", "ping")
    with _testbed(SHORT_QUEUE_SPEC.replace("DELAY", f"{delay_ms}ms"), tmp_path) as network:
        ends = (network.host("w1"), network.host("root"))
        rates = []
        for _ in range(3):
            measured = measure_link(*ends, Configured(delay_ms=delay_ms, bw_mbit=10),
                                    ("w1", "root")).measured
            rates += [measured.bw_mbit_fwd, measured.bw_mbit_rev]
    assert min(rates) >= 0.96 * TCP_CEILING_MBIT, rates


LOSSY_SPEC = SHORT_QUEUE_SPEC.replace("{bw: 10Mbit, delay: DELAY, queue: 20}", "{bw: 10Mbit, delay: 5ms, loss: LOSS}")
LOSS_LEVELS = [2, 10, 20]
# On netem one level: the probe's accuracy across levels is the shaper test's (above, on the
# host); this one shows that netem's loss is applied and found. Each level cost the
# stock-kernel guest about 50 s of CI under software emulation.
NETEM_LOSS_LEVELS = [10]
# 99.99 %, not linkcheck's 99 %: this test checks 2 directions at 3 levels, and at 99 %
# a correct probe would fail about one run in 17 by chance alone.
TEST_CONFIDENCE = 0.9999


def assert_loss_within_its_interval(measured: Measured, loss_pct: float, detail: str) -> None:
    """Each direction's loss inside the binomial interval of the configured rate."""
    for pct, packets in ((measured.loss_pct_fwd, measured.packets_fwd),
                         (measured.loss_pct_rev, measured.packets_rev)):
        assert packets >= 2000, detail  # enough for a useful interval (LOSS_DATAGRAMS are sent)
        low, high = binomial_interval(packets, loss_pct / 100, confidence=TEST_CONFIDENCE)
        assert low <= pct / 100 <= high, detail


@pytest.mark.root
@pytest.mark.parametrize("loss_pct", LOSS_LEVELS)
def test_measure_link_on_a_lossy_link_finds_its_rate_and_loss(tmp_path, loss_pct):
    """A lossy link of the testbed's own shaper delivers its full rate (lost packets take
    no link time, as in netem), and loses what it is configured to, whatever the
    receiving host's CPU share. linkcheck used to divide the loss out of that rate
    (10.9 Mbit/s at 10 % loss) and, at 20 %, to offer a load that the loss left below
    the rate (read as 12 Mbit/s); its loss probe, counting iperf3's sequence gaps, read
    up to 36 % at 20 % when the receiving host (0.25 cores) dropped datagrams itself."""
    _need("iperf3", "ping")
    with _testbed(LOSSY_SPEC.replace("LOSS", f"{loss_pct}%"), tmp_path) as network:
        configured = Configured(delay_ms=5, bw_mbit=10, loss_pct=loss_pct)
        result = measure_link(network.host("w1"), network.host("root"), configured, ("w1", "root"))
    measured = result.measured
    assert measured.bw_method == "udp" and result.checks["bw"] and result.checks["rtt"], result.to_json()
    assert_loss_within_its_interval(measured, loss_pct, result.to_json())


@pytest.mark.root
@pytest.mark.netem
@pytest.mark.skipif(not CAPS.netem.ok, reason=f"kernel has no netem: {CAPS.netem.detail}")
@pytest.mark.parametrize("loss_pct", NETEM_LOSS_LEVELS)
def test_the_loss_probe_on_a_netem_link_finds_its_loss(tmp_path, loss_pct):
    """The same probe on netem (run in the stock-kernel guest). Loss only: under
    software emulation TCP's rate has a low tail that measures the emulated CPU (see
    test_stock_kernel_guest); hosts get a whole core for the same reason."""
    _need("iperf3")
    spec = (LOSSY_SPEC.replace("LOSS", f"{loss_pct}%").replace("cpu: 0.25", "cpu: 1.0")
            .replace("cpu: 0.05", "cpu: 1.0") + "network: {shaping: netem}\n")
    with _testbed(spec, tmp_path) as network:
        path = _Path(network.host("w1"), network.host("root"), seconds=2, slack_s=5,
                     attempts=setup_attempts(loss_pct), settle_s=0.11)
        (lost_fwd, n_fwd), (lost_rev, n_rev) = path.udp_loss(bw_mbit=10)
    measured = replace(GOOD, loss_pct_fwd=100 * lost_fwd / n_fwd, loss_pct_rev=100 * lost_rev / n_rev,
                       packets_fwd=n_fwd, packets_rev=n_rev)
    assert_loss_within_its_interval(measured, loss_pct, str(measured))


@pytest.mark.root
def test_linkcheck_reports_a_link_it_cannot_measure_and_measures_the_rest(tmp_path):
    """A tool that fails on one link (here: every ping dropped) fails that link, at every
    attempt, with the reason; the other links are still measured."""
    _need("iperf3", "ping", "iptables")
    from edgetestbed.linkcheck import MEASUREMENTS, measure_links

    with _testbed(SHORT_QUEUE_SPEC.replace("DELAY", "5ms"), tmp_path) as network:
        network.host("root").cmd("iptables -A INPUT -p icmp -j DROP")
        results = {result.link: (result, earlier) for result, earlier in measure_links(network, network.plan.shaped_links, say=print)}
    (unmeasured, earlier), (sensor_link, _) = results[("w1", "root")], results[("sensor0", "w1")]
    for result in (unmeasured, *earlier):
        assert not result.ok and result.measured is None and result.checks == {"measured": False}
        reason = result.error.splitlines()[0]
        assert "(w1)" in reason and "(root)" in reason and reason.endswith("too few replies"), reason
    assert len(earlier) == MEASUREMENTS - 1 and sensor_link.measured is not None


@pytest.fixture(scope="module")
def limited_host():
    """One ``CPULimitedHost`` (``fd1``); its leftover cgroup directories are removed."""
    _need("cgcreate")
    if not Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists():
        pytest.skip("Mininet's CPULimitedHost needs the cgroup v1 cpu controller")
    from mininet.net import Mininet
    from mininet.node import CPULimitedHost

    network = Mininet(controller=None, build=False)
    try:
        host = network.addHost("fd1", cls=CPULimitedHost, cpu=0.25)
        network.build()
        yield host
    finally:
        network.stop()
        for controller in ("cpu", "cpuacct", "cpuset"):
            leftover = Path("/sys/fs/cgroup", controller, "fd1")
            if leftover.is_dir():
                leftover.rmdir()


@pytest.mark.root
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.4])
def test_measure_cpu_share_matches_the_limit(limited_host, fraction):
    """``cpu=f`` is a fraction of the whole machine: a busy loop gets f x cores of one core."""
    from mininet.util import numCores

    limited_host.setCPUFrac(fraction)
    expected = min(1.0, fraction * numCores())
    share = measure_cpu_share(limited_host)
    assert abs(share - expected) <= 0.05 * expected, (share, expected)

