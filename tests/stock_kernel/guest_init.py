"""Stage 2 of the stock-kernel guest: PID 1 on the host's userland, runs the guest-marked tests.

Started by init.sh (stage 1) through ``/etb-results/stage2`` with the job file the harness
wrote (``job.json``: project, python, pytest arguments, kernel version, where the
unpacked kernel's modules are, which modules to load). It

1. mounts what a running system has (devpts, /run, cgroup2 like Debian 12 and
   Ubuntu 24.04, fresh Open vSwitch state so no host database leaks in), and the
   stock kernel's module tree at /lib/modules/VERSION so ``modprobe`` works for any
   module, including those the project's own code loads on demand;
2. loads the networking modules up front (a missing one fails here, not mid-test),
   brings up loopback and starts Open vSwitch (``ovs-ctl start``);
3. runs pytest on the guest-marked tests with the project's Python, reaping every
   orphan meanwhile (it is PID 1: otherwise zombies would look like live leftovers to
   the testbed's teardown checks);
4. copies the JSON files the tests left (run manifests, linkcheck results, summaries)
   to ``/etb-results/artifacts``, writes ``/etb-results/status.json`` (with how long
   the guest stood still, see `StallMonitor`) and reboots, which ends QEMU (``-no-reboot``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

RESULTS = Path("/etb-results")
BASETEMP = Path("/tmp/etb-guest")
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# (filesystem type, mount point, options); tmpfs over the Open vSwitch directories hides
# the host's database, whose bridges would otherwise be re-created in the guest. No tmpfs
# over /tmp: the project may be checked out there (the overlay root is writable anyway).
MOUNTS = (
    ("devpts", "/dev/pts", "gid=5,mode=620,ptmxmode=666"),
    ("tmpfs", "/dev/shm", "mode=1777"),
    ("tmpfs", "/run", "mode=755"),
    ("cgroup2", "/sys/fs/cgroup", "nsdelegate"),
    ("tmpfs", "/etc/openvswitch", "mode=755"),
    ("tmpfs", "/var/lib/openvswitch", "mode=755"),
    ("tmpfs", "/var/log/openvswitch", "mode=755"),
)


def sh(*argv: str) -> None:
    """Run a setup command; its failure ends the guest run with the command's output."""
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")


def prepare(job: dict) -> None:
    """Mounts, the stock kernel's modules, loopback and Open vSwitch."""
    for fstype, target, options in MOUNTS:
        os.makedirs(target, exist_ok=True)
        sh("mount", "-t", fstype, "-o", options, fstype, target)
    modules = Path("/lib/modules", job["kernel_version"])
    modules.mkdir(parents=True, exist_ok=True)
    sh("mount", "--bind", job["modules_dir"], str(modules))
    for module in job["preload"]:
        sh("modprobe", module)
    sh("ip", "link", "set", "lo", "up")
    sh(OVS_CTL, "start", "--system-id=random")


def run_pytest(job: dict) -> int:
    """pytest's exit status; every other child that exits meanwhile is reaped and ignored."""
    argv = [job["python"], "-m", "pytest", "-p", "no:cacheprovider", "--color=no",
            f"--basetemp={BASETEMP}", f"--junitxml={RESULTS / 'junit.xml'}", *job["pytest_args"]]
    print("guest: " + " ".join(argv), flush=True)
    env = {**os.environ, "COLUMNS": "110", **job["env"]}
    pytest = subprocess.Popen(argv, cwd=job["project"], env=env)
    while True:
        pid, status = os.wait()
        if pid == pytest.pid:
            return os.waitstatus_to_exitcode(status)


def collect_artifacts() -> int:
    """Copy the JSON files under pytest's base temp dir to the results share; how many."""
    copied = 0
    for path in BASETEMP.rglob("*.json"):
        target = RESULTS / "artifacts" / path.relative_to(BASETEMP)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied += 1
    return copied


class StallMonitor(threading.Thread):
    """How long the guest stood still: the longest a 50 ms sleep overran, and how often by
    more than 0.2 s. The emulated CPUs stop whenever the host does not run QEMU's threads,
    and guest time keeps going meanwhile; traffic tools then catch up in bursts that a
    link's queue may not hold. A failed timing test next to long stalls points at the host."""

    TICK_S = 0.05

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.longest_s, self.over_200ms = 0.0, 0

    def run(self) -> None:
        while True:
            before = time.monotonic()
            time.sleep(self.TICK_S)
            late = time.monotonic() - before - self.TICK_S
            self.longest_s = max(self.longest_s, late)
            self.over_200ms += late > 0.2

    def report(self) -> dict:
        return {"longest_stall_s": round(self.longest_s, 3), "stalls_over_200ms": self.over_200ms}


def main(job_path: str) -> None:
    started = time.monotonic()
    os.environ.update(PATH=PATH, HOME="/root", LANG="C.UTF-8")  # the kernel gives PID 1 almost none
    status: dict = {"pytest_exit": None, "kernel": os.uname().release}
    stalls = StallMonitor()
    stalls.start()
    try:
        job = json.loads(Path(job_path).read_text())
        prepare(job)
        status["setup_s"] = round(time.monotonic() - started, 1)
        status["pytest_exit"] = run_pytest(job)
        status["artifacts"] = collect_artifacts()
    except Exception as error:  # PID 1: report whatever went wrong, then power off
        traceback.print_exc()
        status["error"] = f"{type(error).__name__}: {error}"
    finally:
        status["guest_s"] = round(time.monotonic() - started, 1)
        status.update(stalls.report())
        (RESULTS / "status.json").write_text(json.dumps(status))
        os.sync()
        Path("/proc/sysrq-trigger").write_text("b")


if __name__ == "__main__":
    main(sys.argv[1])
