"""Print the tables of docs/experiments.md from the sweeps' run directories, and copy each
sweep's cost-vs-accuracy plot beside this script.

    .venv/bin/python docs/experiments/tables.py [RUNS_DIR]    # default: runs/experiments

Every figure comes from a point's newest completed run (``metrics.json``); no root needed.
Columns beyond ``compare``'s: the workers' mean accuracy after their last window (before the
final pull), the time the root first reached 40 %, bytes per worker link, the switch backend,
and whether the machine kept the spec's pace. The codec sweeps get a table of their own: each
codec against the sweep's uncoded point (its first), the pushes' bytes on the worker links
from the captures, the time the root first reached 80 %, and what coding cost in CPU. So do
the exchange-method sweeps: each point's trigger and aggregation (its ``defaults``), the root's
accuracy and time to 80 %, bytes, latency, the staleness of merged updates and what the
triggers saved (``metrics["savings"]``: the saved bytes are the nodes' own estimate).
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
CODEC_SWEEPS = ("codecs", "codecs-poor")
EXCHANGE_SWEEPS = ("exchange", "exchange-poor")
THRESHOLD = 0.40
CODEC_THRESHOLD = 0.80
COLUMNS = ("point", "root acc", "cloud acc", "lag", "convergence s", "latency s", "worker-link MB (mean)",
           "MB into root", "tree MB", "worker acc (mean)", "time to 40 % s", "bytes from", "switch", "kept pace")


def mean(values: List[float]) -> float:
    return sum(values) / len(values)


def time_to(curve: Dict[str, List[float]], threshold: float) -> str:
    """When the curve first reached ``threshold`` (seconds since the run's start), or ``never``."""
    return next((f"{t:.1f}" for t, value in zip(curve["t"], curve["value"]) if value >= threshold), "never")


def worker_link_mb(metrics: Dict[str, Any]) -> str:
    """The mean bytes of the workers' links to their parents, in MB."""
    workers = metrics["run"]["workers"]
    return f"{mean([item['bytes'] for item in metrics['links']['items'] if item['ends'][0] in workers]) / 1e6:.2f}"


def kept_pace(metrics: Dict[str, Any]) -> str:
    return {True: "yes", False: "NO"}.get(metrics["pace"]["kept"], "?")


def row(point: str, metrics: Dict[str, Any]) -> List[str]:
    summary, run = metrics["summary"], metrics["run"]
    curves = metrics["accuracy"]["nodes"]
    # a worker's last curve point is its final pull; the one before is its own last window
    last_windows = [curves[worker]["value"][-2] for worker in run["workers"]]
    return [point, f"{summary['final_root']:.3f}", f"{summary['final_cloud']:.3f}", f"{summary['root_lag_final']:.3f}",
            f"{summary['convergence_s']:.1f}", f"{summary['latency_s']:.2f}",
            worker_link_mb(metrics), f"{summary['top_level_bytes'] / 1e6:.2f}",
            f"{summary['tree_bytes'] / 1e6:.2f}", f"{sum(last_windows) / len(last_windows):.3f}",
            time_to(curves[run["root"]], THRESHOLD), summary["bytes_source"], run["backends"]["switch"],
            kept_pace(metrics)]


CODEC_COLUMNS = ("codec", "root acc", "vs uncoded (points)", "time to 80 % s", "worker push kB (wire, mean)",
                 "vs uncoded", "tree MB", "encode ms/push (workers)", "decode ms/push (servers)",
                 "comm/comp (workers)", "kept pace")


def pushed_on_the_wire(metrics: Dict[str, Any]) -> float:
    """The mean bytes of update pushes the captures saw on the worker links."""
    workers = metrics["run"]["workers"]
    return mean([item["push"]["wire_bytes"] for item in metrics["compression"]["links"] if item["child"] in workers])


def per_call(nodes: List[Dict[str, Any]], kind: str) -> str:
    calls = sum(node.get(f"codec_{kind}s", 0) for node in nodes)
    return f"{1000 * sum(node.get(f'codec_{kind}_cpu', 0) for node in nodes) / calls:.2f}" if calls else "–"


def codec_row(codec: str, metrics: Dict[str, Any], uncoded: Dict[str, Any]) -> List[str]:
    summary, run, nodes = metrics["summary"], metrics["run"], metrics["compression"]["nodes"]
    workers = [nodes[worker] for worker in run["workers"]]
    servers = [nodes[ident] for ident in [run["root"], *run["parameter_servers"]]]
    pushed = pushed_on_the_wire(metrics)
    return [codec, f"{summary['final_root']:.3f}",
            f"{100 * (summary['final_root'] - uncoded['summary']['final_root']):+.1f}",
            time_to(metrics["accuracy"]["nodes"][run["root"]], CODEC_THRESHOLD), f"{pushed / 1e3:.1f}",
            f"{pushed / pushed_on_the_wire(uncoded):.3f}", f"{summary['tree_bytes'] / 1e6:.2f}",
            per_call(workers, "encode"), per_call(servers, "decode"),
            f"{mean([node['comm_to_comp'] for node in workers]):.2f}", kept_pace(metrics)]


def codec_name(point: Dict[str, Any]) -> str:
    chain = point["overrides"]["defaults.codec"]
    chain = chain if isinstance(chain, list) else [chain]
    return " + ".join(json.dumps(codec, separators=(", ", ": ")) for codec in chain) or "none"


def completed_points(sweep_dir: Path) -> List[tuple]:
    """``(point, its metrics or None)`` for every point of the sweep, in order."""
    points = json.loads((sweep_dir / "sweep.json").read_text())["points"]
    runs = [completed_run(sweep_dir / point["name"]) for point in points]
    return [(point, run_dir and json.loads((run_dir / "metrics.json").read_text())) for point, run_dir in zip(points, runs)]


def markdown(columns: tuple, rows: List[List[str]]) -> str:
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
                      *("| " + " | ".join(cells) + " |" for cells in rows)])


