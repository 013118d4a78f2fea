"""Keep the machine's CPUs from halting while a network is emulated (``network.cpu_idle: poll``).

On a virtual machine an idle vCPU halts, and waking it is the hypervisor's business: the
wake-up waits for a physical core, which Linux counts as steal time. Every timer the
emulation runs on (the user-space shaper's deferred verdicts, htb's watchdog, TCP's pacing)
then fires late. Measured on the 2-core build VM (``benchmarks/cpu_idle.py``, 30 two-second
TCP tests each way, the two settings alternating, 2026-12-07): the default example's
50 Mbit/s, 40 ms WAN link carried a median 46.3 Mbit/s with the CPUs halting, 6 tests below
linkcheck's floor of 43.0, and 47.75 with these pollers, 2 below. Polling, 0.0-0.6 % of the
CPU was stolen, except in one minute-long spell of 2-13 % that held both misses: a
hypervisor can still preempt a busy vCPU when its host is short of cores, which linkcheck
records per link (see :func:`edgetestbed.linkcheck.wait_for_the_cpu`).

A poller is the kernel's ``idle=poll`` done from user space: one busy loop per CPU, pinned
to it and scheduled ``SCHED_IDLE``, so it runs only when nothing else wants that CPU and
yields to any task at once; the hosts' CPU limits, the shaper (``SCHED_FIFO``) and the
measurements are unaffected, while the CPU never halts. The cost is power: ``cpu_idle:
halt`` leaves the CPUs to halt, as on a laptop where that matters more than fidelity.
"""

from __future__ import annotations

import os
import subprocess

from edgetestbed.ledger import Ledger

SPIN = ["/bin/sh", "-c", "while :; do :; done"]   # no allocation, no system calls


def start_idle_pollers(ledger: Ledger) -> list[int]:
    """One ``SCHED_IDLE`` busy loop pinned to each CPU this process may use, each recorded in
    ``ledger`` (the network's teardown stops them by PID); their PIDs."""
    pids = []
    for cpu in sorted(os.sched_getaffinity(0)):
        process = subprocess.Popen(SPIN, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, preexec_fn=_idle_on(cpu))
        ledger.record_process(process.pid, f"idle poller on CPU {cpu}")
        pids.append(process.pid)
    return pids


def _idle_on(cpu: int):
    def pin_and_lower() -> None:   # runs in the child, before exec
        os.sched_setaffinity(0, {cpu})
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    return pin_and_lower
