"""Host limits through real cgroups: a busy loop gets its CPU share, a hog is stopped at its memory limit."""

import subprocess
import sys
import time

import pytest

from edgetestbed.topo.cgroups import RunCgroups
from edgetestbed.topo.probe import cgroup_version

pytestmark = pytest.mark.root

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass"
HOG = "blocks = []\nwhile True: blocks.append(bytearray(16 * 2**20))"


def _start_in(cgroup, code):
    """Start ``code`` in the cgroup the way LimitedHost.popen does: join, then exec."""
    join = "; ".join(f"echo $$ > {p}" for p in cgroup.procs_files)
    return subprocess.Popen(["sh", "-c", f'{join}; exec "$@"', "x", sys.executable, "-c", code])


@pytest.fixture
def run_cgroups(ledger):
    groups = RunCgroups(cgroup_version(), f"test{time.time_ns() % 10**8}", ledger)
    groups.create()
    return groups


def test_cpu_quota_in_cores(run_cgroups):
    host = run_cgroups.host("h1")
    host.set_limits(cpu_cores=0.25, memory_bytes=256 * 2**20)
    start = host.cpu_seconds()
    began = time.monotonic()
    _start_in(host, BUSY.format(s=2)).wait()
    share = (host.cpu_seconds() - start) / (time.monotonic() - began)
    assert share == pytest.approx(0.25, rel=0.05)


def test_memory_limit_stops_a_hog(run_cgroups):
    host = run_cgroups.host("h2")
    host.set_limits(cpu_cores=1.0, memory_bytes=64 * 2**20)
    status = _start_in(host, HOG).wait(timeout=30)
    assert status == -9  # the kernel's OOM killer, inside the group only
    assert host.memory_peak() <= 64 * 2**20 + 2**20


def test_the_ledger_entry_removes_the_whole_tree(run_cgroups, ledger):
    run_cgroups.host("h3")
    from edgetestbed.topo.resources import remove_all
    assert remove_all(ledger.entries()) == []
    assert not any(p.exists() for p in run_cgroups.parents)
