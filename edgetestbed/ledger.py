"""The ledger of everything a run creates, and how to remove each kind of thing.

A run writes one JSON line to its ledger *before or right after* creating each
resource (an interface, a bridge, a process, an iptables chain, a cgroup), and
fsyncs it, so a crash at any point leaves a complete list behind. Teardown and
``edgetestbed clean`` walk that list backwards and remove what still exists,
by recorded name and PID only: nothing is ever removed by pattern.

Kinds and their fields:

==============  =====================================================
``process``     ``pid``, ``starttime`` (from /proc, guards PID reuse), ``argv``
``link``        ``name`` (an interface in the root namespace)
``ovs-bridge``  ``name``
``iptables-chain``  ``table``, ``chain``, ``hooks`` (built-in chains that jump to it)
``cgroup``      ``path`` (a directory under /sys/fs/cgroup)
``sysctl``      ``path`` (under /proc/sys), ``previous`` and ``value``: restored on removal
==============  =====================================================
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator


class Ledger:
    """Append-only record of a run's resources (JSON lines, one per resource)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, kind: str, **fields: object) -> dict:
        """Write one entry and make it durable before returning it."""
        if kind not in REMOVERS:
            raise ValueError(f"unknown resource kind {kind!r}")
        entry = {"kind": kind, **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        return entry

    def record_process(self, pid: int, argv: list[str] | str) -> dict:
        """Record a process we started, with its start time to guard against PID reuse."""
        return self.record("process", pid=pid, starttime=process_starttime(pid), argv=argv)

    def entries(self) -> list[dict]:
        """Every entry in creation order (a torn last line from a crash is ignored)."""
        if not self.path.exists():
            return []
        return list(_parse_lines(self.path.read_text(encoding="utf-8")))


def _parse_lines(text: str) -> Iterator[dict]:
    for line in text.splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def process_starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; split after it.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


# --- processes -----------------------------------------------------------------

def _process_exists(entry: dict) -> bool:
    started = process_starttime(entry["pid"])
    return started is not None and started == entry.get("starttime")


def _remove_process(entry: dict, grace: float = 3.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; only the recorded process."""
    pid = entry["pid"]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        if not _process_exists(entry):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _process_exists(entry):
            _reap(pid)
            time.sleep(0.02)


def _reap(pid: int) -> None:
    """Collect our own child so it does not linger as a zombie (other PIDs: no-op)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --- network interfaces and bridges ----------------------------------------------

def _link_exists(entry: dict) -> bool:
    return Path("/sys/class/net", entry["name"]).exists()


def _remove_link(entry: dict) -> None:
    _run("ip", "link", "del", entry["name"])


def _ovs_bridge_exists(entry: dict) -> bool:
    return _run("ovs-vsctl", "--timeout=5", "br-exists", entry["name"]).returncode == 0


def _remove_ovs_bridge(entry: dict) -> None:
    _run("ovs-vsctl", "--timeout=5", "--if-exists", "del-br", entry["name"])


# --- iptables ----------------------------------------------------------------------

def _chain_exists(entry: dict) -> bool:
    return _run("iptables", "-w", "-t", entry["table"], "-nL", entry["chain"]).returncode == 0


def _remove_chain(entry: dict) -> None:
    table, chain = entry["table"], entry["chain"]
    for hook in entry.get("hooks", []):
        # Delete every jump to our chain; -D fails once none is left.
        while _run("iptables", "-w", "-t", table, "-D", hook, "-j", chain).returncode == 0:
            pass
    _run("iptables", "-w", "-t", table, "-F", chain)
    _run("iptables", "-w", "-t", table, "-X", chain)


# --- cgroups ------------------------------------------------------------------------

def _cgroup_exists(entry: dict) -> bool:
    return Path(entry["path"]).is_dir()


def _remove_cgroup(entry: dict) -> None:
    """Remove a cgroup directory after moving any remaining tasks to its parent."""
    path = Path(entry["path"])
    if not path.is_dir():
        return
    for child in sorted((p for p in path.iterdir() if p.is_dir()), reverse=True):
        _remove_cgroup({"path": str(child)})
    _evacuate(path)
    try:
        path.rmdir()
    except OSError:
        time.sleep(0.2)  # the kernel may need a moment after the last task left
        path.rmdir()


def _evacuate(path: Path) -> None:
    procs = path / "cgroup.procs"
    if not procs.exists():
        return
    for pid in procs.read_text().split():
        try:
            (path.parent / "cgroup.procs").write_text(pid)
        except OSError:
            pass  # the task exited meanwhile


# --- sysctls ---------------------------------------------------------------------------

def _sysctl_changed(entry: dict) -> bool:
    """Still our value? (If someone changed it since, it is theirs now.)"""
    path = Path(entry["path"])
    return path.exists() and path.read_text().strip() == entry["value"]


def _restore_sysctl(entry: dict) -> None:
    Path(entry["path"]).write_text(entry["previous"])


REMOVERS: dict[str, tuple[Callable[[dict], bool], Callable[[dict], None]]] = {
    "process": (_process_exists, _remove_process),
    "link": (_link_exists, _remove_link),
    "ovs-bridge": (_ovs_bridge_exists, _remove_ovs_bridge),
    "iptables-chain": (_chain_exists, _remove_chain),
    "cgroup": (_cgroup_exists, _remove_cgroup),
    "sysctl": (_sysctl_changed, _restore_sysctl),
}


def exists(entry: dict) -> bool:
    """Does the resource an entry describes still exist?"""
    return REMOVERS[entry["kind"]][0](entry)


def remove(entry: dict) -> None:
    """Remove one resource if it still exists."""
    present, remover = REMOVERS[entry["kind"]]
    if present(entry):
        remover(entry)


def remove_all(entries: list[dict]) -> list[dict]:
    """Remove entries newest first; return those that still exist afterwards."""
    for entry in reversed(entries):
        try:
            remove(entry)
        except OSError:
            pass  # reported below as a leftover
    return [entry for entry in entries if exists(entry)]
