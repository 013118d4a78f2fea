"""Measure every link of a run: packet captures, interface counters and (on OVS) the controller.

`NetworkMeters` is started after the network is built and before any node process, and
stopped after every node is done and before teardown. It writes to ``RUN/net/``:

``<link label>.pcap``
    tcpdump on the link's capture interface, headers only (snaplen 96: Ethernet, IPv4 and
    a TCP header with any options), both directions. Analysis counts IP total length, so
    truncation does not matter, and a GSO/GRO super-packet counts the bytes it carries.
``counters.jsonl``
    kernel counters of every interface along every link (``/proc/<pid>/net/dev`` of the
    namespace the interface lives in), one line per sample: at start, every
    ``counter_interval`` seconds, and at the end::

        {"time": t, "sample": "start" | "periodic" | "end",
         "interfaces": {"s1-eth1": {"rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                                    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}, ...}}

    Kernel byte counters count Ethernet frames (IP length + 14 bytes per packet on veths).
``portstats.jsonl``, ``controller.jsonl``, ``controller.log``
    with OVS switches: the OpenFlow controller's port statistics (every ``stats_interval``
    seconds, the last taken after traffic ended) and events (see :mod:`edgetestbed.controller`).
    Linux-bridge switches speak no OpenFlow: no controller, and ``meters.json`` says so.
``meters.json``
    what the analysis needs to read the rest (:mod:`edgetestbed.analysis.netcost`): per link
    its ``label``, ``kind``, ``ends`` (child, parent), ``between`` (Mininet nodes ``a``,
    ``b``), link ``params`` (bw_mbit, delay_ms, jitter_ms, loss_pct, queue), ``pcap``,
    ``capture`` (interface), ``interfaces`` (every interface along the link, from ``a`` to
    ``b``, each ``{"name", "host"}``, host None for the root namespace), ``a_macs`` and
    ``b_macs`` (the MAC of every interface on each side of the link, so that a captured
    frame's direction is known from its source), ``openflow`` (``{"dpid", "port"}`` of the
    capture interface, or None); then ``controller``, ``captures`` (tcpdump's own counts:
    ``captured``, ``received`` by the filter, ``dropped`` by the kernel), ``cpu_seconds`` (what
    measuring cost: ``captures``, every tcpdump together, and ``controller``), ``started`` and
    ``stopped`` times.

Where a link is captured: on the switch port of its parent side ``b`` (the parent's switch
for a tree link, the worker's switch for a sensor link, the root's switch for the WAN
link). With the userspace shaper the link is ``a — xK — b`` and that port faces the in-line
bridge's ``xK-eth1``; otherwise it faces ``a`` directly. Every frame between the two sides
crosses it, and nothing else does, so its capture, its kernel counters and its OpenFlow port
counters are the same point of the same link: ``a → b`` (up) is what arrived from the link,
``b → a`` (down) what was sent into it. Loss on the link shows as the difference from the
far end's counters (``a``'s interface), which are sampled too.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from mininet.node import OVSSwitch

from edgetestbed.controller.service import ControllerService
from edgetestbed.rundir import RunDir
from edgetestbed.topo.network import EmulatedNetwork
from edgetestbed.topo.plan import LinkPlan
from edgetestbed.topo.resources import Ledger

SNAPLEN = 96                 # Ethernet 14 + IPv4 20 + TCP with every option 60, rounded up
CAPTURE_BUFFER_KIB = 4096
CAPTURE_START_TIMEOUT = 10.0
# libpcap hands packets to tcpdump in blocks, a block at the latest 1 s (tcpdump's timeout) after
# its first packet: far cheaper than packet by packet (--immediate-mode cost a CPU-bound TCP
# transfer 15-33 % of its throughput, blocks 7-9 %), but the last block of the run's traffic
# needs that long to arrive; what arrives later (stray IPv6 solicitations) may stay unwritten.
DRAIN_SECONDS = 1.5
COUNTER_INTERVAL = 2.0
STATS_INTERVAL = 1.0
NET_DIR = "net"


# --- where each link is measured --------------------------------------------------------------

@dataclass(frozen=True)
class Interface:
    """An interface and the host whose namespace holds it (None: the root namespace)."""

    name: str
    host: str | None = None


@dataclass(frozen=True)
class LinkTap:
    """Where one link is measured; see the module docstring."""

    label: str
    kind: str
    ends: tuple[str, str]
    between: tuple[str, str]
    params: dict
    pcap: str
    capture: str
    interfaces: tuple[Interface, ...]
    a_macs: tuple[str, ...]
    b_macs: tuple[str, ...]
    openflow: dict | None

    def as_dict(self) -> dict:
        return asdict(self)


class Topology:
    """The Mininet network as a graph of nodes joined by interfaces."""

    def __init__(self, network: EmulatedNetwork) -> None:
        self.network = network
        self.net = network.net
        self.neighbours: dict[str, list[tuple[object, object]]] = {}  # node -> [(own intf, peer intf)]
        self.host_macs = {host.name: host.MAC() for host in self.net.hosts}  # one interface each
        for link in self.net.links:
            for near, far in ((link.intf1, link.intf2), (link.intf2, link.intf1)):
                self.neighbours.setdefault(near.node.name, []).append((near, far))

    def veth(self, a: str, b: str):
        """The ends ``(on a, on b)`` of the veth joining nodes ``a`` and ``b``."""
        return next((near, far) for near, far in self.neighbours[a] if far.node.name == b)

    def side(self, start: str, cut) -> set[str]:
        """Nodes reachable from ``start`` without crossing the veth whose end is ``cut``."""
        seen, todo = {start}, [start]
        while todo:
            for near, far in self.neighbours.get(todo.pop(), []):
                if cut in (near, far) or far.node.name in seen:
                    continue
                seen.add(far.node.name)
                todo.append(far.node.name)
        return seen

    def macs(self, nodes: set[str]) -> tuple[str, ...]:
        """The MAC of every interface of ``nodes`` (bridge devices included)."""
        found = []
        for name in sorted(nodes):
            if name in self.host_macs:
                found.append(self.host_macs[name])
            else:
                found += [_root_mac(intf.name) for intf in self.net[name].intfList() if intf.name != "lo"]
                found.append(_root_mac(name))
        return tuple(sorted({mac for mac in found if mac}))

    def routes(self, switch: str) -> dict[str, int]:
        """Host MAC -> the port of ``switch`` towards that host, for every host."""
        ports = self.net[switch].ports
        return {mac: ports[self._first_hop(switch, host)] for host, mac in self.host_macs.items()}

    def _first_hop(self, start: str, goal: str):
        """``start``'s interface on the (only, it is a tree) path to ``goal``."""
        todo = deque((far.node.name, near) for near, far in self.neighbours[start])
        seen = {start}
        while todo:
            name, first = todo.popleft()
            if name == goal:
                return first
            seen.add(name)
            todo.extend((far.node.name, first) for _, far in self.neighbours.get(name, [])
                        if far.node.name not in seen)
        raise ValueError(f"no path from {start} to {goal}")


