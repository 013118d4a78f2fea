"""userspace: an in-line bridge per shaped link, an NFQUEUE handler delays and drops, htb rates."""

from __future__ import annotations

import dataclasses
from time import time
from typing import TYPE_CHECKING

from mininet.link import Intf
from mininet.nodelib import LinuxBridge

from edgetestbed.errors import CapabilityError
from edgetestbed.spec.plan import LinkPlan
from edgetestbed.topo.htb import HtbIntf, bw_params, change_rate
from edgetestbed.topo.shaper import ShapedPort, UserspaceShaper
from edgetestbed.topo.shaping.base import SHAPINGS, LinkShaping, set_port_state

if TYPE_CHECKING:
    from edgetestbed.topo.network import EmulatedNetwork


@SHAPINGS.register
class UserspaceShaping(LinkShaping):
    """Where the kernel has no netem: a Linux bridge in line on every link with a rate or an
    impairment, or that spec events change (``LinkPlan.dynamic``), whose ports' incoming
    packets one user-space NFQUEUE handler delays, jitters and drops
    (:mod:`edgetestbed.topo.shaper`), with htb for the rate and queue on its ports.

    Segmentation offloads (TSO, GSO) go on every host: a GSO super-packet of up to 64 KB
    counted as one packet against a link's ``queue`` and htb let it overshoot the rate (a
    10 Mbit/s link with a 20-packet queue and no delay carried 5.2-9.6 Mbit/s of TCP, with
    up to 220 retransmissions in 2 s; 9.56 every time with them off).
    """

    name = "userspace"
    feature = "userspace_shaping"
    rank = 1
    offloads = ("tso", "off", "gso", "off")

    def __init__(self, network: EmulatedNetwork) -> None:
        super().__init__(network)
        self.shaper: UserspaceShaper | None = None
        self.shaped_ports: list[ShapedPort] = []
        self.inline_bridges: dict[str, str] = {}   # link label -> in-line bridge name

    def interfaces(self) -> list[str]:
        return [f"x{i}" for i in range(1, len(self.network.plan.shaped_links) + 1)]

    def add_link(self, link: LinkPlan) -> None:
        network = self.network
        if link.spec.bw_mbit is None and not link.spec.impaired and not link.dynamic:
            network.add_link(link.a, link.b)
            return
        # a -- [xK-eth0 | bridge xK | xK-eth1] -- b: shape packets entering xK on either port,
        # and rate-limit on xK's egress ports, so everything happens on a plain Linux bridge.
        bridge = f"x{len(self.inline_bridges) + 1}"
        self.inline_bridges[link.label] = bridge
        self._add_inline_bridge(bridge)
        bw = {**bw_params(link.spec), "queue": link.spec.queue}
        network.add_link(link.a, bridge, cls2=HtbIntf, cls1=Intf, params2=bw)
        network.add_link(bridge, link.b, cls1=HtbIntf, cls2=Intf, params1=bw)
        if link.spec.impaired or link.dynamic:   # a dynamic link's ports, so events can impair them
            for port in (f"{bridge}-eth0", f"{bridge}-eth1"):
                self.shaped_ports.append(ShapedPort(port, link.spec.delay_ms, link.spec.jitter_ms,
                                                    link.spec.loss_pct, link.spec.queue))

    def _add_inline_bridge(self, name: str) -> None:
        ledger = self.network.ledger
        ledger.record("link", name=name)
        bridge = self.network.net.addSwitch(name, cls=LinuxBridge)
        ledger.record_process(bridge.pid, f"mininet in-line bridge shell {name}")

    def start(self) -> None:
        if self.shaped_ports:
            network = self.network
            self.shaper = UserspaceShaper(f"ETB-{network.tag}", self.shaped_ports, network.run_dir / "net",
                                          network.spec.seed, network.ledger)
            self.shaper.start()

    def stop(self) -> dict:
        shaper, self.shaper = self.shaper, None
        return shaper.stop() if shaper is not None else {}

    def failure(self) -> str | None:
        """Its handler died: NFQUEUE then drops every packet of every shaped link."""
        return self.shaper.failure() if self.shaper is not None else None

    def inline_bridge(self, label: str) -> str | None:
        return self.inline_bridges.get(label)

    def describe(self) -> dict:
        return {"shaped_ports": [dataclasses.asdict(p) for p in self.shaped_ports]}

    def change_link(self, label: str, delay_ms: float | None = None,
                    jitter_ms: float | None = None, loss_pct: float | None = None,
                    bw_mbit: float | None = None) -> float:
        """Both directions of the link at once: the shaper's ports (delay, jitter, loss),
        then htb on both bridge ports (rate). The time the last part was applied.

        Only a link built shaped can change: one with neither rate nor impairment in the
        spec has no in-line bridge, one with a rate but no impairment no shaped ports.
        """
        ports = self._ports(label)
        impairment = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct}
        if all(value is None for value in impairment.values()) and bw_mbit is None:
            raise ValueError(f"link {label}: nothing to change")
        at = None
        if any(value is not None for value in impairment.values()):
            shaped = {port.port for port in self.shaped_ports}
            if self.shaper is None or not shaped.issuperset(ports):
                raise CapabilityError(f"link {label} has no delay, jitter or loss in the spec, "
                                      "so nothing shapes them during the run; give it one "
                                      "(e.g. delay: 0.01ms) to change them")
            for port in ports:
                at = self.shaper.change(port, **impairment)
        if bw_mbit is not None:
            for port in ports:
                change_rate(port, bw_mbit)
            at = time()
        return at

    def set_link_state(self, label: str, up: bool) -> float:
        """Both ports of the link's in-line bridge down (nothing crosses) or up."""
        for port in self._ports(label):
            set_port_state(port, up)
        return time()

    def _ports(self, label: str) -> tuple[str, str]:
        bridge = self.inline_bridges.get(label)
        if bridge is None:
            raise CapabilityError(f"link {label} has no in-line bridge (it has neither rate nor "
                                  "impairment in the spec), so it cannot change during the run")
        return f"{bridge}-eth0", f"{bridge}-eth1"

