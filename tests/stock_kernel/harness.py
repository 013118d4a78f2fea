#!/usr/bin/env python3
"""Boot Debian's stock kernel under QEMU and run the tests that need netem or the OVS kernel datapath.

The machines the project is built and tested on have neither netem nor the Open vSwitch
kernel datapath (shared/PLATFORM.md); a user's VM with a stock kernel has both. So the
tests of that canonical path (marked ``netem`` or ``ovs_kernel``) run here in a guest:

1. **kernel**: the package ``linux-image-amd64`` depends on today (``apt-cache depends``;
   the name changes with ABI bumps), fetched with ``apt-get download`` and unpacked with
   ``dpkg -x`` into the cache (never installed on the host), then ``depmod``.
2. **initramfs**: busybox-static, init.sh (stage 1) and the modules that mount the root
   (virtio-pci, 9p, overlay, with their dependencies from modules.dep). Every other
   module is loaded in the guest by ``modprobe`` from the unpacked tree.
3. **boot**: ``qemu-system-x86_64 -accel tcg,thread=multi -cpu max`` (software emulation:
   KVM here is PVM, which runs no stock kernel), always under ``timeout``; the host's ``/``
   read-only over 9p as the overlay's lower layer, a writable 9p share for results.
   guest_init.py (stage 2, PID 1) runs ``pytest -m "netem or ovs_kernel"`` with the
   project's Python and reports its exit status, which this harness returns.

Kernel and initramfs are cached in ``$EDGETESTBED_CACHE/stock-kernel`` (default
``/var/cache/edgetestbed/stock-kernel``); a new kernel ABI replaces the old one.

Usage (root): ``.venv/bin/python tests/stock_kernel/harness.py [--timeout S] [--results DIR]
[-- PYTEST_ARGS]``; the README's test command runs it through tests/stock_kernel/test_harness.py.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from edgetestbed.measure.fidelity import LinkResult, format_table

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
CACHE = Path(os.environ.get("EDGETESTBED_CACHE", "/var/cache/edgetestbed")) / "stock-kernel"
META_PACKAGE = "linux-image-amd64"
BUSYBOX = Path("/bin/busybox")
QEMU = "qemu-system-x86_64"
GUEST_MARKERS = "netem or ovs_kernel"
# Guest-marked tests that fail under emulation for a reason that is not the kernel's, with
# that reason; deselected (and said so) until their owners make them emulation-proof.
EMULATION_DESELECTED = {
    "tests/test_network.py::test_netem_backend_shapes_links":
        "wants the mean of 10 pings within 8 +- 1 ms; under emulation the first (Open vSwitch's "
        "slow path) took 18.8 ms and warm ones 8.8-9.6 ms (emulated hosts at 0.2 cores), "
        "means 10.8-11.1 ms",
}
# Mount the guest's root: the 9p transport over virtio-pci, and overlayfs.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
# What the testbed's backends use; loaded before the tests so a missing one fails early.
NETWORK_MODULES = ("sch_netem", "sch_htb", "sch_tbf", "sch_ingress", "cls_u32", "act_mirred",
                   "ifb", "tun", "veth", "bridge", "br_netfilter", "openvswitch")
GUEST_CPUS = 2
GUEST_MEMORY_MB = 3072
# A hang detector, not a speed target: a guest run took 3.5-4.5 min on earlier machines (6 with
# linkcheck retries) and 8.5 min on an idle one on 2026-12-06 (same tests; TCG's speed varies
# with the host), where 720 s timed out once while other tests loaded the host. On 2026-12-07
# guest runs in dry runs of CI took 6-17.7 min (1002 s in the last, with a linkcheck retried),
# too close to the 20 min this was.
DEFAULT_TIMEOUT_S = 1800
READY = "ready"


@dataclass(frozen=True)
class Kernel:
    """An unpacked stock kernel package: ``dir/root`` holds what ``dpkg -x`` unpacked."""

    package: str
    version: str          # what ``uname -r`` says in the guest
    dir: Path

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.version


def say(text: str) -> None:
    print(f"stock-kernel: {text}", flush=True)


def run(argv: list[str], cwd: Path | None = None) -> str:
    """A host command's standard output; a failure raises with its error output."""
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout


