"""Benchmark: training inside the testbed, and the largest tree this machine runs.

(a) ``throughput``: samples per second the default application (``mnist_mlp``) trains,
    - bare: a plain process, no limit, scaled by the CPU share (the ideal),
    - bare-cgroup: a plain process in a cgroup with the same CFS quota,
    - testbed: the same code in an emulated host with that CPU limit (namespace, cgroup, mnexec).
    Target: testbed ≥ 90 % of bare-cgroup.
(b) ``scale``: ``run`` on trees of growing size with the default example's per-node
    settings (cpu, memory, links, windows, policy); reports which complete, in how long,
    and whether the machine kept the spec's pace (a run a whole window behind is stopped),
    and where the CPU went: each role's CPU seconds from the hosts' cgroups (the user-space
    link shaper and the captures run outside them).
    Target: 50 workers, 5 parameter servers, 1 root, 100 sensors.

Prints figures and writes ``benchmarks/results/training.json``.
Run as root: ``sudo .venv/bin/python benchmarks/training.py [--part throughput|scale]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from edgetestbed.ledger import Ledger, remove_all
from edgetestbed.runner import PROCESS_ENV, run_experiment
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.model import Spec
from edgetestbed.spec.plan import sensor_id
from edgetestbed.testbed import open_testbed
from edgetestbed.topo.cgroups import RunCgroups
from edgetestbed.topo.probe import cgroup_version

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "training.json"
DEFAULT = HERE.parent / "examples" / "default.yaml"
SHARE = 0.5      # cores
SCALE_SIZES = [(10, 2), (15, 3), (20, 4), (25, 5), (50, 5)]   # (workers, parameter servers)
SECONDS = 4.0

TRAIN = """
import time
from edgetestbed.applications import create_application
from edgetestbed.data.streams import StreamDefinition, take
app = create_application("mnist_mlp", {}, 1)
x, y = take(StreamDefinition("mnist", "biased", {}).stream(0, 8, 1), 2000)
app.train(x[:100], y[:100], 1)  # warm up
samples, began = 0, time.monotonic()
while time.monotonic() - began < SECONDS:
    app.train(x, y, 1)
    samples += len(x)
print(samples / (time.monotonic() - began))
""".replace("SECONDS", str(SECONDS))


def _samples_per_second(output: str) -> float:
    return float(output.strip().splitlines()[-1])


def bare(share: float) -> float:
    result = subprocess.run([sys.executable, "-c", TRAIN], capture_output=True, text=True,
                            env=PROCESS_ENV | {"PATH": "/usr/bin:/bin"}, check=True)
    return _samples_per_second(result.stdout) * min(share, 1.0)


def bare_cgroup(share: float, workdir: Path) -> float:
    ledger = Ledger(workdir / "bench-cgroup.jsonl")
    groups = RunCgroups(cgroup_version(), f"bench{time.time_ns() % 10**8}", ledger)
    try:
        groups.create()
        host = groups.host("h")
        host.set_limits(share, 512 * 2**20)
        result = subprocess.run([sys.executable, "-c", TRAIN], capture_output=True, text=True, check=True,
                                env=PROCESS_ENV | {"PATH": "/usr/bin:/bin"},
                                preexec_fn=lambda: host.add_process(0))
        return _samples_per_second(result.stdout)
    finally:
        remove_all(ledger.entries())


def in_testbed(share: float, workdir: Path) -> float:
    tiny = load_spec_text(
        f"name: bench-train\napplication: {{name: mnist_mlp}}\ndata: {{dataset: mnist, partition: biased}}\n"
        f"nodes:\n  - {{id: root, cpu: {share}, memory: 512M}}\n  - {{id: w1, parent: root, sensors: [0]}}\n")
    with open_testbed(tiny, workdir, "bench") as (_run, network):
        process = network.host("root").popen([sys.executable, "-c", TRAIN], env=PROCESS_ENV | {"PATH": "/usr/bin:/bin"})
        out, err = process.communicate(timeout=120)
        if process.returncode:
            raise RuntimeError(err.decode())
        return _samples_per_second(out.decode())


def throughput(workdir: Path) -> dict:
    figures = {"share_cores": SHARE, "bare_scaled": bare(SHARE), "bare_cgroup": bare_cgroup(SHARE, workdir),
               "testbed": in_testbed(SHARE, workdir)}
    figures["testbed_vs_bare_cgroup"] = round(figures["testbed"] / figures["bare_cgroup"], 3)
    print(f"samples/s at {SHARE} cores: bare x share {figures['bare_scaled']:.0f}, bare in cgroup "
          f"{figures['bare_cgroup']:.0f}, testbed host {figures['testbed']:.0f} "
          f"({figures['testbed_vs_bare_cgroup']:.1%} of bare in cgroup; target >= 90%)", flush=True)
    return figures


def tree(workers: int, servers: int) -> str:
    """The default example's settings on a tree of the given size, two sensors per worker."""
    base = DEFAULT.read_text().split("\nnodes:")[0]
    nodes = ["  - {id: root, cpu: 0.5}"] + [f"  - {{id: ps{p}, parent: root}}" for p in range(servers)]
    nodes += [f"  - {{id: w{w}, parent: ps{w % servers}, sensors: [{2 * w}, {2 * w + 1}]}}" for w in range(workers)]
    cloud = "\ncloud: {cpu: 0.5, memory: 512M, link: {bw: 50Mbit, delay: 40ms}}\n"
    return base.replace("name: mnist-default", f"name: scale-{workers}w") + "\nnodes:\n" + "\n".join(nodes) + cloud


