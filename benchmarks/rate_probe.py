"""How close the events' rate probe (edgetestbed.dynamics.train) comes to a link's configured rate.

Builds a root and one worker joined by a link of the user-space backend (htb on its in-line
bridge's ports, 5 ms each way), then, for each rate, sets the link to it as a `set: {bw}`
event does and probes it ``--repeat`` times, with and without a competing TCP transfer
(w1 -> root, 256 kB, as a model push would be). Prints the measured/configured ratio per rate
(min, median, max) and writes every probe to ``--out`` (JSON). Needs root and the run lock.

    .venv/bin/python benchmarks/rate_probe.py [--repeat 10] [--out benchmarks/results/rate_probe.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from edgetestbed.dynamics.probe import probe_rate  # noqa: E402
from edgetestbed.measure.hosttools import popen  # noqa: E402
from edgetestbed.spec.model import LinkChange  # noqa: E402
from test_meters import metered  # noqa: E402  (a built network, torn down on every path)

RATES_MBIT = (1, 2, 5, 10, 20, 50)
SPEC = """
name: rateprobe
seed: 1
application: {name: mnist_mlp}
data: {dataset: mnist, partition: iid}
windows: {interval: 2s, limit: 2, epochs: 1}
defaults: {cpu: 0.2, memory: 256M, link: {bw: 10Mbit, delay: 5ms}}
sensors: {rate: 10/s, cpu: 0.05, memory: 128M, link: {bw: 10Mbit, delay: 1ms}}
nodes:
  - id: root
  - {id: w1, parent: root, sensors: [0]}
network: {shaping: userspace}
"""
PUSH = "import socket,sys; c=socket.create_connection((sys.argv[1], 5301)); c.sendall(bytes(262144)); c.close()"
SINK = ("import socket; s=socket.create_server(('', 5301)); c,_=s.accept()\n"
        "while c.recv(65536): pass")


def probe_with_push(network, rate: float) -> float | None:
    """A probe while a 256 kB TCP transfer crosses the link the same way."""
    child, parent = network.host("w1"), network.host("root")
    sink = popen(parent, [sys.executable, "-c", SINK])
    time.sleep(0.3)
    push = popen(child, [sys.executable, "-c", PUSH, parent.IP()])
    time.sleep(0.05)
    try:
        return probe_rate(child, parent, rate)
    finally:
        for process in (push, sink):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rate_probe.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as runs, metered(SPEC, Path(runs)) as (_, network, _):
        for rate in RATES_MBIT:
            network.change_link("w1", LinkChange(bw_mbit=rate))
            for competing in (False, True):
                measured = [probe_with_push(network, rate) if competing else
                            probe_rate(network.host("w1"), network.host("root"), rate) for _ in range(args.repeat)]
                ratios = [m / rate for m in measured if m is not None]
                results.append({"rate_mbit": rate, "competing_push": competing, "measured_mbit": measured})
                print(f"{rate:>4} Mbit/s{' + push' if competing else '       '}: measured/configured "
                      f"min {min(ratios):.3f} median {statistics.median(ratios):.3f} max {max(ratios):.3f} "
                      f"({len(ratios)}/{len(measured)} measured)", flush=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "repeat": args.repeat,
                                    "probes": results}, indent=1))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
