"""Runs side by side: which configuration gives the accuracy needed at the lowest cost?

:func:`compare_runs` gives one row per run directory (the ``summary`` of its metrics, plus
what distinguishes configurations: workers, levels, policies); :func:`write_comparison`
writes ``comparison.md``, ``comparison.csv`` and ``cost_vs_accuracy.png``;
:func:`format_comparison` is the Markdown table the CLI prints. A run's ``metrics.json`` is
reused when it has the current schema, else computed (and written) from the run directory.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

from edgetestbed.analysis.metrics import METRICS_NAME, SCHEMA_VERSION, write_metrics
from edgetestbed.analysis.plots import human_bytes, plot_cost_vs_accuracy
from edgetestbed.analysis.document import lag_text, score, seconds, table, to_markdown
from edgetestbed.errors import UserError

CSV_FIELDS = ("run", "name", "directory", "workers", "levels", "policies", "codecs", "cloud_mode", "metric",
              "final_model", "final_root", "final_cloud", "root_lag_final", "convergence_s", "latency_s",
              "latency_complete", "total_bytes", "tree_bytes", "top_level_bytes", "cloud_link_bytes", "bytes_source", "push_ratio", "codec_cpu_s", "cpu_seconds_nodes",
              "pushes_suppressed", "updates_discarded", "pulls_not_modified", "saved_bytes", "staleness_mean",
              "staleness_max", "run_time_s", "complete", "emulated")


def load_metrics(run_dir: Path) -> Dict[str, Any]:
    """The run's metrics: its ``metrics.json`` if current, else computed now and written."""
    path = Path(run_dir) / METRICS_NAME
    if path.is_file():
        metrics = json.loads(path.read_text())
        if metrics.get("schema_version") == SCHEMA_VERSION:
            return metrics
    return json.loads(write_metrics(Path(run_dir)).read_text())


def comparison_row(run_dir: Path, metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """One run as a row: its summary and what sets its configuration apart. ``final_model`` is
    the final score of the model the configuration serves: the root's, or in a centralized
    run (sensors → cloud, no tree) the cloud's."""
    run = metrics["run"]
    levels = [node["level"] for node in metrics["nodes"].values() if node["level"] is not None]
    policies = sorted({_plugin(policy) for ident, policy in run["policies"].items() if ident in run["workers"]})
    codecs = sorted({"+".join(map(_plugin, chain)) for chain in run["codecs"].values()})
    return {"run": Path(run_dir).name, "name": run["name"], "directory": str(run_dir),
            "workers": len(run["workers"]), "levels": max(levels) + 1 if levels else None,
            "policies": "; ".join(policies), "codecs": "; ".join(codecs), **metrics["summary"],
            "final_model": metrics["summary"]["final_cloud" if _centralized(metrics) else "final_root"]}


def _centralized(metrics: Mapping[str, Any]) -> bool:
    return metrics["summary"].get("cloud_mode") == "centralized"


def _plugin(plugin: Mapping[str, Any]) -> str:
    """A policy or codec as ``type(key=value, ...)``."""
    params = ", ".join(f"{key}={value}" for key, value in plugin.items() if key != "type")
    return f"{plugin['type']}({params})" if params else plugin["type"]


def compare_runs(run_dirs: Sequence[Path]) -> List[Dict[str, Any]]:
    """One row per run directory, in the order given. UserError for a directory that is not
    a run directory, or runs whose tasks measure different things (accuracy vs RMSE)."""
    rows = [comparison_row(Path(run_dir), load_metrics(Path(run_dir))) for run_dir in run_dirs]
    metrics = {row["metric"] for row in rows if row["metric"] is not None}
    if len(metrics) > 1:
        raise UserError(f"these runs measure different things ({' and '.join(sorted(metrics))}): "
                        f"compare runs of one task")
    return rows


Row = Mapping[str, Any]
COLUMNS: Sequence[Tuple[str, Callable[[Row], str]]] = (
    ("run", lambda row: row["run"]), ("workers", lambda row: str(row["workers"])),
    ("levels", lambda row: str(row["levels"])), ("policy", lambda row: row["policies"]),
    ("codec", lambda row: row["codecs"] or "none"),
    ("trained at", lambda row: "cloud (centralized)" if row.get("cloud_mode") == "centralized" else "tree"),
    ("final root", lambda row: score(row["final_root"], row["metric"])),
    ("final cloud", lambda row: score(row["final_cloud"], row["metric"])),
    ("root lag", lambda row: lag_text(row["root_lag_final"], row["metric"])),
    ("convergence", lambda row: seconds(row["convergence_s"])),
    ("latency", lambda row: seconds(row["latency_s"]) + (" (incomplete)" if row["latency_complete"] is False else "")),
    ("total bytes", lambda row: human_bytes(row["total_bytes"]) + ("" if row.get("emulated", True)
                                                                    else " (NOT EMULATED: message bytes)")),
    ("top-level bytes", lambda row: human_bytes(row["top_level_bytes"])),
    ("cloud link bytes", lambda row: human_bytes(row.get("cloud_link_bytes"))),
    ("pushes coded", lambda row: "–" if row["push_ratio"] is None else f"{row['push_ratio']:.3f}×"),
    ("CPU (nodes)", lambda row: seconds(row["cpu_seconds_nodes"])),
    ("suppressed / discarded / not modified", lambda row: _skipped(row)),
    ("saved (est.)", lambda row: "–" if row.get("saved_bytes") is None else human_bytes(row["saved_bytes"])),
    ("staleness mean / max", lambda row: _staleness(row)),
    ("complete", lambda row: "yes" if row["complete"] else "NO"))


def _skipped(row: Row) -> str:
    """The exchanges the triggers left out: pushes suppressed, updates discarded, pulls
    answered NOT_MODIFIED (– for a run older than these counts)."""
    counts = [row.get(key) for key in ("pushes_suppressed", "updates_discarded", "pulls_not_modified")]
    return "–" if None in counts else " / ".join(map(str, counts))


def _staleness(row: Row) -> str:
    if row.get("staleness_mean") is None:
        return "–"
    return f"{row['staleness_mean']:.2f} / {row['staleness_max']}"


def format_comparison(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, values with units."""
    return to_markdown([table([title for title, _ in COLUMNS], [[show(row) for _, show in COLUMNS] for row in rows])])


def write_comparison(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> Dict[str, Path]:
    """Write ``comparison.md``, ``comparison.csv`` (raw numbers: fractions, seconds, bytes) and
    ``cost_vs_accuracy.png`` (when some run has both) into ``out_dir``; their paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "comparison.md", "csv": out_dir / "comparison.csv"}
    paths["md"].write_text("# Comparison of runs\n\n" + format_comparison(rows), encoding="utf-8")
    with open(paths["csv"], "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot = plot_cost_vs_accuracy(rows, out_dir / "cost_vs_accuracy.png")
    return {**paths, **({"png": plot} if plot else {})}


def compare_main(run_dirs: Sequence[Path], out_dir: Path = Path("."), say: Callable[[str], None] = print) -> int:
    """``python -m edgetestbed compare RUN_DIR... [--out DIR]``: print the table, write the
    files into ``out_dir`` and say where; 0. UserError (exit 2) for a bad run directory."""
    rows = compare_runs(run_dirs)
    paths = write_comparison(rows, out_dir)
    say(format_comparison(rows) + "written: " + ", ".join(str(path) for path in paths.values()))
    return 0
