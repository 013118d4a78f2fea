"""A link's rate: Mininet's htb interface, as every link-shaping backend uses it.

Both backends (:mod:`edgetestbed.topo.shaping`) limit a link's bandwidth with htb on its
interfaces: netem's sits under the htb class, the user-space shaper's in-line bridge
ports carry htb alone. Kept out of the shaping package's ``base`` so that choosing a
backend (:mod:`edgetestbed.topo.probe`) imports no Mininet.
"""

from __future__ import annotations

import math
import subprocess

from mininet.link import TCIntf

from edgetestbed.errors import CapabilityError
from edgetestbed.spec.model import LinkSpec

# What Mininet's TCIntf.bwCmds sets up for ``bw`` (without hfsc, tbf, ECN or RED): a root
# htb qdisc 5:0 whose default class 5:1 carries the rate, with this burst.
HTB_BURST = "15k"


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


def change_rate(interface: str, bw_mbit: float) -> None:
    """Give a root-namespace interface's htb class a new rate (and ceil), at once.

    The class is the one :class:`HtbIntf` made (5:1 under the root htb 5:0), with its
    burst; its queue (the pfifo under it) stays. An interface made without a rate gets
    that root qdisc and class now, without a queue limit of its own.
    """
    if isinstance(bw_mbit, bool) or not isinstance(bw_mbit, (int, float)) \
            or not math.isfinite(bw_mbit) or not 0 < bw_mbit <= TCIntf.bwParamMax:
        raise ValueError(f"{interface}: rate must be within 0..{TCIntf.bwParamMax} Mbit/s, "
                         f"not {bw_mbit!r}")
    rate = f"{float(bw_mbit):f}Mbit"
    htb = ["htb", "rate", rate, "ceil", rate, "burst", HTB_BURST]
    if "qdisc htb 5: root" not in run_tc("qdisc", "show", "dev", interface):
        run_tc("qdisc", "add", "dev", interface, "root", "handle", "5:0", "htb", "default", "1")
        run_tc("class", "add", "dev", interface, "parent", "5:0", "classid", "5:1", *htb)
    else:
        run_tc("class", "change", "dev", interface, "parent", "5:0", "classid", "5:1", *htb)


def run_tc(*args: str) -> str:
    """``tc ARGS`` in the root namespace; its output, or CapabilityError with tc's reason."""
    done = subprocess.run(["tc", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CapabilityError(f"tc {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