def _root_mac(name: str) -> str | None:
    path = Path("/sys/class/net", name, "address")
    return path.read_text().strip() if path.exists() else None


def link_tap(topology: Topology, link: LinkPlan) -> LinkTap:
    """Where ``link`` is measured: its interfaces from ``a`` to ``b``, captured at the last one."""
    network = topology.network
    bridge = network.inline_bridges.get(link.label)
    if bridge:
        chain = [*topology.veth(link.a, bridge), *topology.veth(bridge, link.b)]
    else:
        chain = list(topology.veth(link.a, link.b))
    b_end = chain[-1]
    hosts = network.plan.host_names
    interfaces = tuple(Interface(i.name, i.node.name if i.node.name in hosts else None) for i in chain)
    b_side = topology.side(link.b, b_end)
    a_side = set(topology.neighbours) - b_side
    switch = network.net[link.b]
    openflow = ({"dpid": switch.dpid, "port": switch.ports[b_end]} if isinstance(switch, OVSSwitch) else None)
    return LinkTap(label=link.label, kind=link.kind, ends=link.ends, between=(link.a, link.b),
                   params=_params(link), pcap=f"{link.label}.pcap", capture=b_end.name, interfaces=interfaces,
                   a_macs=topology.macs(a_side), b_macs=topology.macs(b_side), openflow=openflow)


