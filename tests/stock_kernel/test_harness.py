"""The stock-kernel harness: its pure parts, then the real thing (boot the guest, run its tests).

`test_guest_runs_the_stock_kernel_tests` is how the README's test command (and so CI)
reaches the tests marked ``netem``/``ovs_kernel``: it boots Debian's stock kernel under
QEMU and asserts that the guest's pytest passed. It takes 3.5-4.5 minutes (both cores);
run only it with ``pytest tests/stock_kernel -k guest``, or the harness directly:
``.venv/bin/python tests/stock_kernel/harness.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import harness
from edgetestbed.topo.probe import probe

APT_CACHE_DEPENDS = """linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
"""
MODULES_DEP = """kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/netfs/netfs.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio.ko:
kernel/net/netfilter/nf-conntrack.ko.xz:
"""
# Every test the guest must run and pass: none may be skipped there.
GUEST_TESTS = {
    "test_linkcheck_with_netem_on_the_heterogeneous_example",
    "test_ovs_kernel_datapath_under_the_controller_counts_like_the_kernel",
    "test_short_training_run_completes",
}


def test_kernel_package_is_read_from_apt_cache_depends():
    assert harness.parse_depends(APT_CACHE_DEPENDS) == "linux-image-6.1.0-56-amd64"
    with pytest.raises(RuntimeError, match="apt-get update"):
        harness.parse_depends("linux-image-amd64\n")


def test_stale_apt_lists_are_updated_once_and_a_cached_kernel_is_reused(tmp_path, monkeypatch):
    calls, answers = [], iter(["linux-image-amd64\n", APT_CACHE_DEPENDS])

    def fake_run(argv: list[str], cwd=None) -> str:
        calls.append(argv[:2])
        return next(answers) if argv[0] == "apt-cache" else ""

    monkeypatch.setattr(harness, "run", fake_run)
    cached = tmp_path / "linux-image-6.1.0-56-amd64"
    cached.mkdir()
    (cached / harness.READY).write_text("linux-image-6.1.0-56-amd64\n")
    kernel = harness.fetch_kernel(tmp_path)
    assert calls == [["apt-cache", "depends"], ["apt-get", "update"], ["apt-cache", "depends"]]
    assert (kernel.version, kernel.dir) == ("6.1.0-56-amd64", cached)


def test_modules_load_after_their_dependencies_once_each():
    dep = harness.read_modules_dep(MODULES_DEP)
    order = harness.load_order(dep, ["9pnet_virtio", "9p"])
    assert order == ["kernel/net/9p/9pnet.ko", "kernel/drivers/virtio/virtio.ko",
                     "kernel/net/9p/9pnet_virtio.ko", "kernel/fs/netfs/netfs.ko", "kernel/fs/9p/9p.ko"]
    assert harness.load_order(dep, ["nf_conntrack"]) == ["kernel/net/netfilter/nf-conntrack.ko.xz"]
    with pytest.raises(RuntimeError, match="sch_netem"):
        harness.load_order(dep, ["sch_netem"])


@pytest.mark.skipif(not harness.BUSYBOX.exists(), reason="needs busybox-static (scripts/install)")
def test_initramfs_archive_is_what_the_kernel_unpacks(tmp_path):
    """busybox's cpio reads back every file, every parent directory and /dev/console."""
    archive = harness.cpio_archive({"init": (0o755, b"#!/bin/sh\n"), "lib/modules/a.ko": (0o644, b"x" * 5)})
    assert archive.endswith(b"\0" * (-len(archive) % 4)) and len(archive) % 4 == 0
    listing = subprocess.run([str(harness.BUSYBOX), "cpio", "-t", "-v"], input=archive,
                             capture_output=True, check=True).stdout.decode()
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
    assert modes == {"dev": "drwxr-xr-x", "lib": "drwxr-xr-x", "lib/modules": "drwxr-xr-x",
                     "dev/console": "crw-------", "init": "-rwxr-xr-x", "lib/modules/a.ko": "-rw-r--r--"}
    subprocess.run([str(harness.BUSYBOX), "cpio", "-i", "-d", "init", "lib/modules/a.ko"], input=archive,
                   cwd=tmp_path, capture_output=True, check=True)
    assert (tmp_path / "lib/modules/a.ko").read_bytes() == b"xxxxx"