def table(sweep_dir: Path) -> str:
    return markdown(COLUMNS, [row(point["name"], metrics) if metrics else [point["name"], "not completed"]
                              for point, metrics in completed_points(sweep_dir)])


def codec_table(sweep_dir: Path) -> str:
    points = completed_points(sweep_dir)
    uncoded = points[0][1]
    return markdown(CODEC_COLUMNS, [codec_row(codec_name(point), metrics, uncoded) if metrics and uncoded
                                    else [codec_name(point), "not completed"] for point, metrics in points])


EXCHANGE_COLUMNS = ("method", "root acc", "vs simple (points)", "time to 80 % s", "lag", "latency s",
                    "worker-link MB (mean)", "tree MB", "staleness max", "staleness mean", "pushes suppressed",
                    "updates discarded", "pulls not modified", "saved MB (estimate)", "kept pace")


def exchange_name(point: Dict[str, Any]) -> str:
    """The point's policy and aggregation, with their parameters: ``significance threshold=0.1
    max_wait=3 + average``."""
    defaults = point["overrides"]["defaults"]
    return " + ".join(" ".join([plugin["type"], *(f"{key}={value}" for key, value in plugin.items() if key != "type")])
                      for plugin in (defaults.get("policy", {"type": "simple"}),
                                     defaults.get("aggregation", {"type": "average"})))


def figure(value: Any, form: str) -> str:
    """``value`` formatted, or a dash when the run had none (no merged update, no staleness)."""
    return "–" if value is None else format(value, form)


def exchange_row(method: str, metrics: Dict[str, Any], simple: Dict[str, Any]) -> List[str]:
    summary, run = metrics["summary"], metrics["run"]
    return [method, f"{summary['final_root']:.3f}",
            f"{100 * (summary['final_root'] - simple['summary']['final_root']):+.1f}",
            time_to(metrics["accuracy"]["nodes"][run["root"]], CODEC_THRESHOLD),
            figure(summary["root_lag_final"], ".3f"), figure(summary["latency_s"], ".2f"), worker_link_mb(metrics),
            f"{summary['tree_bytes'] / 1e6:.2f}", figure(summary["staleness_max"], "d"),
            figure(summary["staleness_mean"], ".2f"), str(summary["pushes_suppressed"]),
            str(summary["updates_discarded"]), str(summary["pulls_not_modified"]),
            f"{summary['saved_bytes'] / 1e6:.2f}", kept_pace(metrics)]


def exchange_table(sweep_dir: Path) -> str:
    """Each point against the sweep's first (``simple`` with ``average``)."""
    points = completed_points(sweep_dir)
    simple = points[0][1]
    return markdown(EXCHANGE_COLUMNS, [exchange_row(exchange_name(point), metrics, simple) if metrics and simple
                                       else [exchange_name(point), "not completed"] for point, metrics in points])


def main() -> None:
    runs_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/experiments")
    for name in (*SWEEPS, *CODEC_SWEEPS, *EXCHANGE_SWEEPS):
        sweep_dir = runs_dir / f"sweep-{name}"
        if not (sweep_dir / "sweep.json").exists():
            print(f"## {name}: no sweep in {sweep_dir}\n")
            continue
        if name in (*CODEC_SWEEPS, *EXCHANGE_SWEEPS):   # their plot would be all sensor bytes
            print(f"## {name}\n\n{(codec_table if name in CODEC_SWEEPS else exchange_table)(sweep_dir)}\n")
            continue
        print(f"## {name}\n\n{table(sweep_dir)}\n")
        shutil.copyfile(sweep_dir / "cost_vs_accuracy.png", HERE / f"{name}.png")


if __name__ == "__main__":
    main()
