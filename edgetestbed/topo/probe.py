"""What can this machine emulate? Probe the kernel and tools, then choose backends.

Every probe tries the real thing where that is cheap and leaves nothing behind:
kernel features are exercised inside a throw-away network namespace
(``unshare --net``), which vanishes with the probing process. The result is a
`Capabilities` record that the CLI prints (``edgetestbed check``), that the run
stores in its manifest, and from which `choose_backends` picks the switch and
link-shaping backends for a spec, or refuses with a reason.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgetestbed.errors import CapabilityError
from edgetestbed.topo.shaping import SHAPINGS

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


@dataclass(frozen=True)
class Feature:
    """One capability: is it there, and why (or why not)."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Capabilities:
    """Everything `choose_backends` and ``check`` need to know about this machine."""

    root: Feature
    mininet: Feature
    netem: Feature
    htb: Feature
    linux_bridge: Feature
    ovs_kernel: Feature
    ovs_user: Feature
    ovs_running: Feature
    nfqueue: Feature
    br_netfilter: Feature
    cgroups: Feature
    cgroup_cpu: Feature
    cgroup_memory: Feature
    tcpdump: Feature
    iperf3: Feature
    controller: Feature
    congestion_control: Feature
    cores: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def userspace_shaping(self) -> Feature:
        """The NFQUEUE shaper needs the iptables target, bridge netfilter and the Python binding."""
        parts = [self.nfqueue, self.br_netfilter]
        if not all(part.ok for part in parts):
            return Feature(False, "; ".join(p.detail for p in parts if not p.ok))
        return Feature(True, "NFQUEUE handler with deferred verdicts on in-line Linux bridges")


@dataclass(frozen=True)
class Backends:
    """The backends a run uses; recorded in its manifest."""

    switch: str        # 'ovs' (kernel datapath) | 'ovs-user' | 'lxbr'
    shaping: str       # a link-shaping backend's name: 'netem' | 'userspace' (topo/shaping/)
    cgroups: str       # 'v1' | 'v2'


