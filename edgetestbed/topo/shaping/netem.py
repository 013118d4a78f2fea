"""netem: the kernel shapes each link on its two interfaces, as Mininet's TCLink does."""

from __future__ import annotations

from mininet.link import TCLink

from edgetestbed.spec.model import LinkSpec
from edgetestbed.spec.plan import LinkPlan
from edgetestbed.topo.htb import HtbIntf, bw_params
from edgetestbed.topo.shaping.base import SHAPINGS, LinkShaping


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


@SHAPINGS.register
class NetemShaping(LinkShaping):
    """The kernel's netem qdisc (delay, jitter, loss, queue limit) under htb (the rate) on
    both interfaces of every shaped link; nothing runs in user space.

    The hosts' offloads stay on, as in stock Mininet: turned off, netem's jitter reorders
    every MTU-sized packet, and in the stock-kernel guest TCP then fell below linkcheck's
    tolerance on the jittery link.
    """

    name = "netem"
    feature = "netem"
    rank = 0

    def add_link(self, link: LinkPlan) -> None:
        self.network.add_link(link.a, link.b, TCLink, intf=HtbIntf, **_netem_params(link.spec))

    def describe(self) -> dict:
        return {"shaped_ports": []}   # the user-space shaper's; every manifest has the key
