"""The network a spec describes, as names and addresses: pure, deterministic, no root needed.

The switch tree mirrors the node tree (docs/architecture.md): node ``X`` gets host ``hI``
and switch ``sI`` (``I`` its position in the spec); the host hangs off its own
switch by an unshaped access link; the tree edge child → parent is the link
between their switches; sensor ``K`` is host ``dK`` on its worker's switch; the
cloud is host ``c1`` on the root's switch. Short Mininet names keep interface
names under the kernel's 15 characters whatever the spec's ids are.

Addresses tell the role: nodes 10.0.x.x, sensors 10.1.x.x, the cloud 10.2.0.1,
all in one /8 so the whole tree is one L2 domain and one subnet. Every host has its own
address, so every process of a role listens on the same port (:meth:`NetworkPlan.endpoints`);
the loopback backend, where all share 127.0.0.1, gives each its own port instead.

Describing is kept apart from building, as Mininet keeps ``Topo`` apart from ``Mininet``:
this module only describes; :mod:`edgetestbed.topo` builds the network (or its loopback
stand-in), and the processes take names and endpoints from here without depending on it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from edgetestbed.spec.model import LinkEvent, LinkSpec, Spec

NETWORK = ipaddress.IPv4Network("10.0.0.0/8")
NODE_BASE, SENSOR_BASE, CLOUD_BASE = (int(NETWORK.network_address) + (r << 16) for r in (0, 1, 2))
CLOUD_ID = "cloud"
NODE_PORT, SENSOR_PORT = 5555, 5556


def sensor_id(index: int) -> str:
    """How logs and reports name sensor ``index``."""
    return f"sensor{index}"


@dataclass(frozen=True)
class Endpoint:
    """Where one process listens: ``host:port`` for others, ``bind`` for itself (``*``: every
    interface of its host)."""

    host: str
    port: int
    bind: str = "*"


@dataclass(frozen=True)
class HostPlan:
    """One emulated host: a tree node, a sensor or the cloud."""

    name: str            # Mininet name (hI, dK, c1)
    ident: str           # what the user calls it: the spec id, sensorK or cloud
    role: str            # 'node' | 'sensor' | 'cloud'
    ip: str
    cpu: float           # cores
    memory: int          # bytes
    switch: str          # the switch it attaches to


@dataclass(frozen=True)
class LinkPlan:
    """A link the spec shapes: a tree edge, a sensor link or the WAN link.

    ``a``/``b`` are the Mininet nodes it joins (switches, or a host and a switch);
    ``ends`` are the two *hosts* whose traffic crosses it, as the user names them
    (child first, then parent), which is what linkcheck measures between.
    ``dynamic``: a tree link some spec event names (a change, or down and up), which a
    backend must build so it can change during the run even when its spec shapes nothing.
    """

    kind: str                    # 'tree' | 'sensor' | 'wan'
    ends: tuple[str, str]
    a: str
    b: str
    spec: LinkSpec
    dynamic: bool = False

    @property
    def label(self) -> str:
        return f"{self.ends[0]}-{self.ends[1]}"


@dataclass(frozen=True)
class NetworkPlan:
    hosts: tuple[HostPlan, ...]
    switches: tuple[str, ...]
    shaped_links: tuple[LinkPlan, ...]
    by_ident: dict[str, HostPlan] = field(default_factory=dict, compare=False)

    def host(self, ident: str) -> HostPlan:
        return self.by_ident[ident]

    @property
    def host_names(self) -> frozenset[str]:
        return frozenset(h.name for h in self.hosts)

    def endpoints(self) -> dict[str, Endpoint]:
        """Where each host's process listens on the emulated network: its own address, its role's port."""
        return {h.ident: Endpoint(h.ip.split("/")[0], SENSOR_PORT if h.role == "sensor" else NODE_PORT)
                for h in self.hosts}


def _address(base: int, offset: int) -> str:
    return f"{ipaddress.IPv4Address(base + offset)}/{NETWORK.prefixlen}"


def plan_network(spec: Spec) -> NetworkPlan:
    """Names, addresses and links for a validated spec."""
    switch_of = {node.id: f"s{i}" for i, node in enumerate(spec.nodes, start=1)}
    changing = {event.link for event in spec.events if isinstance(event, LinkEvent)}   # partition, heal too
    hosts: list[HostPlan] = []
    links: list[LinkPlan] = []
    for i, node in enumerate(spec.nodes, start=1):
        hosts.append(HostPlan(f"h{i}", node.id, "node", _address(NODE_BASE, i),
                              node.cpu, node.memory, switch_of[node.id]))
        if node.parent is not None:
            links.append(LinkPlan("tree", (node.id, node.parent), switch_of[node.id],
                                  switch_of[node.parent], node.link, node.id in changing))
        for index in node.sensors:
            name = f"d{index}"
            hosts.append(HostPlan(name, sensor_id(index), "sensor", _address(SENSOR_BASE, index + 1),
                                  spec.sensors.cpu, spec.sensors.memory, switch_of[node.id]))
            links.append(LinkPlan("sensor", (sensor_id(index), node.id), name,
                                  switch_of[node.id], spec.sensors.link))
    if spec.cloud is not None:
        root_switch = switch_of[spec.root.id]
        hosts.append(HostPlan("c1", CLOUD_ID, "cloud", _address(CLOUD_BASE, 1),
                              spec.cloud.cpu, spec.cloud.memory, root_switch))
        links.append(LinkPlan("wan", (CLOUD_ID, spec.root.id), "c1", root_switch, spec.cloud.link))
    return NetworkPlan(tuple(hosts), tuple(switch_of.values()), tuple(links),
                       {h.ident: h for h in hosts})
