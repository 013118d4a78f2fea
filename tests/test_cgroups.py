"""Host limits through real cgroups: a busy loop gets its CPU share, a hog is stopped at its memory limit."""

import subprocess
import sys
import time

import pytest

from edgetestbed.topo.cgroups import CFS_PERIOD_US, RunCgroups
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
    """A busy process gets its quota, measured in its steady state over a whole number of
    CFS periods, where the part periods at the two ends cancel. Measured over its whole
    life instead (2.2 s with start-up and exit), as before, a fresh group's first period
    lets it run a whole quota at once: 12 probes read 0.2535-0.2647 (5 above this test's
    0.2625, with a CI run beside them; a CI run failed it once); in steady state 0.2485-0.2517."""
    host = run_cgroups.host("h1")
    host.set_limits(cpu_cores=0.25, memory_bytes=256 * 2**20)
    busy = _start_in(host, BUSY.format(s=4))
    time.sleep(1)  # past Python's start-up
    start, began = host.cpu_seconds(), time.monotonic()
    time.sleep(20 * CFS_PERIOD_US / 1e6)
    share = (host.cpu_seconds() - start) / (time.monotonic() - began)
    busy.wait()
    assert share == pytest.approx(0.25, rel=0.05)


def test_memory_limit_stops_a_hog(run_cgroups):
    host = run_cgroups.host("h2")
    host.set_limits(cpu_cores=1.0, memory_bytes=64 * 2**20)
    status = _start_in(host, HOG).wait(timeout=30)
    assert status == -9  # the kernel's OOM killer, inside the group only
    assert host.memory_peak() <= 64 * 2**20 + 2**20


def test_the_ledger_entry_removes_the_whole_tree(run_cgroups, ledger):
    run_cgroups.host("h3")
    from edgetestbed.ledger import remove_all
    assert remove_all(ledger.entries()) == []
    assert not any(p.exists() for p in run_cgroups.parents)
