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

Where a link is captured, and why there: :mod:`edgetestbed.measure.taps`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mininet.node import OVSSwitch

from edgetestbed.controller.service import ControllerService
from edgetestbed.ledger import Ledger
from edgetestbed.measure.capture import SNAPLEN, Capture
from edgetestbed.measure.counters import CounterSampler
from edgetestbed.measure.taps import LinkTap, Topology, link_tap
from edgetestbed.rundir import RunDir
from edgetestbed.topo.network import EmulatedNetwork

# libpcap hands packets to tcpdump in blocks, a block at the latest 1 s (tcpdump's timeout) after
# its first packet: far cheaper than packet by packet (--immediate-mode cost a CPU-bound TCP
# transfer 15-33 % of its throughput, blocks 7-9 %), but the last block of the run's traffic
# needs that long to arrive; what arrives later (stray IPv6 solicitations) may stay unwritten.
DRAIN_SECONDS = 1.5
COUNTER_INTERVAL = 2.0
STATS_INTERVAL = 1.0
NET_DIR = "net"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process so far (0 if there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
