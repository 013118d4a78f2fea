"""Where each link of a run is measured: the interfaces along it, the one it is captured on,
the MACs on each side of it and its OpenFlow port, as ``meters.json`` lists them
(:mod:`edgetestbed.measure.meters`).

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

from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from mininet.node import OVSSwitch

from edgetestbed.spec.plan import LinkPlan
from edgetestbed.topo.network import EmulatedNetwork


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
    bridge = network.shaping.inline_bridge(link.label)
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
