"""Print the tables of docs/experiments.md from the sweeps' run directories, and copy each
sweep's cost-vs-accuracy plot beside this script.

    .venv/bin/python docs/experiments/tables.py [RUNS_DIR]    # default: runs/experiments

Every figure comes from a point's newest completed run (``metrics.json``); no root needed.
Columns beyond ``compare``'s: the workers' mean accuracy after their last window (before the
final pull), the time the root first reached 40 %, bytes per worker link, the switch backend,
and whether the machine kept the spec's pace.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List

from edgetestbed.sweeprun import completed_run

HERE = Path(__file__).resolve().parent
SWEEPS = ("workers", "levels", "delays", "policies")
THRESHOLD = 0.40
COLUMNS = ("point", "root acc", "cloud acc", "lag", "convergence s", "latency s", "worker-link MB (mean)",
           "MB into root", "tree MB", "worker acc (mean)", "time to 40 % s", "bytes from", "switch", "kept pace")


def time_to(curve: Dict[str, List[float]], threshold: float) -> str:
    """When the curve first reached ``threshold`` (seconds since the run's start), or ``never``."""
    return next((f"{t:.1f}" for t, value in zip(curve["t"], curve["value"]) if value >= threshold), "never")


def row(point: str, metrics: Dict[str, Any]) -> List[str]:
    summary, run, links = metrics["summary"], metrics["run"], metrics["links"]
    curves = metrics["accuracy"]["nodes"]
    worker_links = [item["bytes"] for item in links["items"] if item["ends"][0] in run["workers"]]
    # a worker's last curve point is its final pull; the one before is its own last window
    last_windows = [curves[worker]["value"][-2] for worker in run["workers"]]
    return [point, f"{summary['final_root']:.3f}", f"{summary['final_cloud']:.3f}", f"{summary['root_lag_final']:.3f}",
            f"{summary['convergence_s']:.1f}", f"{summary['latency_s']:.2f}",
            f"{sum(worker_links) / len(worker_links) / 1e6:.2f}", f"{summary['top_level_bytes'] / 1e6:.2f}",
            f"{summary['tree_bytes'] / 1e6:.2f}", f"{sum(last_windows) / len(last_windows):.3f}",
            time_to(curves[run["root"]], THRESHOLD), summary["bytes_source"], run["backends"]["switch"],
            {True: "yes", False: "NO"}.get(metrics["pace"]["kept"], "?")]


def table(sweep_dir: Path) -> str:
    points = json.loads((sweep_dir / "sweep.json").read_text())["points"]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for point in points:
        run_dir = completed_run(sweep_dir / point["name"])
        if run_dir is None:
            lines.append(f"| {point['name']} | not completed |")
            continue
        metrics = json.loads((run_dir / "metrics.json").read_text())
        lines.append("| " + " | ".join(row(point["name"], metrics)) + " |")
    return "\n".join(lines)


def main() -> None:
    runs_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/experiments")
    for name in SWEEPS:
        sweep_dir = runs_dir / f"sweep-{name}"
        if not (sweep_dir / "sweep.json").exists():
            print(f"## {name}: no sweep in {sweep_dir}\n")
            continue
        print(f"## {name}\n\n{table(sweep_dir)}\n")
        shutil.copyfile(sweep_dir / "cost_vs_accuracy.png", HERE / f"{name}.png")


if __name__ == "__main__":
    main()
