"""CPU and memory limits for emulated hosts, through cgroup v1 or v2.

Each run gets one parent group, ``edgetestbed-<tag>``, and each limited host a
child group in it. The spec gives CPU in cores (like Docker's ``--cpus``), so the
CFS quota is ``cores × period`` directly, not Mininet's whole-machine fraction.
Files are written directly (no cgcreate/cgclassify), which works the same on
both hierarchies and on v1 layouts where cpu and cpuacct are mounted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgetestbed.ledger import Ledger

CGROUP_ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000
V1_CONTROLLERS = ("cpu", "cpuacct", "memory")


@dataclass(frozen=True)
class HostCgroup:
    """The cgroup directories of one host (one per v1 hierarchy, or one v2 directory)."""

    version: str
    dirs: tuple[Path, ...]

    @property
    def procs_files(self) -> tuple[Path, ...]:
        """Writing a PID to each of these moves that process into the host's group."""
        return tuple(d / "cgroup.procs" for d in self.dirs)

    def add_process(self, pid: int) -> None:
        for procs in self.procs_files:
            procs.write_text(str(pid))

    def set_limits(self, cpu_cores: float, memory_bytes: int) -> None:
        quota = max(1000, int(cpu_cores * CFS_PERIOD_US))  # the kernel's minimum quota is 1 ms
        if self.version == "v2":
            self._write("cpu.max", f"{quota} {CFS_PERIOD_US}")
            self._write("memory.max", str(memory_bytes))
            self._write("memory.swap.max", "0", optional=True)
        else:
            self._write("cpu.cfs_period_us", str(CFS_PERIOD_US))
            self._write("cpu.cfs_quota_us", str(quota))
            self._write("memory.limit_in_bytes", str(memory_bytes))

    def limits(self) -> tuple[float, int]:
        """The limits in force, read back from the kernel: (cores, bytes)."""
        if self.version == "v2":
            quota, period = self._read("cpu.max").split()
            return int(quota) / int(period), int(self._read("memory.max"))
        quota, period = int(self._read("cpu.cfs_quota_us")), int(self._read("cpu.cfs_period_us"))
        return quota / period, int(self._read("memory.limit_in_bytes"))

    def cpu_seconds(self) -> float:
        """CPU time used by every process that ran in the group."""
        if self.version == "v2":
            usage = self._read("cpu.stat").split("usage_usec")[1].split()[0]
            return int(usage) / 1e6
        return int(self._read("cpuacct.usage")) / 1e9

    def memory_peak(self) -> int:
        """Peak memory in bytes (v2 without memory.peak reports current use)."""
        if self.version == "v2":
            name = "memory.peak" if self._find("memory.peak") else "memory.current"
            return int(self._read(name))
        return int(self._read("memory.max_usage_in_bytes"))

    def _find(self, name: str) -> Path | None:
        return next((d / name for d in self.dirs if (d / name).exists()), None)

    def _read(self, name: str) -> str:
        path = self._find(name)
        if path is None:
            raise FileNotFoundError(f"no {name} in {', '.join(map(str, self.dirs))}")
        return path.read_text()

    def _write(self, name: str, value: str, optional: bool = False) -> None:
        path = self._find(name)
        if path is None:
            if optional:
                return
            raise FileNotFoundError(f"no {name} in {', '.join(map(str, self.dirs))}")
        path.write_text(value)


class RunCgroups:
    """The cgroups of one run: a parent group per hierarchy and one child per host."""

    def __init__(self, version: str, tag: str, ledger: Ledger) -> None:
        self.version = version
        self.name = f"edgetestbed-{tag}"
        self.ledger = ledger
        self.parents = self._hierarchy_dirs(self.name)

    def _hierarchy_dirs(self, relative: str) -> tuple[Path, ...]:
        if self.version == "v2":
            return (CGROUP_ROOT / relative,)
        # cpu and cpuacct may be one hierarchy mounted twice (cpu,cpuacct): dedupe.
        unique: dict[Path, Path] = {}
        for controller in V1_CONTROLLERS:
            mount = CGROUP_ROOT / controller
            unique.setdefault(mount.resolve(), mount / relative)
        return tuple(unique.values())

    def create(self) -> None:
        """Create the run's parent groups, recording each before it exists."""
        for path in self.parents:
            self.ledger.record("cgroup", path=str(path))
            path.mkdir()
        if self.version == "v2":
            _enable_v2_controllers(self.parents[0])

    def host(self, name: str) -> HostCgroup:
        """Create a host's group; the parent's ledger entry covers its removal."""
        dirs = tuple(parent / name for parent in self.parents)
        for path in dirs:
            path.mkdir()
        return HostCgroup(self.version, dirs)


def _enable_v2_controllers(parent: Path) -> None:
    """Delegate cpu and memory to the run's subtree (needed for children to use them)."""
    for directory in (parent.parent, parent):
        control = directory / "cgroup.subtree_control"
        enabled = control.read_text().split()
        for controller in ("cpu", "memory"):
            if controller not in enabled:
                control.write_text(f"+{controller}")