def cpu_by_role(usage: dict, spec: Spec) -> dict:
    """CPU seconds per role (sensors, workers, parameter servers with the root, cloud),
    from a run manifest's ``cgroup_usage``."""
    roles = {sensor_id(index): "sensors" for index in spec.sensor_ids}
    roles.update({node.id: "workers" if node.is_worker else "parameter_servers" for node in spec.nodes})
    seconds: dict = defaultdict(float)
    for host, figures in usage.items():
        seconds[roles.get(host, host)] += figures["cpu_seconds"]
    return {role: round(value, 1) for role, value in seconds.items()}


def scale(workdir: Path, sizes: list[tuple[int, int]]) -> list[dict]:
    rows = []
    for workers, servers in sizes:
        began = time.monotonic()
        spec = load_spec_text(tree(workers, servers))
        summary = run_experiment(spec, workdir, say=lambda _: None)
        usage = json.loads((Path(summary["run_dir"]) / "manifest.json").read_text())["cgroup_usage"]
        row = {"workers": workers, "parameter_servers": servers, "sensors": 2 * workers,
               "completed": summary["completed"], "seconds": round(time.monotonic() - began, 1),
               "final_score": summary["final_score"], "errors": summary["errors"],
               "late_starters": summary["late_starters"], "pace": summary["pace"],
               "cloud_memory_peak_mib": round(usage["cloud"]["memory_peak_bytes"] / 2**20),
               "cpu_seconds": cpu_by_role(usage, spec), "run_dir": summary["run_dir"]}
        rows.append(row)
        print(f"{workers} workers, {servers} parameter servers, {2 * workers} sensors: "
              f"{'completed' if row['completed'] else 'DID NOT COMPLETE'} in {row['seconds']} s, "
              f"root {summary['final_score'].get('root')}, cloud {summary['final_score'].get('cloud')} "
              f"(peak {row['cloud_memory_peak_mib']} MiB of 512), "
              f"{len(row['late_starters'])} processes started late, "
              f"{'kept pace' if row['pace']['kept'] else 'FELL BEHIND'} "
              f"(samples up to {row['pace']['sensor_behind_max_s']} s late); CPU seconds "
              + ", ".join(f"{role} {value}" for role, value in row["cpu_seconds"].items()), flush=True)
    kept = [row for row in rows if row["completed"] and row["pace"]["kept"]]
    largest = max(kept, key=lambda row: row["workers"], default=None)
    print("largest tree run to completion at the spec's pace: "
          + (f"{largest['workers']} workers, {largest['parameter_servers']} parameter servers, "
             f"{largest['sensors']} sensors" if largest else "none"), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["throughput", "scale", "all"], default="all")
    parser.add_argument("--workdir", type=Path, default=Path("runs/benchmarks"))
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.part in ("throughput", "all"):
        results["throughput"] = throughput(args.workdir)
    if args.part in ("scale", "all"):
        results["scale"] = scale(args.workdir, SCALE_SIZES)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
