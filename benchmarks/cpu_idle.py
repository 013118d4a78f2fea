"""Benchmark: a link's TCP goodput with idle CPUs polling (``network.cpu_idle: poll``) or halting.

On a virtual machine a halted vCPU waits for the hypervisor to run it again, time
Linux counts as steal, and every timer of the emulation fires late (see
``edgetestbed/topo/idlepoll.py``). For each setting this builds the spec's network
(default: the default example), measures one link (default: the WAN link,
``cloud-root``, the one with the largest bandwidth-delay product) with linkcheck's
own TCP test ``--tests`` times in each direction, and prints and writes
(``benchmarks/results/cpu_idle.json``) every goodput with the share of CPU time
stolen meanwhile, and each setting's range against linkcheck's floor (the goodput of
a perfect link, less 10 %). The settings alternate, so both see the same machine.
Run as root: ``sudo .venv/bin/python benchmarks/cpu_idle.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

from edgetestbed.measure.fidelity import BW_TOLERANCE
from edgetestbed.measure.linkmeasure import _Path, cpu_steal, steal_share
from edgetestbed.spec.load import load_spec
from edgetestbed.spec.plan import plan_network
from edgetestbed.testbed import open_testbed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cpu_idle.json"
SETTINGS = ("halt", "poll")


def measure(spec, link: str, tests: int, runs_dir: Path) -> list[dict]:
    """``tests`` TCP goodput tests each way over ``link`` of ``spec``'s network."""
    ends = tuple(link.split("-"))
    samples = []
    with open_testbed(spec, runs_dir, "benchmark") as (_, network):
        path = _Path(*(network.host(end) for end in ends), seconds=2, slack_s=6)
        for _ in range(tests):
            for reverse in (False, True):
                before = cpu_steal()
                mbit, share = path.tcp_rate(reverse)
                samples.append({"direction": "reverse" if reverse else "forward", "mbit": round(mbit, 3),
                                "payload_share": share, "steal": round(steal_share(before, cpu_steal()), 4)})
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topo", nargs="?", type=Path, default=ROOT / "examples" / "default.yaml")
    parser.add_argument("--link", default="cloud-root", help="child-parent, as linkcheck names links")
    parser.add_argument("--tests", type=int, default=5, help="per direction, per setting and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two settings")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/etb-cpu-idle"))
    args = parser.parse_args()
    base = load_spec(args.topo)
    (link,) = [link for link in plan_network(base).shaped_links if link.label == args.link]
    results = {setting: [] for setting in SETTINGS}
    for round_number in range(1, args.rounds + 1):
        for setting in SETTINGS:
            spec = dataclasses.replace(base, network=dataclasses.replace(base.network, cpu_idle=setting))
            print(f"round {round_number}: cpu_idle {setting}, {args.tests} tests each way over {args.link} ...")
            results[setting] += measure(spec, args.link, args.tests, args.runs_dir)
    # linkcheck's floor: a perfect link's goodput (the rate times the tests' payload share), less the tolerance
    floor = link.spec.bw_mbit * min(s["payload_share"] for v in results.values() for s in v) * (1 - BW_TOLERANCE)
    summary = {setting: _summary(samples, floor) for setting, samples in results.items()}
    for setting, figures in summary.items():
        print(f"cpu_idle {setting:<4}: {figures['mbit_min']:.2f}-{figures['mbit_max']:.2f} Mbit/s "
              f"(median {figures['mbit_median']:.2f}), {figures['below_floor']} of {figures['tests']} below "
              f"linkcheck's floor {floor:.2f}; CPU stolen {figures['steal_min']:.1%}-{figures['steal_max']:.1%}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M"),
                                   "topo": str(args.topo), "link": args.link, "floor_mbit": floor,
                                   "summary": summary, "samples": results}, indent=1) + "\n")
    print(f"written to {RESULTS}")


def _summary(samples: list[dict], floor: float) -> dict:
    rates, steals = sorted(s["mbit"] for s in samples), [s["steal"] for s in samples]
    return {"tests": len(rates), "mbit_min": rates[0], "mbit_max": rates[-1], "mbit_median": rates[len(rates) // 2],
            "below_floor": sum(rate < floor for rate in rates), "steal_min": min(steals), "steal_max": max(steals)}


if __name__ == "__main__":
    main()
