"""netem: the kernel shapes each link on its two interfaces, as Mininet's TCLink does."""

from __future__ import annotations

import dataclasses
from time import time
from typing import TYPE_CHECKING

from mininet.link import TCLink

from edgetestbed.errors import CapabilityError
from edgetestbed.spec.model import LinkSpec
from edgetestbed.spec.plan import LinkPlan
from edgetestbed.topo.htb import HtbIntf, bw_params, change_rate, run_tc
from edgetestbed.topo.shaping.base import SHAPINGS, LinkShaping, set_port_state

if TYPE_CHECKING:
    from edgetestbed.topo.network import EmulatedNetwork

NETEM_HANDLE = "10:"    # Mininet's: netem under htb's class 5:1, or the root qdisc without a rate
HTB_CLASS = "5:1"


def _netem_params(spec: LinkSpec) -> dict:
    params = bw_params(spec)
    if spec.delay_ms:
        params["delay"] = f"{spec.delay_ms}ms"
    if spec.jitter_ms:
        params["jitter"] = f"{spec.jitter_ms}ms"
    if spec.loss_pct:
        params["loss"] = spec.loss_pct
    if spec.queue:
        params["max_queue_size"] = spec.queue
    return params


def netem_args(spec: LinkSpec) -> list[str]:
    """``tc``'s netem arguments for all of ``spec``'s delay, jitter, loss and queue: a
    ``change`` resets every parameter it does not name, so each change names them all."""
    args = ["netem", "delay", f"{spec.delay_ms:g}ms"]
    if spec.jitter_ms:
        args.append(f"{spec.jitter_ms:g}ms")
    if spec.loss_pct:
        args += ["loss", f"{spec.loss_pct:g}%"]
    if spec.queue:
        args += ["limit", str(spec.queue)]
    return args


def netem_command(interface: str, spec: LinkSpec, exists: bool) -> list[str]:
    """The ``tc`` arguments that give ``interface`` ``spec``'s netem: a change of the netem
    qdisc Mininet made, or, on a link built without one, a new one where Mininet puts it."""
    parent = ["parent", HTB_CLASS] if spec.bw_mbit is not None else ["root"]
    verb = "change" if exists else "add"
    return ["qdisc", verb, "dev", interface, *parent, "handle", NETEM_HANDLE, *netem_args(spec)]


@dataclasses.dataclass
class NetemLink:
    """A link as the netem backend built it: its two interfaces (both in the root namespace:
    a tree link joins two switches), what shapes it now, and whether it has a netem qdisc."""

    interfaces: tuple[str, str]
    spec: LinkSpec
    has_netem: bool


@SHAPINGS.register
class NetemShaping(LinkShaping):
    """The kernel's netem qdisc (delay, jitter, loss, queue limit) under htb (the rate) on
    both interfaces of every shaped link; nothing runs in user space.

    The hosts' offloads stay on, as in stock Mininet: turned off, netem's jitter reorders
    every MTU-sized packet, and in the stock-kernel guest TCP then fell below linkcheck's
    tolerance on the jittery link.

    A link changes during the run in place (``tc qdisc change`` of its netem, ``tc class
    change`` of its htb class), so packets already queued on it stay queued; one built
    without delay, jitter or loss gets its netem qdisc when an event first gives it one.
    """

    name = "netem"
    feature = "netem"
    rank = 0

    def __init__(self, network: EmulatedNetwork) -> None:
        super().__init__(network)
        self.links: dict[str, NetemLink] = {}   # link label -> its interfaces and shaping now

    def add_link(self, link: LinkPlan) -> None:
        params = _netem_params(link.spec)
        interfaces = self.network.add_link(link.a, link.b, TCLink, intf=HtbIntf, **params)
        has_netem = any(key in params for key in ("delay", "jitter", "loss", "max_queue_size"))
        self.links[link.label] = NetemLink(interfaces, link.spec, has_netem)

    def describe(self) -> dict:
        return {"shaped_ports": []}   # the user-space shaper's; every manifest has the key

    def change_link(self, label: str, delay_ms: float | None = None,
                    jitter_ms: float | None = None, loss_pct: float | None = None,
                    bw_mbit: float | None = None) -> float:
        """Both interfaces of the link: netem (delay, jitter, loss), then htb (rate); the
        time the last part was applied."""
        link = self._link(label)
        impairment = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss_pct": loss_pct}
        changed = {name: value for name, value in impairment.items() if value is not None}
        if not changed and bw_mbit is None:
            raise ValueError(f"link {label}: nothing to change")
        if bw_mbit is not None and link.spec.bw_mbit is None:
            raise CapabilityError(f"link {label} has no rate in the spec, so htb does not limit it; "
                                  "give it a bw to change it during the run")
        new = dataclasses.replace(link.spec, **changed,
                                  **({} if bw_mbit is None else {"bw_mbit": bw_mbit}))
        if changed:
            for interface in link.interfaces:
                run_tc(*netem_command(interface, new, link.has_netem))
            link.has_netem = True
        if bw_mbit is not None:
            for interface in link.interfaces:
                change_rate(interface, bw_mbit)
        link.spec = new
        return time()

    def set_link_state(self, label: str, up: bool) -> float:
        """Both ends of the link's veth pair down (nothing crosses) or up."""
        for interface in self._link(label).interfaces:
            set_port_state(interface, up)
        return time()

    def _link(self, label: str) -> NetemLink:
        link = self.links.get(label)
        if link is None:
            raise CapabilityError(f"link {label} is not a shaped link of this network")
        return link

