"""A link's rate: Mininet's htb interface, as every link-shaping backend uses it.

Both backends (:mod:`edgetestbed.topo.shaping`) limit a link's bandwidth with htb on its
interfaces: netem's sits under the htb class, the user-space shaper's in-line bridge
ports carry htb alone. Kept out of the shaping package's ``base`` so that choosing a
backend (:mod:`edgetestbed.topo.probe`) imports no Mininet.
"""

from __future__ import annotations

from mininet.link import TCIntf

from edgetestbed.spec.model import LinkSpec


class HtbIntf(TCIntf):
    """Mininet's TCIntf, plus a packet queue limit on the htb class without netem.

    ``queue`` (packets) becomes a pfifo under the htb class: the bottleneck queue
    of the link, as netem's ``limit`` is where netem exists. Above ~16 Mbit/s tc
    warns that the htb quantum is large; with one class per interface it never
    matters, so that warning is dropped instead of printed as "*** Error".
    """

    def config(self, queue: int | None = None, **params) -> dict:
        result = super().config(**params)
        if queue and params.get("bw"):
            self.tc(f"%s qdisc add dev %s parent 5:1 handle 10: pfifo limit {int(queue)}")
        return result

    def tc(self, cmd: str, tc: str = "tc") -> str:
        output = super().tc(cmd, tc)
        return "".join(line for line in output.splitlines(keepends=True) if "quantum" not in line)


def bw_params(spec: LinkSpec) -> dict:
    """The link's rate as :class:`HtbIntf` takes it (nothing: not limited)."""
    return {} if spec.bw_mbit is None else {"bw": spec.bw_mbit}
