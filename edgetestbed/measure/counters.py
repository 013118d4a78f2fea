"""Kernel counters of the interfaces along the links, sampled to ``net/counters.jsonl`` (its
format: :mod:`edgetestbed.measure.meters`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path


def read_counters(proc_net_dev: str) -> dict[str, dict[str, int]]:
    """``/proc/<pid>/net/dev`` as ``{interface: {"rx_bytes": ..., ...}}``."""
    counters = {}
    for line in proc_net_dev.splitlines()[2:]:
        name, _, values = line.partition(":")
        numbers = [int(v) for v in values.split()]
        rx = dict(zip(("bytes", "packets", "errors", "dropped"), numbers[0:4]))
        tx = dict(zip(("bytes", "packets", "errors", "dropped"), numbers[8:12]))
        counters[name.strip()] = {**{f"rx_{k}": v for k, v in rx.items()}, **{f"tx_{k}": v for k, v in tx.items()}}
    return counters


class CounterSampler:
    """Samples the kernel counters of a set of interfaces to a JSON-lines file."""

    def __init__(self, interfaces: dict[str, int | None], path: Path, interval: float) -> None:
        self.interfaces = interfaces  # name -> PID of a process in its namespace (None: root namespace)
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counter-sampler", daemon=True)

    def start(self) -> None:
        self.sample("start")
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.sample("end")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample("periodic")

    def sample(self, kind: str) -> None:
        found: dict[str, dict] = {}
        for pid in set(self.interfaces.values()):
            source = Path(f"/proc/{pid or 'self'}/net/dev")
            try:
                found.update(read_counters(source.read_text()))
            except OSError:
                continue  # a host that is gone
        record = {"time": time.time(), "sample": kind,
                  "interfaces": {name: found[name] for name in self.interfaces if name in found}}
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, separators=(",", ":")) + "\n")