# ---------------------------------------------------------------- the kernel package

def parse_depends(text: str) -> str:
    """The kernel image package named in ``apt-cache depends linux-image-amd64`` output."""
    for line in text.splitlines():
        kind, _, name = line.strip().partition(": ")
        if kind == "Depends" and name.startswith("linux-image-"):
            return name.strip()
    raise RuntimeError(f"apt-cache depends {META_PACKAGE} names no linux-image package "
                       "(run apt-get update?):\n" + text)


def fetch_kernel(cache: Path = CACHE) -> Kernel:
    """The current stock kernel, unpacked in the cache (downloaded only if not there yet).

    apt's package lists may be missing or stale (naming a kernel the archive no longer
    has): then they are updated once and the fetch tried again.
    """
    try:
        return _fetch_kernel(cache)
    except RuntimeError as error:
        say(f"{error}\nupdating apt's package lists and trying again")
        run(["apt-get", "update", "-q"])
        return _fetch_kernel(cache)


def _fetch_kernel(cache: Path) -> Kernel:
    package = parse_depends(run(["apt-cache", "depends", META_PACKAGE]))
    kernel = Kernel(package, package.removeprefix("linux-image-"), cache / package)
    if not (kernel.dir / READY).exists():
        _unpack(kernel, cache)
        _remove_other_kernels(cache, keep=kernel.dir)
    return kernel


