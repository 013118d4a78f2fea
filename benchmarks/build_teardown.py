"""Benchmark: build and tear down trees of 10–200 hosts, edgetestbed vs raw Mininet.

For each tree size (half tree nodes, half sensors) and each switch backend this
machine has, it builds the tree twice in the same process:

- with edgetestbed (`EmulatedNetwork`: cgroup CPU and memory limits, shaped links
  with delay through the chosen shaping backend, congestion control, ledger records,
  preflight checks, verified teardown);
- with raw Mininet (`CPULimitedHost` + htb-only `TCLink`, nothing else), the baseline
  the issue names.

It prints and writes (``benchmarks/results/build_teardown.json``) build time,
teardown time and peak memory (system-wide, MemTotal − MemAvailable above the
idle baseline, sampled every 50 ms) for each, and the ratio edgetestbed / raw.
Target: ratio ≤ 1.5. Run as root: ``sudo .venv/bin/python benchmarks/build_teardown.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from mininet.link import TCLink
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import CPULimitedHost, OVSSwitch
from mininet.nodelib import LinuxBridge

from edgetestbed.rundir import RunDir, exclusive
from edgetestbed.signals import signals_as_interrupts
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.plan import plan_network
from edgetestbed.topo.cgroups import CGROUP_ROOT
from edgetestbed.topo.network import EmulatedNetwork
from edgetestbed.topo.probe import choose_backends, probe

RESULTS = Path(__file__).resolve().parent / "results" / "build_teardown.json"
CPU_PER_HOST = 0.01  # cores; small so 200 hosts fit on 2 cores
CORES = os.cpu_count() or 1


def tree_yaml(hosts: int, switch: str) -> str:
    """A root, parameter servers of ~10 workers each; sensors (half the hosts) spread over the workers."""
    nodes = hosts // 2
    servers = max(1, (nodes - 1) // 11)
    workers = nodes - 1 - servers
    sensors = {w: [s for s in range(hosts - nodes) if s % workers == w] for w in range(workers)}
    lines = [f"name: bench{hosts}", "seed: 1", "application: {name: mnist_mlp}",
             "data: {dataset: mnist, partition: iid}",
             f"defaults: {{cpu: {CPU_PER_HOST}, memory: 64M, link: {{bw: 10Mbit, delay: 5ms}}}}",
             f"sensors: {{rate: 1/s, cpu: {CPU_PER_HOST}, memory: 64M, link: {{bw: 2Mbit, delay: 1ms}}}}",
             f"network: {{switch: {switch}, shaping: auto}}", "nodes:", "  - id: root"]
    lines += [f"  - {{id: ps{p}, parent: root}}" for p in range(servers)]
    lines += [f"  - {{id: w{w}, parent: ps{w % servers}, sensors: {sensors[w]}}}" for w in range(workers)]
    return "\n".join(lines) + "\n"


class MemoryPeak:
    """Peak system memory in use above the baseline, sampled in a background thread."""

    def __init__(self) -> None:
        self.baseline = self.used()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def used() -> int:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        kib = lambda key: int(info[key].split()[0])  # noqa: E731
        return (kib("MemTotal") - kib("MemAvailable")) * 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.used())

    def __enter__(self) -> "MemoryPeak":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return round((self.peak - self.baseline) / 2**20, 1)


@contextmanager
def timed(results: dict, key: str):
    began = time.monotonic()
    yield
    results[key] = round(time.monotonic() - began, 2)


def bench_edgetestbed(text: str, workdir: Path) -> dict:
    spec = load_spec_text(text, "<benchmark>")
    caps = probe()
    backends = choose_backends(spec.network.switch, spec.network.shaping, caps)
    run = RunDir.create(workdir, spec.name)
    network = EmulatedNetwork(spec, backends, run.path, run.ledger, run.tag)
    result: dict = {"backends": vars(backends)}
    with signals_as_interrupts(), exclusive(run), MemoryPeak() as memory:
        try:
            with timed(result, "build_s"):
                network.build()
        finally:  # an interrupted benchmark must not leave its network behind
            with timed(result, "teardown_s"):
                leftovers = network.stop()
    result.update(peak_memory_mib=memory.mib, leftovers=len(leftovers))
    return result


def bench_raw_mininet(text: str, switch: str) -> dict:
    """The same tree with plain Mininet: CPULimitedHost, htb-only TCLink, no extras."""
    plan = plan_network(load_spec_text(text, "<benchmark>"))
    cls, params = (LinuxBridge, {}) if switch == "lxbr" else \
        (OVSSwitch, {"datapath": "user", "failMode": "standalone"})
    # Names distinct from edgetestbed's (a leftover of one must not hide the other).
    rename = lambda name: "r" + name  # noqa: E731
    result: dict = {}
    with MemoryPeak() as memory:
        with timed(result, "build_s"):
            net = Mininet(topo=None, build=False, controller=None, host=CPULimitedHost,
                          link=TCLink, waitConnected=False)
            for switch_name in plan.switches:
                net.addSwitch(rename(switch_name), cls=cls, dpid=f"{len(net.switches) + 1:x}", **params)
            for host in plan.hosts:
                net.addHost(rename(host.name), ip=host.ip)
                net.addLink(rename(host.name), rename(host.switch))
            for link in plan.shaped_links:
                net.addLink(rename(link.a), rename(link.b), bw=link.spec.bw_mbit)
            net.start()
            # limits last, as edgetestbed does: setup commands in a 1 %-of-a-core shell crawl
            for host in plan.hosts:
                net[rename(host.name)].setCPUFrac(host.cpu / CORES)
        with timed(result, "teardown_s"):
            net.stop()
    _remove_mininet_cgroup_leftovers([rename(h.name) for h in plan.hosts])
    result["peak_memory_mib"] = memory.mib
    return result


def _remove_mininet_cgroup_leftovers(hosts: list[str]) -> None:
    """CPULimitedHost's cleanup leaves cpuacct/<host> and cpuset/<host> here (PLATFORM.md)."""
    for controller in ("cpu", "cpuacct", "cpuset"):
        for host in hosts:
            path = CGROUP_ROOT / controller / host
            if path.is_dir():
                path.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--workdir", type=Path, default=Path("runs/benchmarks"))
    args = parser.parse_args()
    setLogLevel("error")
    caps = probe()
    switches = [s for s, feature in (("lxbr", caps.linux_bridge), ("ovs-user", caps.ovs_user),
                                     ("ovs", caps.ovs_kernel)) if feature.ok]
    rows = []
    for size in args.sizes:
        for switch in switches:
            text = tree_yaml(size, switch)
            ours = bench_edgetestbed(text, args.workdir)
            raw = bench_raw_mininet(text, switch)
            row = {"hosts": size, "switch": switch, "edgetestbed": ours, "raw_mininet": raw,
                   "ratio_build": round(ours["build_s"] / raw["build_s"], 2),
                   "ratio_teardown": round(ours["teardown_s"] / raw["teardown_s"], 2)}
            rows.append(row)
            print(f"{size:>4} hosts {switch:<8} build {ours['build_s']:>6.1f}s vs {raw['build_s']:>6.1f}s "
                  f"(x{row['ratio_build']}), teardown {ours['teardown_s']:>5.1f}s vs "
                  f"{raw['teardown_s']:>5.1f}s (x{row['ratio_teardown']}), peak memory "
                  f"{ours['peak_memory_mib']} vs {raw['peak_memory_mib']} MiB", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"kernel": platform.release(), "cores": CORES, "rows": rows}, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
