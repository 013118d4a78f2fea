"""TCP throughput and added latency through the user-space link shaper.

Builds the integration test's network (``a —[pa] bridge [pb]— b``, two namespaces and a
Linux bridge) and measures, first unshaped, then with the shaper at 0 ms and at 10 ms each
way: ping RTT (ping's own µs summary: min/avg/max/mdev) and iperf3 TCP (cubic) throughput.
The shaper's added latency is the average RTT minus the unshaped average minus twice the
configured delay. Needs root.

    .venv/bin/python benchmarks/shaper_throughput.py [--seconds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgetestbed.ledger import Ledger  # noqa: E402
from edgetestbed.topo.shaper import ShapedPort, UserspaceShaper  # noqa: E402
from tests.test_shaper import ADDRESS, BridgedPair  # noqa: E402

DELAYS_MS = (0, 10)


def rtt(pair: BridgedPair) -> dict[str, float]:
    """ping's summary of 100 echoes 10 ms apart (its per-reply times have 0.1 ms steps)."""
    summary = pair.exec("a", "ping", "-n", "-q", "-c", "100", "-i", "0.01", ADDRESS["b"]).stdout
    values = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", summary).groups()
    names = ("min", "avg", "max", "mdev")
    return {f"rtt_{name}_ms": float(value) for name, value in zip(names, values)}


def measure(pair: BridgedPair, seconds: float) -> dict:
    """RTT, then a TCP bulk transfer a→b."""
    latency = rtt(pair)
    report = pair.iperf("-C", "cubic", duration=seconds)
    return {
        **latency,
        "tcp_mbit_s": round(report["end"]["sum_received"]["bits_per_second"] / 1e6, 1),
        "tcp_retransmits": report["end"]["sum_sent"].get("retransmits"),
    }


def shaped(pair: BridgedPair, work_dir: Path, delay_ms: float, seconds: float) -> dict:
    """:func:`measure` with both directions delayed by ``delay_ms``; the handler's counters."""
    ports = [ShapedPort(pair.ports[side], delay_ms=delay_ms) for side in "ab"]
    shaper = UserspaceShaper(f"ETB-{pair.tag}-bench", ports, work_dir, seed=1, ledger=pair.ledger)
    shaper.start()
    try:
        result = measure(pair, seconds)
    finally:
        counters = shaper.stop()
    return {"delay_ms_each_way": delay_ms, **result, "handler": counters}


def run(seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="etb-shaper-bench-") as tmp:
        pair = BridgedPair(Ledger(Path(tmp) / "ledger.jsonl"))
        try:
            pair.create()
            pair.start_iperf_server()
            baseline = measure(pair, seconds)
            runs = [shaped(pair, Path(tmp), delay, seconds) for delay in DELAYS_MS]
        finally:
            leftovers = pair.remove()
    if leftovers:
        raise RuntimeError(f"could not remove: {leftovers}")
    for result in runs:
        result["added_latency_ms"] = round(
            result["rtt_avg_ms"] - baseline["rtt_avg_ms"] - 2 * result["delay_ms_each_way"], 3)
    return {
        "benchmark": "shaper_throughput",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "seconds_per_transfer": seconds,
        "unshaped": baseline,
        "shaped": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each TCP transfer")
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks/results/shaper_throughput.json")
    args = parser.parse_args()
    results = run(args.seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"unshaped: RTT {results['unshaped']['rtt_avg_ms']:.3f} ms, "
          f"TCP {results['unshaped']['tcp_mbit_s']:.0f} Mbit/s")
    for result in results["shaped"]:
        print(f"{result['delay_ms_each_way']:g} ms each way: RTT {result['rtt_avg_ms']:.3f} ms "
              f"(+{result['added_latency_ms']:.3f} ms added), "
              f"TCP {result['tcp_mbit_s']:.0f} Mbit/s")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
