"""Benchmark: does the README's default run keep the spec's clock and agree with itself, run after run?

Runs ``python -m edgetestbed run`` (``examples/default.yaml``) ``--runs`` times in a row and,
for each, prints its verdict: finished, kept pace, the worst sample lateness of any sensor,
the processes that started after window 0 began, the slowest process to get ready, the
links whose wire sources disagree (flagged) and the cost-model rows outside their
tolerance (OFF). The target (issue "every run trustworthy"): every run keeps pace with no
late starter, no flagged link and no OFF row.

Prints the table and writes ``benchmarks/results/default_runs.json``.
Run as root: ``sudo .venv/bin/python benchmarks/default_runs.py [--runs 20] [--runs-dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "default_runs.json"
RUN_TIMEOUT_S = 600


def verdict(run_dir: Path) -> dict:
    """One run's figures, from its summary.json and metrics.json."""
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    items = metrics["links"].get("items", [])
    ready = summary.get("ready_after_s", {})
    slowest = max(ready, key=ready.get, default=None)
    return {"run_dir": str(run_dir), "completed": summary["completed"], "kept_pace": summary["pace"]["kept"],
            "sensor_behind_max_s": summary["pace"]["sensor_behind_max_s"],
            "late_starters": summary["late_starters"],
            "slowest_ready": [slowest, ready.get(slowest)],
            "flagged_links": [item["link"] for item in items if item.get("flagged")],
            "cost_model_off": [item["link"] for item in items
                               if item.get("cost_model", {}).get("applies")
                               and not item["cost_model"].get("within_tolerance")]}


def one_run(runs_dir: Path) -> dict:
    before = set(runs_dir.iterdir()) if runs_dir.exists() else set()
    began = time.time()
    done = subprocess.run([sys.executable, "-m", "edgetestbed", "run", "--runs-dir", str(runs_dir)],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    (run_dir,) = set(runs_dir.iterdir()) - before
    result = {"exit_status": done.returncode, "wall_s": round(time.time() - began, 1)}
    if done.returncode != 0 or not (run_dir / "metrics.json").exists():
        return {**result, "run_dir": str(run_dir), "error": done.stderr[-1000:]}
    return {**result, **verdict(run_dir)}


def good(row: dict) -> bool:
    return (row.get("exit_status") == 0 and row.get("completed") and row.get("kept_pace")
            and not row["late_starters"] and not row["flagged_links"] and not row["cost_model_off"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runs-dir", type=Path, default=None, help="default: a new temporary directory")
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="etb-default-runs-"))
    rows = []
    for index in range(args.runs):
        rows.append(one_run(runs_dir))
        row = rows[-1]
        print(f"run {index + 1:2d}/{args.runs}: {'ok ' if good(row) else 'BAD'} "
              f"exit {row['exit_status']}, kept pace {row.get('kept_pace')}, "
              f"worst lateness {row.get('sensor_behind_max_s')} s, late starters {row.get('late_starters')}, "
              f"slowest ready {row.get('slowest_ready')}, flagged {row.get('flagged_links')}, "
              f"OFF {row.get('cost_model_off')}, {row['wall_s']} s", flush=True)
    worst = max((row.get("sensor_behind_max_s") or 0.0 for row in rows), default=None)
    result = {"runs": len(rows), "good": sum(map(good, rows)), "worst_sensor_behind_s": worst,
              "commit": _commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['good']} of {len(rows)} runs good; worst sample lateness {worst} s; written to {RESULTS}")
    return 0 if result["good"] == len(rows) else 1


def _commit() -> str:
    done = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