def test_qemu_is_software_emulated_under_timeout_with_the_host_root_read_only(tmp_path):
    kernel = harness.Kernel("linux-image-6.1.0-56-amd64", "6.1.0-56-amd64", tmp_path / "k")
    argv = harness.qemu_argv(kernel, tmp_path / "initrd", tmp_path / "a,b", 300)
    assert argv[:3] == ["timeout", "--kill-after=10", "300"]
    assert "tcg,thread=multi" in argv and "max" in argv and not any("kvm" in a for a in argv)
    shares = [argv[i + 1] for i, a in enumerate(argv) if a == "-virtfs"]
    assert shares[0].endswith("path=/,mount_tag=hostroot,readonly=on")
    assert f"path={tmp_path}/a,,b,mount_tag=results" in shares[1] and "readonly" not in shares[1]


def test_job_runs_the_guest_marked_tests_with_this_python(tmp_path):
    kernel = harness.Kernel("linux-image-6.1.0-56-amd64", "6.1.0-56-amd64", tmp_path / "k")
    harness.write_job(tmp_path, kernel, ["-k", "netem"], ["tests/test_fidelity.py"])
    job = json.loads((tmp_path / "job.json").read_text())
    deselected = [arg for test in harness.EMULATION_DESELECTED for arg in ("--deselect", test)]
    assert job["pytest_args"] == ["-m", "netem or ovs_kernel", *deselected, "tests/test_fidelity.py", "-k", "netem"]
    assert job["python"] == sys.executable and job["project"] == str(harness.PROJECT)
    assert job["modules_dir"] == str(tmp_path / "k/root/lib/modules/6.1.0-56-amd64")
    assert {"sch_netem", "openvswitch"} <= set(job["preload"])
    assert (tmp_path / "stage2").read_text().endswith(" /etb-results/job.json\n")


def test_the_guest_imports_only_the_files_with_tests_marked_for_it():
    files = harness.guest_test_files()
    assert {"tests/test_stock_kernel_guest.py", "tests/test_fidelity.py", "tests/test_network.py"} <= set(files)
    assert "tests/test_units.py" not in files and len(files) < 10


def _why_no_guest() -> str:
    missing = [tool for tool in (harness.QEMU, str(harness.BUSYBOX), "apt-get", "dpkg", "depmod")
               if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (scripts/install installs them)"
    caps = probe()
    if caps.netem.ok and caps.ovs_kernel.ok:
        return "this kernel has netem and the OVS kernel datapath: the guest's tests run here directly"
    return ""


WHY_NO_GUEST = _why_no_guest()


@pytest.mark.root
@pytest.mark.skipif(bool(WHY_NO_GUEST), reason=WHY_NO_GUEST or "-")
def test_guest_runs_the_stock_kernel_tests(tmp_path, capsys):
    """Boot the stock kernel, run the netem/OVS-kernel tests in it; all must pass, none skip."""
    result = subprocess.run([sys.executable, str(Path(harness.__file__)), "--results", str(tmp_path)],
                            capture_output=True, text=True, timeout=harness.DEFAULT_TIMEOUT_S + 120)
    report_file = tmp_path / "harness.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    with capsys.disabled():  # the guest's verdict and fidelity table belong in the CI log
        print(f"\nstock-kernel guest: {harness.pytest_summary(tmp_path)}\n"
              f"{harness.fidelity_tables(tmp_path)}\n{json.dumps(report)}")
    assert result.returncode == 0 and report.get("pytest_exit") == 0, result.stdout[-6000:] + result.stderr
    cases = ElementTree.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    ran = {case.get("name"): [child.tag for child in case] for case in cases}
    assert GUEST_TESTS <= set(ran), sorted(ran)
    assert not any(outcome for outcome in ran.values()), ran  # no failure, error or skip
