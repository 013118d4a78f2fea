"""Measurement tools in a Mininet host: run one, or a one-off iperf3 server, and count UDP.

The tools run in the hosts' network namespaces but outside their CPU and memory
limits (see :func:`popen`): a link's check measures the link, and the CPU limits
have a check of their own.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mininet.node import Host

IPERF_PORTS = range(20000, 60000)


class MeasurementError(RuntimeError):
    """A measurement tool failed (iperf3 error, no ping reply, timeout)."""


class MeasurementTimeout(MeasurementError):
    """A measurement tool hung and was killed."""


def iperf3_test(client: Host, server: Host, argv: list[str], timeout: float,
                 settle_s: float) -> dict:
    """Run the iperf3 client ``argv`` in ``client`` against a one-off server in ``server``."""
    process, port = _iperf3_server(server)
    before = {host.name: _udp_datagrams(host) for host in (client, server)}
    try:
        out = run(client, [*argv, "-p", str(port)], timeout)
    finally:
        _stop(process)
    time.sleep(settle_s)
    after = {host.name: _udp_datagrams(host) for host in (client, server)}
    return {**json.loads(out or "{}"), "udp": {
        name: {key: after[name][key] - before[name][key] for key in after[name]}
        for name in after}}


def udp_flow(client: Host, server: Host, rate_mbit: float, seconds: float) -> list[subprocess.Popen]:
    """A UDP flow of ``rate_mbit`` from ``client`` to ``server`` for ``seconds``, started and
    not waited for (background traffic): a one-off iperf3 server listening in ``server`` first,
    then the client sending rate × seconds bytes in 1,400-byte datagrams at that rate. Both run
    outside the hosts' limits; the caller records them and stops what is still running."""
    server_process, port = _iperf3_server(server)
    total = max(1400, int(rate_mbit * 1e6 * seconds / 8))
    client_process = popen(client, ["iperf3", "-c", server.IP(), "-p", str(port), "-u", "-b", f"{rate_mbit:g}M",
                                     "-n", str(total), "-l", "1400"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [server_process, client_process]


def _udp_datagrams(host: Host) -> dict[str, int]:
    """UDP datagrams ``host``'s network namespace has sent and got so far, from its
    /proc/net/snmp. Got: delivered to a socket (``InDatagrams``), dropped for a full
    socket buffer or a bad checksum (``InErrors``, which includes ``RcvbufErrors``),
    or for no socket at all (``NoPorts``): every datagram that crossed the link."""
    snmp = Path(f"/proc/{host.pid}/net/snmp").read_text().splitlines()
    header, values = (line.split() for line in snmp if line.startswith("Udp:"))
    udp = dict(zip(header[1:], map(int, values[1:])))
    return {"sent": udp["OutDatagrams"],
            "arrived": udp["InDatagrams"] + udp["InErrors"] + udp["NoPorts"]}


def _iperf3_server(host: Host) -> tuple[subprocess.Popen, int]:
    """A one-off iperf3 server listening in ``host`` on a free port (retries on clashes)."""
    for _ in range(5):
        port = random.choice(IPERF_PORTS)
        server = popen(host, ["iperf3", "-s", "-1", "-p", str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 3
        while server.poll() is None and time.monotonic() < deadline:
            if _listening(server.pid, port):
                return server, port
            time.sleep(0.02)
        _stop(server)
    raise MeasurementError(f"iperf3 server in {host.name} did not start")


def _listening(pid: int, port: int) -> bool:
    """Whether the network namespace of ``pid`` has a TCP socket listening on ``port``."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _stop(process: subprocess.Popen, grace: float = 2.0) -> None:
    """Wait briefly for a process we started to exit, then kill it by PID."""
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def popen(host: Host, argv: list[str], **kwargs) -> subprocess.Popen:
    """``argv`` in ``host``'s network namespace, outside the host's CPU and memory limits.

    A tool held to the host's CPU share measures that share, not the link: the kernel's
    work for the tool's packets (segmenting, the bridge, queueing to the user-space
    shaper) is charged to it. The seeds example's 50 Mbit/s, 80 ms link between two
    0.5-core hosts carried 31.1-47.8 Mbit/s of TCP in 2 s tests from tools inside the
    limits (20 tests); 42.9-47.8, median 47.6, from unlimited tools (82 tests on an idle
    machine; a perfect link carries 47.8). ``preexec_fn=None`` overrides the hook by
    which a limited host's ``popen`` joins its cgroup.
    """
    return host.popen(argv, preexec_fn=None, **kwargs)


def run(host: Host, argv: list[str], timeout: float) -> str:
    """Run ``argv`` in ``host``; its stdout. Killed (by PID) and an error on timeout."""
    process = popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise MeasurementTimeout(f"{argv[0]} in {host.name} timed out after {timeout:.0f} s")
