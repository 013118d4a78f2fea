"""Keep the machine's CPUs from halting while a network is emulated (``network.cpu_idle: poll``).

On a virtual machine an idle vCPU halts, and waking it is the hypervisor's business: the
wake-up waits for a physical core, which Linux counts as steal time. Every timer the
emulation runs on (the user-space shaper's deferred verdicts, htb's watchdog, TCP's pacing)
then fires late. Measured on the 2-core build VM, the default example's 50 Mbit/s, 40 ms
WAN link carried 39.4-47.3 Mbit/s of TCP in 10 two-second tests, 4-11 % of the CPU time
stolen, against 47.6-47.8 Mbit/s with 0.1-0.7 % stolen in 10 tests with these pollers
running (linkcheck's floor is 43.0). ``benchmarks/cpu_idle.py`` repeats the comparison.

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