def _run(argv: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(argv, 127, "", str(error))


def _in_scratch_netns(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a new, empty network namespace that dies with it."""
    return _run(["unshare", "--net", "sh", "-ec", script])


def _tool(name: str) -> Feature:
    path = shutil.which(name)
    return Feature(bool(path), path or f"{name} not installed")


def _first_line(result: subprocess.CompletedProcess) -> str:
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"exit status {result.returncode}"


def probe_qdisc(kind_args: str) -> Feature:
    """Can a qdisc of this kind be attached? (tried on lo in a scratch namespace)"""
    result = _in_scratch_netns(f"ip link set lo up; tc qdisc add dev lo root {kind_args}")
    return Feature(result.returncode == 0, "works" if result.returncode == 0 else _first_line(result))


def probe_linux_bridge() -> Feature:
    if not shutil.which("brctl"):
        return Feature(False, "brctl not installed (Mininet's LinuxBridge needs bridge-utils)")
    result = _in_scratch_netns("ip link add etbprobe type bridge")
    return Feature(result.returncode == 0, "works" if result.returncode == 0 else _first_line(result))


def probe_ovs_kernel() -> Feature:
    """The OVS kernel datapath needs the openvswitch module (loaded or loadable)."""
    if not Path("/sys/module/openvswitch").exists():
        _run(["modprobe", "-q", "openvswitch"])
    if Path("/sys/module/openvswitch").exists():
        return Feature(True, "openvswitch kernel module loaded")
    return Feature(False, "no openvswitch kernel module (modprobe openvswitch failed)")


def probe_ovs_running() -> Feature:
    if not shutil.which("ovs-vsctl"):
        return Feature(False, "openvswitch-switch not installed")
    result = _run(["ovs-vsctl", "--timeout=3", "show"])
    if result.returncode == 0:
        return Feature(True, "ovs-vswitchd and ovsdb-server are running")
    can_start = os.access(OVS_CTL, os.X_OK)
    return Feature(False, "not running; " + ("a run starts it with ovs-ctl" if can_start else "ovs-ctl missing"))


def probe_ovs_user() -> Feature:
    """The userspace (netdev) datapath needs only the OVS daemons, which a run can start."""
    if not shutil.which("ovs-vsctl"):
        return Feature(False, "openvswitch-switch not installed")
    if _run(["ovs-vsctl", "--timeout=3", "show"]).returncode == 0 or os.access(OVS_CTL, os.X_OK):
        return Feature(True, "datapath_type=netdev (ovs-vswitchd in user space)")
    return Feature(False, "ovs-vswitchd is not running and ovs-ctl is missing")


def probe_nfqueue() -> Feature:
    """The NFQUEUE target with a physdev match, tried in a scratch namespace."""
    if not shutil.which("iptables"):
        return Feature(False, "iptables not installed")
    if importlib.util.find_spec("netfilterqueue") is None:
        return Feature(False, "Python package NetfilterQueue missing (pip install NetfilterQueue)")
    rule = "-m physdev --physdev-in etbprobe -j NFQUEUE --queue-num 1"
    result = _in_scratch_netns(f"iptables -w -t mangle -A PREROUTING {rule}")
    return Feature(result.returncode == 0, "works" if result.returncode == 0 else _first_line(result))


def probe_br_netfilter() -> Feature:
    knob = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if not knob.exists():
        _run(["modprobe", "-q", "br_netfilter"])
    if not knob.exists():
        return Feature(False, "br_netfilter is not available (bridged packets never reach iptables)")
    if knob.read_text().strip() != "1":
        return Feature(False, "net.bridge.bridge-nf-call-iptables is 0; set it to 1")
    return Feature(True, "bridged IPv4 traverses iptables")


def cgroup_version() -> str | None:
    """'v2' for a unified hierarchy, 'v1' for per-controller mounts, None without cgroups."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "cpu").is_dir() or (root / "memory").is_dir():
        return "v1"
    return None


def probe_cgroups() -> tuple[Feature, Feature, Feature]:
    version = cgroup_version()
    if version is None:
        none = Feature(False, "no cgroup hierarchy under /sys/fs/cgroup")
        return none, none, none
    if version == "v2":
        available = (Path("/sys/fs/cgroup/cgroup.controllers")).read_text().split()
        has = lambda ctl: ctl in available  # noqa: E731
    else:
        has = lambda ctl: (Path("/sys/fs/cgroup") / ctl).is_dir()  # noqa: E731
    def feature(ctl: str) -> Feature:
        return Feature(has(ctl), f"{ctl} controller" + ("" if has(ctl) else " missing"))
    return Feature(True, version), feature("cpu"), feature("memory")


def probe_controller() -> Feature:
    """An OpenFlow controller runtime with the Ryu API: Ryu itself, or its fork os-ken."""
    for module, manager in (("ryu", "ryu-manager"), ("os_ken", "osken-manager")):
        if importlib.util.find_spec(module) is not None:
            return Feature(True, f"{module} ({shutil.which(manager) or 'no manager script'})")
    return Feature(False, "neither ryu nor os_ken is importable (apt install python3-os-ken)")


def probe_congestion_control() -> Feature:
    path = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
    available = path.read_text().strip() if path.exists() else ""
    return Feature(bool(available), available or "unknown")


def probe() -> Capabilities:
    """Probe everything; takes about a second."""
    cgroups, cpu, memory = probe_cgroups()
    return Capabilities(
        root=Feature(os.geteuid() == 0, "root" if os.geteuid() == 0 else "not root: use sudo"),
        mininet=Feature(importlib.util.find_spec("mininet") is not None and bool(shutil.which("mnexec")),
                        shutil.which("mnexec") or "mininet not installed (apt install mininet)"),
        netem=probe_qdisc("netem delay 1ms"),
        htb=probe_qdisc("handle 5: htb default 1"),
        linux_bridge=probe_linux_bridge(),
        ovs_kernel=probe_ovs_kernel(),
        ovs_user=probe_ovs_user(),
        ovs_running=probe_ovs_running(),
        nfqueue=probe_nfqueue(),
        br_netfilter=probe_br_netfilter(),
        cgroups=cgroups,
        cgroup_cpu=cpu,
        cgroup_memory=memory,
        tcpdump=_tool("tcpdump"),
        iperf3=_tool("iperf3"),
        controller=probe_controller(),
        congestion_control=probe_congestion_control(),
        cores=os.cpu_count() or 1,
    )


# 'auto' tries these in order. Linux bridges come before OVS's userspace datapath: without
# DPDK every packet wakes ovs-vswitchd, adding ~0.2 ms per switch (spikes to 1.3 ms) where a
# bridge adds ~0.05 ms, so a 10 ms link measured 11.2 ms through two userspace switches, out
# of linkcheck's tolerance. `switch: ovs-user` still gets OpenFlow and the controller here.
SWITCH_FEATURE = {"ovs": "ovs_kernel", "lxbr": "linux_bridge", "ovs-user": "ovs_user"}


def _pick(asked: str, table: dict[str, str], caps: Capabilities, what: str) -> str:
    """The asked backend if it works, or the first working one for 'auto'."""
    candidates = list(table) if asked == "auto" else [asked]
    reasons = []
    for name in candidates:
        feature: Feature = getattr(caps, table[name])
        if feature.ok:
            return name
        reasons.append(f"{name}: {feature.detail}")
    raise CapabilityError(f"no usable {what} backend ({asked} asked): " + "; ".join(reasons))


def choose_backends(switch: str, shaping: str, caps: Capabilities) -> Backends:
    """The backends for a spec's ``network:`` choices, or a CapabilityError naming what is missing.

    Link shaping: a backend of :data:`~edgetestbed.topo.shaping.SHAPINGS`, whose ``feature``
    says whether it works here; 'auto' tries them by rank. The registry imports the
    backends' modules, and with them Mininet, only once Mininet is known to be there.
    """
    for required in ("root", "mininet", "htb", "cgroups", "cgroup_cpu", "cgroup_memory"):
        feature: Feature = getattr(caps, required)
        if not feature.ok:
            raise CapabilityError(f"cannot build a network: {required}: {feature.detail}")
    shaping_feature = {cls.name: cls.feature for cls in SHAPINGS.plugins()}
    return Backends(
        switch=_pick(switch, SWITCH_FEATURE, caps, "switch"),
        shaping=_pick(shaping, shaping_feature, caps, "link-shaping"),
        cgroups=caps.cgroups.detail,
    )