def _params(link: LinkPlan) -> dict:
    spec = link.spec
    return {"bw_mbit": spec.bw_mbit, "delay_ms": spec.delay_ms, "jitter_ms": spec.jitter_ms,
            "loss_pct": spec.loss_pct, "queue": spec.queue}


# --- captures --------------------------------------------------------------------------------------

class Capture:
    """tcpdump on one root-namespace interface, headers only, to one pcap file."""

    def __init__(self, interface: str, path: Path, ledger: Ledger) -> None:
        self.interface = interface
        self.path = path
        self.ledger = ledger
        self._process: subprocess.Popen | None = None
        self.stats: dict = {}

    def start(self) -> None:
        """Start tcpdump; return once it says it is listening (the capture is then live)."""
        argv = ["tcpdump", "-i", self.interface, "-s", str(SNAPLEN), "-B", str(CAPTURE_BUFFER_KIB), "-n",
                "-Z", "root", "-w", str(self.path)]
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.ledger.record_process(self._process.pid, argv)
        line = _read_line(self._process.stderr, CAPTURE_START_TIMEOUT)
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"tcpdump on {self.interface} did not start: {line.strip() or 'no output'}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> dict:
        """Stop tcpdump (it flushes the file and reports its counts); return those counts."""
        if self._process is None:
            return self.stats
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            _, report = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, report = self._process.communicate()
        self._process = None
        self.stats = parse_tcpdump_report(report)
        return self.stats


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process so far (0 if there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def parse_tcpdump_report(text: str) -> dict:
    """tcpdump's closing counts: ``N packet(s) captured``, ``received by filter``, ``dropped by kernel``."""
    keys = {"captured": "captured", "received": "received by filter", "dropped": "dropped by kernel"}
    stats = {}
    for line in text.splitlines():
        words = line.split(maxsplit=2)
        if len(words) == 3 and words[0].isdigit() and words[1] in ("packet", "packets"):
            stats.update({key: int(words[0]) for key, phrase in keys.items() if words[2] == phrase})
    return stats


# --- interface counters ------------------------------------------------------------------------------

def read_counters(proc_net_dev: str) -> dict[str, dict[str, int]]:
    """``/proc/<pid>/net/dev`` as ``{interface: {"rx_bytes": ..., ...}}``."""
    counters = {}
    for line in proc_net_dev.splitlines()[2:]:
        name, _, values = line.partition(":")
        numbers = [int(v) for v in values.split()]
        rx = dict(zip(("bytes", "packets", "errors", "dropped"), numbers[0:4]))
        tx = dict(zip(("bytes", "packets", "errors", "dropped"), numbers[8:12]))
        counters[name.strip()] = {**{f"rx_{k}": v for k, v in rx.items()}, **{f"tx_{k}": v for k, v in tx.items()}}
    return counters


class CounterSampler:
    """Samples the kernel counters of a set of interfaces to a JSON-lines file."""

    def __init__(self, interfaces: dict[str, int | None], path: Path, interval: float) -> None:
        self.interfaces = interfaces  # name -> PID of a process in its namespace (None: root namespace)
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counter-sampler", daemon=True)

    def start(self) -> None:
        self.sample("start")
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.sample("end")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample("periodic")

    def sample(self, kind: str) -> None:
        found: dict[str, dict] = {}
        for pid in set(self.interfaces.values()):
            source = Path(f"/proc/{pid or 'self'}/net/dev")
            try:
                found.update(read_counters(source.read_text()))
            except OSError:
                continue  # a host that is gone
        record = {"time": time.time(), "sample": kind,
                  "interfaces": {name: found[name] for name in self.interfaces if name in found}}
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, separators=(",", ":")) + "\n")


# --- all of it, for one run ------------------------------------------------------------------------------