def _unpack(kernel: Kernel, cache: Path) -> None:
    """apt-get download, dpkg -x and depmod in a scratch dir, then move it into place."""
    say(f"fetching {kernel.package} (apt-get download, dpkg -x; not installed)")
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=cache, prefix=".fetch-"))
    try:
        # _apt, apt's download sandbox user, could not write into root's cache dir
        run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", kernel.package], cwd=work)
        (deb,) = work.glob("*.deb")
        run(["dpkg", "-x", str(deb), "root"], cwd=work)
        deb.unlink()
        run(["depmod", "-b", str(work / "root"), kernel.version])  # dpkg -x runs no postinst
        (work / READY).write_text(kernel.package + "\n")
        shutil.rmtree(kernel.dir, ignore_errors=True)
        work.rename(kernel.dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_other_kernels(cache: Path, keep: Path) -> None:
    """An ABI bump replaces the kernel: older unpacked packages (400 MB each) go."""
    for old in cache.glob("linux-image-*"):
        if old != keep:
            say(f"removing the superseded {old.name}")
            shutil.rmtree(old)


# ---------------------------------------------------------------- modules

def module_name(path: str) -> str:
    """``kernel/net/9p/9pnet_virtio.ko`` -> ``9pnet_virtio`` (modprobe's spelling)."""
    base = Path(path).name
    return base[:base.index(".ko")].replace("-", "_")


def read_modules_dep(text: str) -> dict[str, tuple[str, ...]]:
    """modules.dep as {module path: its dependencies' paths}."""
    table = {}
    for line in text.splitlines():
        if ":" in line:
            module, _, deps = line.partition(":")
            table[module.strip()] = tuple(deps.split())
    return table


def load_order(dep: dict[str, tuple[str, ...]], names: Iterable[str]) -> list[str]:
    """The module paths to insmod, every dependency before its users, each once."""
    by_name = {module_name(path): path for path in dep}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for needed in dep[path]:
            visit(needed)
        order.append(path)

    for name in names:
        if name not in by_name:
            raise RuntimeError(f"module {name} is not in this kernel's modules.dep (built in?)")
        visit(by_name[name])
    return order


# ---------------------------------------------------------------- the initramfs

def newc_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One entry of a cpio archive in the kernel's initramfs format (SVR4 "newc", no CRC)."""
    encoded = name.encode() + b"\0"
    fields = (0, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    return _pad(header + encoded) + _pad(data)


def _pad(blob: bytes) -> bytes:
    return blob + b"\0" * (-len(blob) % 4)


def cpio_archive(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A newc archive of ``{path: (permission bits, content)}`` plus every parent directory
    and ``/dev/console`` (the kernel opens it for init's output before init runs)."""
    dirs = {str(parent) for path in files for parent in Path(path).parents if str(parent) != "."}
    entries = [newc_entry(d, stat.S_IFDIR | 0o755) for d in sorted(dirs | {"dev"})]
    entries.append(newc_entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries += [newc_entry(path, stat.S_IFREG | perm, data) for path, (perm, data) in sorted(files.items())]
    entries.append(newc_entry("TRAILER!!!", 0))
    return b"".join(entries)


def initramfs_files(kernel: Kernel) -> dict[str, tuple[int, bytes]]:
    """busybox, stage 1 and the boot modules, with the order to load them in."""
    order = load_order(read_modules_dep((kernel.modules / "modules.dep").read_text()), BOOT_MODULES)
    files = {"init": (0o755, (HERE / "init.sh").read_bytes()),
             "bin/busybox": (0o755, BUSYBOX.read_bytes()),
             "etc/modules": (0o644, "".join(module_name(p) + "\n" for p in order).encode())}
    for path in order:
        files[f"lib/modules/{module_name(path)}.ko"] = (0o644, (kernel.modules / path).read_bytes())
    return files


def build_initramfs(kernel: Kernel) -> Path:
    """The initramfs for ``kernel``, built once per content (cached beside the kernel)."""
    files = initramfs_files(kernel)
    digest = hashlib.sha256()
    for path, (perm, data) in sorted(files.items()):
        digest.update(f"{path}:{perm}:{len(data)}:".encode() + data)
    target = kernel.dir / f"initramfs-{digest.hexdigest()[:16]}.cpio.gz"
    if not target.exists():
        for old in kernel.dir.glob("initramfs-*.cpio.gz"):
            old.unlink()
        scratch = target.with_suffix(".tmp")
        scratch.write_bytes(gzip.compress(cpio_archive(files), compresslevel=6, mtime=0))
        scratch.rename(target)
        say(f"built {target.name} ({target.stat().st_size / 1e6:.1f} MB)")
    return target


# ---------------------------------------------------------------- the guest

def write_job(results: Path, kernel: Kernel, pytest_args: list[str], files: list[str]) -> None:
    """What stage 2 runs (job.json) and how stage 1 reaches it (the stage2 script): the tests
    marked for the guest in ``files`` (see `guest_test_files`)."""
    env = {k: v for k, v in os.environ.items() if k == "EDGETESTBED_CACHE"}
    job = {"project": str(PROJECT), "python": sys.executable, "kernel_version": kernel.version,
           "modules_dir": str(kernel.modules), "preload": list(NETWORK_MODULES), "env": env,
           "pytest_args": ["-m", GUEST_MARKERS, *deselect_args(), *files, *pytest_args]}
    (results / "job.json").write_text(json.dumps(job, indent=1))
    stage2 = results / "stage2"
    stage2.write_text("#!/bin/sh\nexec " + shlex.join(
        [sys.executable, str(HERE / "guest_init.py"), "/etb-results/job.json"]) + "\n")
    stage2.chmod(0o755)


def guest_test_files() -> list[str]:
    """The test files that hold a test marked for the guest, found by the host's pytest (in
    seconds). Given to the guest's pytest so that it imports only those: collecting the
    whole suite under emulation took 4-6 of the guest's 8-17 minutes."""
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "-m", GUEST_MARKERS], cwd=PROJECT, capture_output=True, text=True).stdout
    files = sorted({line.split("::")[0] for line in listing.splitlines() if "::" in line})
    if not files:
        raise RuntimeError(f"no test is marked {GUEST_MARKERS!r}; pytest --collect-only said:\n{listing[-2000:]}")
    return files


def deselect_args() -> list[str]:
    args = []
    for test, reason in EMULATION_DESELECTED.items():
        say(f"deselected in the guest: {test}: {reason}")
        args += ["--deselect", test]
    return args


def qemu_argv(kernel: Kernel, initramfs: Path, results: Path, timeout_s: int) -> list[str]:
    """QEMU with software emulation, no NIC (all traffic stays in the guest), under timeout."""
    share = "local,security_model=passthrough,multidevs=remap,path="
    return ["timeout", "--kill-after=10", str(timeout_s),
            QEMU, "-accel", "tcg,thread=multi", "-cpu", "max",
            "-smp", str(GUEST_CPUS), "-m", str(GUEST_MEMORY_MB),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
            "-kernel", str(kernel.vmlinuz), "-initrd", str(initramfs),
            "-append", "console=ttyS0 quiet panic=-1 mitigations=off",
            "-virtfs", share + "/,mount_tag=hostroot,readonly=on",
            "-virtfs", share + str(results).replace(",", ",,") + ",mount_tag=results"]


def boot(argv: list[str], console_log: Path) -> int:
    """Run QEMU, echoing the guest's console and keeping a copy; QEMU's (or timeout's) status."""
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as qemu, open(console_log, "wb") as log:
        for raw in qemu.stdout:
            line = raw.replace(b"\r", b"")
            log.write(line)
            sys.stdout.write(line.decode(errors="replace"))
            sys.stdout.flush()
    return qemu.returncode


def run_guest(results: Path, pytest_args: list[str], timeout_s: int = DEFAULT_TIMEOUT_S) -> dict:
    """Fetch, build, boot, test; the guest's status.json plus the host's timings and load
    (a busy host stalls the emulated CPUs, which timing-sensitive tests can notice)."""
    timings = {"host_load_before": round(os.getloadavg()[0], 2)}
    started = time.monotonic()
    kernel = fetch_kernel()
    fetched = time.monotonic()
    timings["kernel_s"] = round(fetched - started, 1)
    initramfs = build_initramfs(kernel)
    timings["initramfs_s"] = round(time.monotonic() - fetched, 1)
    write_job(results, kernel, pytest_args, guest_test_files())
    say(f"booting {kernel.package} ({QEMU}, TCG, {GUEST_CPUS} vCPUs, timeout {timeout_s} s)")
    booted = time.monotonic()
    qemu_status = boot(qemu_argv(kernel, initramfs, results, timeout_s), results / "console.log")
    timings["qemu_s"] = round(time.monotonic() - booted, 1)
    timings["total_s"] = round(time.monotonic() - started, 1)
    timings["host_load_after"] = round(os.getloadavg()[0], 2)
    status_file = results / "status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {
        "pytest_exit": None,
        "error": "the guest ended without a status (timed out)" if qemu_status == 124
                 else f"the guest ended without a status (QEMU exit {qemu_status})"}
    report = {**status, **timings, "kernel_package": kernel.package}
    (results / "harness.json").write_text(json.dumps(report, indent=1))
    return report


def pytest_summary(results: Path) -> str:
    """The guest pytest's closing line ("=== 4 passed in 200.1s ==="), or '' if none."""
    log = results / "console.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    closing = [line for line in lines if line.startswith("=") and " in " in line and line.endswith("=")]
    return closing[-1] if closing else ""


def fidelity_tables(results: Path) -> str:
    """linkcheck's configured-vs-measured table for every linkcheck the guest ran."""
    tables = []
    for path in sorted((results / "artifacts").rglob("linkcheck.json")):
        rows = [LinkResult.from_json(link) for link in json.loads(path.read_text())["links"]]
        tables.append(f"{path.parent.name}:\n{format_table(rows)}")
    return "\n".join(tables)


def exit_code(status: dict) -> int:
    """The guest pytest's exit status; 3 (pytest's 'internal error') if it never reported."""
    return status["pytest_exit"] if status.get("pytest_exit") is not None else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S, help="seconds for the guest")
    parser.add_argument("--results", type=Path, help="where the guest's results go (default: a new temp dir)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments for the guest (after --)")
    args = parser.parse_args(argv)
    results = args.results or Path(tempfile.mkdtemp(prefix="etb-guest-"))
    results.mkdir(parents=True, exist_ok=True)
    status = run_guest(results, args.pytest_args, args.timeout)
    print(fidelity_tables(results))
    say(f"guest: {pytest_summary(results) or 'no pytest summary'}")
    say(json.dumps(status))
    say(f"results in {results}")
    return exit_code(status)


if __name__ == "__main__":
    sys.exit(main())
