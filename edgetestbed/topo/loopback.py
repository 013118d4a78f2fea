"""The loopback backend: a run's processes on 127.0.0.1, without Mininet and without root.

``network: {backend: loopback}`` (or ``run --loopback``) starts the same sensor, node and
cloud processes as an emulated run, with the same spec, wiring, start barrier, logs and
analysis, as ordinary processes of the user who runs it: for iterating on a strategy in
seconds, and for fast tests of learning logic. It never pretends (:data:`NOT_EMULATED`
says so wherever a run's figures are shown):

- links are not shaped: the spec's bandwidth, delay, jitter, loss and queues apply to nothing;
- hosts are not limited: every process shares this machine's cores and memory;
- there is nothing to capture: what a link cost is the message bytes the processes logged.

``linkcheck`` refuses it (no links to measure). On an emulated network every host has its
own address and a role's processes share a port; here all share 127.0.0.1, so each process
gets its own port (:func:`free_ports`). Each process dies with the run that started it
(``PR_SET_PDEATHSIG``), so even a run killed with SIGKILL leaves none behind; teardown stops
the ones the run's ledger recorded, by PID.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

from edgetestbed import ledger as resources
from edgetestbed.errors import CapabilityError
from edgetestbed.ledger import Ledger
from edgetestbed.spec.model import Spec
from edgetestbed.spec.plan import Endpoint, NetworkPlan, plan_network

NOT_EMULATED = "no network emulation: links unshaped, costs are message bytes only"
ADDRESS = "127.0.0.1"
LOWEST_PORT = 1024   # below: privileged
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PR_SET_PDEATHSIG = 1


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now, outside the kernel's ephemeral range.

    A port from that range (what binding port 0 gives) may be taken, before its process
    binds it, by an outgoing connection: the run's own processes dial each other while the
    later ones start. Ports of other programs are skipped (a trial bind fails); one that
    binds a chosen port in the seconds before its process does makes that process fail to
    start, and the run says so with the process's output.
    """
    low, high = (int(value) for value in EPHEMERAL_RANGE.read_text().split())
    candidates = [port for port in range(LOWEST_PORT, 65536) if not low <= port <= high]
    random.shuffle(candidates)  # two loopback runs starting at once should not try the same ports
    held: list[socket.socket] = []
    try:
        for port in candidates:
            if len(held) == count:
                break
            sock = socket.socket()
            try:
                sock.bind((ADDRESS, port))
            except OSError:
                sock.close()
                continue
            held.append(sock)  # held until all are chosen, so they are distinct
        if len(held) < count:
            raise CapabilityError(f"only {len(held)} of the {count} ports a loopback run needs are free "
                                  f"on {ADDRESS}")
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def _die_with(parent: int) -> None:
    """In the forked child: SIGTERM when the run's process ends, however it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the run ended before prctl took effect
        os._exit(1)


class LoopbackHost:
    """Where one process of a loopback run runs: on this machine, as this user."""

    def __init__(self, ident: str) -> None:
        self.ident = ident

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        parent = os.getpid()
        return subprocess.Popen(argv, preexec_fn=lambda: _die_with(parent), **kwargs)


class LoopbackNetwork:
    """The loopback backend's "network": a port on 127.0.0.1 per process, nothing else.

    It has the interface of :class:`~edgetestbed.topo.network.EmulatedNetwork` that a run
    uses (``plan``, ``build``, ``host``, ``endpoints``, ``failure``, ``stop``, ...).
    """

    emulated = False
    headline = f"NOT EMULATED: {NOT_EMULATED}; every process on {ADDRESS}, as this user"

    def __init__(self, spec: Spec, ledger: Ledger) -> None:
        self.plan: NetworkPlan = plan_network(spec)
        self.ledger = ledger
        self._endpoints: dict[str, Endpoint] = {}

    def build(self) -> None:
        ports = free_ports(len(self.plan.hosts))
        self._endpoints = {host.ident: Endpoint(ADDRESS, port, bind=ADDRESS)
                           for host, port in zip(self.plan.hosts, ports)}

    def host(self, ident: str) -> LoopbackHost:
        return LoopbackHost(self.plan.host(ident).ident)

    def endpoints(self) -> dict[str, Endpoint]:
        """Each process's own port on 127.0.0.1, bound there only."""
        return dict(self._endpoints)

    def failure(self) -> str | None:
        """Nothing here can stop emulating the spec while running: it emulates nothing."""
        return None

    def stop(self) -> list[dict]:
        """Stop every process the run recorded that still runs; what could not be stopped."""
        return resources.remove_all(self.ledger.entries())

    def teardown_facts(self) -> dict:
        return {}

    def cgroup_usage(self) -> dict[str, dict]:
        """None: without cgroups, analysis takes CPU and memory from the processes' own logs."""
        return {}

    def describe(self) -> dict:
        """For the run's manifest: what this backend is, and who listens where."""
        return {"backend": "loopback", "note": NOT_EMULATED,
                "hosts": [{"id": ident, "role": self.plan.host(ident).role, "endpoint": f"{e.host}:{e.port}"}
                          for ident, e in self._endpoints.items()]}