class NetworkMeters:
    """Captures on every link, interface counters, and the controller's port statistics (OVS)."""

    def __init__(self, network: EmulatedNetwork, run_dir: Path, ledger: Ledger,
                 counter_interval: float = COUNTER_INTERVAL, stats_interval: float = STATS_INTERVAL) -> None:
        self.network = network
        self.run_dir = Path(run_dir)
        self.net_dir = self.run_dir / NET_DIR
        self.ledger = ledger
        self.counter_interval = counter_interval
        self.stats_interval = stats_interval
        self.taps: list[LinkTap] = []
        self.captures: dict[str, Capture] = {}
        self.counters: CounterSampler | None = None
        self.controller: ControllerService | None = None
        self.description: dict = {}

    def start(self) -> None:
        """Controller (OVS), then captures, then counters; on failure stop what started and raise."""
        self.net_dir.mkdir(parents=True, exist_ok=True)
        topology = Topology(self.network)
        self.taps = [link_tap(topology, link) for link in self.network.plan.shaped_links]
        try:
            self._start_controller(topology)
            for tap in self.taps:
                self.captures[tap.label] = Capture(tap.capture, self.net_dir / tap.pcap, self.ledger)
                self.captures[tap.label].start()
            self.counters = CounterSampler(self._counted_interfaces(), self.net_dir / "counters.jsonl",
                                           self.counter_interval)
            self.counters.start()
        except BaseException:
            self.stop()
            raise
        self.description = {"switch": self.network.backends.switch, "shaping": self.network.backends.shaping,
                            "snaplen": SNAPLEN, "counter_interval": self.counter_interval,
                            "controller": self._controller_description(),
                            "links": [tap.as_dict() for tap in self.taps], "started": time.time()}
        self._write_description()

    def _start_controller(self, topology: Topology) -> None:
        switches = [s for s in self.network.net.switches
                    if isinstance(s, OVSSwitch) and s.name in self.network.plan.switches]
        if not switches:
            return
        config = {s.name: {"dpid": s.dpid, "routes": topology.routes(s.name)} for s in switches}
        self.controller = ControllerService(self.net_dir, config, self.ledger, self.stats_interval)
        self.controller.start()

    def _controller_description(self) -> dict:
        if self.controller is not None:
            return self.controller.describe()
        return {"used": False, "reason": f"{self.network.backends.switch} switches speak no OpenFlow: "
                                         "captures and interface counters only"}

    def _counted_interfaces(self) -> dict[str, int | None]:
        return {i.name: (self.network.net[i.host].pid if i.host else None)
                for tap in self.taps for i in tap.interfaces}

    def stop(self) -> None:
        """Once the last packets have reached tcpdump (``DRAIN_SECONDS``), the final counter sample
        and the captures' end back to back (so that the two see the same packets), then the last
        port statistics; every process ended, on every path."""
        time.sleep(DRAIN_SECONDS)
        stopped = time.time()
        try:
            self.description["cpu_seconds"] = self._cpu_seconds()
            if self.counters is not None:
                self.counters.stop()
            self.description["captures"] = {label: capture.stop() for label, capture in self.captures.items()}
            if self.controller is not None:
                self.description["controller_final_stats"] = self.controller.await_stats_after(
                    stopped, timeout=5 * self.stats_interval + 5)
        finally:
            for capture in self.captures.values():
                capture.stop()
            if self.controller is not None:
                self.controller.stop()
            self.description["stopped"] = time.time()
            if self.description.get("links"):
                self._write_description()

    def _cpu_seconds(self) -> dict:
        """What measuring cost: CPU seconds of the captures and of the controller."""
        controller = self.controller.pid if self.controller is not None else None
        return {"captures": round(sum(cpu_seconds(c.pid) for c in self.captures.values()), 3),
                "controller": round(cpu_seconds(controller), 3)}

    def _write_description(self) -> None:
        (self.net_dir / "meters.json").write_text(json.dumps(self.description, indent=1) + "\n")
        RunDir.open(self.run_dir).write_manifest({"meters": {
            "controller": self.description["controller"],
            "captures": {tap.label: tap.capture for tap in self.taps},
            "capture_counts": self.description.get("captures")}})
