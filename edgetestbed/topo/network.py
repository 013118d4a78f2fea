"""Build the emulated network a spec describes, and tear down exactly what was built.

`EmulatedNetwork` turns a `NetworkPlan` into Mininet hosts, switches and links
with the chosen backends (see probe.py), limits every host's CPU and memory,
sets its TCP congestion control, keeps the CPUs from halting (``network.cpu_idle``, see
:mod:`edgetestbed.topo.idlepoll`), shapes every link with its link-shaping backend
(:mod:`edgetestbed.topo.shaping`), and records each resource
in the run's ledger as it is created, so that teardown (and ``edgetestbed
clean`` after a crash) removes exactly those resources and nothing else.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Host, OVSSwitch
from mininet.nodelib import LinuxBridge

from edgetestbed import ledger as resources
from edgetestbed.errors import CapabilityError, LeftoverError
from edgetestbed.ledger import Ledger
from edgetestbed.signals import uninterrupted
from edgetestbed.spec.model import LinkChange, Spec
from edgetestbed.spec.plan import Endpoint, HostPlan, NetworkPlan, plan_network
from edgetestbed.topo.cgroups import HostCgroup, RunCgroups
from edgetestbed.topo.idlepoll import start_idle_pollers
from edgetestbed.topo.probe import OVS_CTL, Backends
from edgetestbed.topo.shaping import SHAPINGS, LinkShaping


class LimitedHost(Host):
    """A Mininet host whose every process runs in the host's own cgroup.

    The shell is moved into the cgroup at start (commands run with `cmd`
    inherit it); a process started with `popen` joins the cgroup in the forked
    child before it execs ``mnexec``, so it never runs unlimited, not even for an
    instant. (Inside the host /sys is remounted, so joining must happen outside.)
    """

    def __init__(self, name: str, cgroup: HostCgroup, cpu: float, memory: int, **params) -> None:
        self.cgroup = cgroup
        self.limits = (cpu, memory)
        super().__init__(name, **params)
        cgroup.add_process(self.pid)

    def apply_limits(self) -> None:
        """Enforce the CPU and memory limits: once the host is configured, since every
        setup command (ip, tc, sysctl) runs in the host's shell, and at 0.05 cores each
        would take tens of milliseconds."""
        self.cgroup.set_limits(*self.limits)

    def popen(self, *args, **kwargs):
        kwargs.setdefault("preexec_fn", self._join_cgroup)
        return super().popen(*args, **kwargs)

    def _join_cgroup(self) -> None:
        """Runs in the forked child; an error here makes Popen raise in the parent."""
        self.cgroup.add_process(os.getpid())


class EmulatedNetwork:
    """The Mininet network of one run: build it, reach its hosts, tear it down.

    Use as a context manager, or call `build` and then `stop` in a ``finally``.
    """

    emulated = True

    def __init__(self, spec: Spec, backends: Backends, run_dir: Path, ledger: Ledger, tag: str) -> None:
        self.spec = spec
        self.backends = backends
        self.run_dir = Path(run_dir)
        self.ledger = ledger
        self.tag = tag
        self.plan: NetworkPlan = plan_network(spec)
        self.net: Mininet | None = None
        self.shaping: LinkShaping = SHAPINGS.get(backends.shaping)(self)
        self._ports: dict[str, int] = {}
        self._cgroups = RunCgroups(backends.cgroups, tag, ledger)
        self.shaper_counters: dict = {}
        self.stop_error: str | None = None   # what Mininet's own teardown raised, if anything

    # --- public surface -------------------------------------------------------------

    def __enter__(self) -> "EmulatedNetwork":
        self.build()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def host(self, ident: str) -> Host:
        """The Mininet host of a spec node id, ``sensorK`` or ``cloud``."""
        return self.net[self.plan.host(ident).name]

    @property
    def headline(self) -> str:
        return f"network built ({self.backends.switch}, {self.backends.shaping} shaping)"

    def endpoints(self) -> dict[str, Endpoint]:
        """Where each process listens: its host's address (see :meth:`NetworkPlan.endpoints`)."""
        return self.plan.endpoints()

    def build(self) -> None:
        """Create everything; on any failure, remove what was created and re-raise."""
        setLogLevel("error")
        self.preflight()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def failure(self) -> str | None:
        """Why the network stopped emulating the spec while running (its link shaping
        failed, e.g. the user-space shaper died), or None."""
        return self.shaping.failure()

    def parent_of(self, child: str) -> str:
        """The id of a tree node's parent."""
        return self.spec.node(child).parent

    def change_link(self, child: str, change: LinkChange) -> float:
        """Set what ``change`` gives of ``child``'s link to its parent, in both directions,
        while the network runs; the unix time it took effect."""
        return self.shaping.change_link(self._tree_label(child), delay_ms=change.delay_ms,
                                        jitter_ms=change.jitter_ms, loss_pct=change.loss_pct,
                                        bw_mbit=change.bw_mbit)

    def set_link_state(self, child: str, up: bool) -> float:
        """Take ``child``'s link to its parent down, or bring it up; the unix time it did."""
        return self.shaping.set_link_state(self._tree_label(child), up)

    def _tree_label(self, child: str) -> str:
        return f"{child}-{self.parent_of(child)}"

    def stop(self) -> list[dict]:
        """Remove everything this network created; return what could not be removed.

        Mininet's own stop is tried first (it knows the order), but an interrupted
        build can leave it unable to finish: whatever it leaves, the ledger sweep
        that follows removes by record.
        """
        with uninterrupted():
            try:
                self.shaper_counters.update(self.shaping.stop())   # {} when stopped before
                if self.net is not None:
                    self.net.stop()
            except Exception as error:  # noqa: BLE001 - the sweep below removes what is left
                self.stop_error = f"{type(error).__name__}: {error}"
            finally:
                self.net = None
            return resources.remove_all(self.ledger.entries())

    def teardown_facts(self) -> dict:
        """For the run's manifest, after `stop`: what Mininet's stop raised, the shaping's counters."""
        return {"teardown_error": self.stop_error, "shaper_counters": self.shaper_counters}

    # --- building -------------------------------------------------------------------

    def preflight(self) -> None:
        """Refuse to start if any name this network would create is already taken."""
        names = list(self.plan.switches) + self.shaping.interfaces()
        taken = [name for name in names if Path("/sys/class/net", name).exists()]
        taken += [str(p) for p in self._cgroups.parents if p.exists()]
        if taken:
            raise LeftoverError(
                "these names are in use, probably by a crashed run or another Mininet: "
                + ", ".join(taken) + ". Run `edgetestbed clean` (it removes only what a run recorded).")

    def _build(self) -> None:
        if self.spec.network.cpu_idle == "poll":
            start_idle_pollers(self.ledger)
        if self.backends.switch in ("ovs", "ovs-user"):
            self._ensure_ovs()
        self.net = Mininet(topo=None, build=False, controller=None, autoSetMacs=True,
                           autoStaticArp=False, waitConnected=False)
        self._cgroups.create()
        for switch in self.plan.switches:
            self._add_switch(switch)
        for host in self.plan.hosts:
            self._add_host(host)
        for host in self.plan.hosts:
            if host.role == "node":
                self.add_link(host.name, host.switch)
        for link in self.plan.shaped_links:
            self.shaping.add_link(link)
        self.net.build()
        self.net.start()
        self._static_arp()
        self._allow_congestion_control(self.spec.network.congestion_control)
        for host in self.net.hosts:
            self._configure_host(host)
            host.apply_limits()
        self.shaping.start()

    def _ensure_ovs(self) -> None:
        if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode == 0:
            return
        # ovs-vswitchd is a shared system daemon: started if needed, never stopped by a run.
        subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True, check=False)
        if subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode != 0:
            raise CapabilityError("could not start Open vSwitch (ovs-ctl start failed)")

    def _switch_class(self):
        if self.backends.switch == "lxbr":
            return LinuxBridge, {}
        datapath = "kernel" if self.backends.switch == "ovs" else "user"
        return OVSSwitch, {"datapath": datapath, "failMode": "standalone", "protocols": "OpenFlow13"}

    def _add_switch(self, name: str) -> None:
        cls, params = self._switch_class()
        kind = "link" if cls is LinuxBridge else "ovs-bridge"
        self.ledger.record(kind, name=name)
        switch = self.net.addSwitch(name, cls=cls, **params)
        self.ledger.record_process(switch.pid, f"mininet switch shell {name}")

    def _add_host(self, host: HostPlan) -> None:
        cgroup = self._cgroups.host(host.name)
        node = self.net.addHost(host.name, cls=LimitedHost, ip=host.ip, cgroup=cgroup,
                                cpu=host.cpu, memory=host.memory)
        self.ledger.record_process(node.pid, f"mininet host shell {host.name} ({host.ident})")

    def _intf(self, node: str) -> str:
        port = self._ports.get(node, -1) + 1
        self._ports[node] = port
        return f"{node}-eth{port}"

    def add_link(self, a: str, b: str, link_cls=Link, **params) -> tuple[str, str]:
        """A veth pair; its root-namespace ends are recorded before it exists. The shaping
        backend builds the shaped links with it (``params``: Mininet's ``addLink``'s).
        The names of its two interfaces, ``a``'s first."""
        names = (self._intf(a), self._intf(b))
        for name, node in zip(names, (a, b)):
            if node not in self.plan.host_names:  # host ends vanish with the host's namespace
                self.ledger.record("link", name=name)
        self.net.addLink(a, b, intfName1=names[0], intfName2=names[1], cls=link_cls, **params)
        return names

    def _static_arp(self) -> None:
        """Every host knows every neighbour: no ARP broadcasts in the measurements, no
        first-packet ARP delay. One ``ip -batch`` per host, not Mininet's one command per
        pair (40,000 commands for 200 hosts)."""
        hosts = self.net.hosts
        for host in hosts:
            lines = [f"neigh replace {other.IP()} lladdr {other.MAC()} dev {host.defaultIntf()}\n"
                     for other in hosts if other is not host]
            batch = host.popen(["ip", "-batch", "-"], stdin=subprocess.PIPE, text=True)
            _, error = batch.communicate("".join(lines))
            if batch.returncode:
                raise RuntimeError(f"{host.name}: static ARP entries failed: {error.strip()}")

    def _allow_congestion_control(self, algorithm: str) -> None:
        """Let namespaces choose ``algorithm``: the kernel allows them only the root's allowed list."""
        allowed = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
        available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
        current = allowed.read_text().split()
        if algorithm not in available:
            raise CapabilityError(f"TCP congestion control {algorithm!r} is not available here "
                                  f"(available: {' '.join(available)})")
        if algorithm in current:
            return
        value = " ".join(current + [algorithm])
        self.ledger.record("sysctl", path=str(allowed), previous=" ".join(current), value=value)
        allowed.write_text(value)

    def _configure_host(self, host: Host) -> None:
        algorithm = self.spec.network.congestion_control
        host.cmd(f"sysctl -qw net.ipv4.tcp_congestion_control={algorithm}")
        actual = host.cmd("sysctl -n net.ipv4.tcp_congestion_control").strip()
        if actual != algorithm:
            raise CapabilityError(f"{host.name}: TCP congestion control {algorithm!r} is not "
                                  f"available (got {actual!r}; see tcp_available_congestion_control)")
        self._turn_off_offloads(host)

    def _turn_off_offloads(self, host: Host) -> None:
        """Turn off the host's offloads that would bend what the links measure: those the
        shaping backend names (its docstring says why), and checksum offload on OVS's
        userspace datapath."""
        features = list(self.shaping.offloads)
        if self.backends.switch == "ovs-user":
            # OVS's userspace datapath does not complete offloaded checksums: TCP would stall.
            features += ["tx", "off"]
        if not features:
            return
        for intf in host.intfNames():
            if intf == "lo":
                continue
            ethtool = host.popen(["ethtool", "-K", intf, *features], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            error = ethtool.communicate()[1].strip()
            if ethtool.returncode:
                raise CapabilityError(f"{host.name}: cannot turn off offloads on {intf} "
                                      f"(ethtool -K {intf} {' '.join(features)}): {error}")

    # --- reporting ---------------------------------------------------------------------

    def cgroup_usage(self) -> dict[str, dict]:
        """CPU seconds and peak memory each host's cgroup accounted (read before teardown)."""
        usage = {}
        for plan in self.plan.hosts:
            cgroup = self.host(plan.ident).cgroup
            usage[plan.ident] = {"cpu_seconds": round(cgroup.cpu_seconds(), 3),
                                 "memory_peak_bytes": cgroup.memory_peak()}
        return usage

    def describe(self) -> dict:
        """Names, addresses and links, for the run's manifest."""
        return {
            "hosts": [{"name": h.name, "id": h.ident, "role": h.role, "ip": h.ip, "switch": h.switch,
                       "cpu": h.cpu, "memory": h.memory} for h in self.plan.hosts],
            "switches": list(self.plan.switches),
            "links": [{"kind": l.kind, "ends": list(l.ends), "between": [l.a, l.b],
                       "inline_bridge": self.shaping.inline_bridge(l.label)} for l in self.plan.shaped_links],
            **self.shaping.describe(),
        }
