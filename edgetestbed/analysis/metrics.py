"""The metrics of one run, from its run directory alone: what the hierarchy bought and what it cost.

:func:`compute_metrics` reads the run directory (:mod:`edgetestbed.analysis.runlogs`) and
returns one JSON-ready dict; :func:`write_metrics` stores it as ``metrics.json``. Every
field is documented in ``docs/metrics.md``. The definitions (docs/architecture.md, "Measurement and
metrics") are the pure functions of :mod:`edgetestbed.analysis.definitions`; bytes per link
come from :mod:`edgetestbed.analysis.linkbytes`.

Times are seconds since window 0 began. A run cut short (Ctrl-C, a killed process, a
truncated log) still gets its metrics: what could not be computed is ``null`` and the
reason is listed in ``completeness.missing`` or next to the figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edgetestbed.analysis.compression import compression_section
from edgetestbed.analysis.definitions import convergence_time, lag_curve, own_labels, propagation_latency, \
    split_per_class
from edgetestbed.analysis.linkbytes import links_section
from edgetestbed.analysis.runlogs import Event, RunLogs
from edgetestbed.analysis.netevents import network_events_section
from edgetestbed.analysis.savings import TOTALS as SAVINGS_SUMMARY, savings_section
from edgetestbed.analysis.staleness import staleness_section
from edgetestbed.data.schedule import kept_pace, window_grace
from edgetestbed.params.fields import thaw
from edgetestbed.process.eventlog import BEHIND, DONE, ERROR, MALFORMED, MODEL_RECEIVED, RETRY, STATISTIC, STOP, \
    UNREACHABLE
from edgetestbed.process.sampling import stream_definition
from edgetestbed.spec.plan import CLOUD_ID, plan_network

SCHEMA_VERSION = 10
METRICS_NAME = "metrics.json"
ACCURACY_TOLERANCE = 0.01        # convergence: within 1 point (0.01) of the final accuracy
RMSE_TOLERANCE = 0.01            # ... or within 1 % of the final RMSE

Curve = Dict[str, list]


# ---------------------------------------------------------------- from the logs

def metric_name(run: RunLogs) -> Optional[str]:
    """``accuracy`` (classification) or ``rmse`` (regression), as the evaluations report."""
    for events in run.logs.values():
        for event in events:
            for name in ("accuracy", "rmse"):
                if name in event.payload:
                    return name
    return None


def score_curve(run: RunLogs, ident: str, metric: str) -> Curve:
    """Every evaluation of ``ident``'s model: ``t`` (when the model evaluated came to be:
    ``trained_at`` for a window, the merge's start for a parameter server's ``before``,
    else the log time), ``value`` and, for classification, ``per_class``."""
    points = sorted(_evaluations(run.events(ident, STATISTIC, DONE), metric), key=lambda point: point[0])
    curve: Curve = {"t": [run.since_start(ts) for ts, _ in points], "value": [p[metric] for _, p in points]}
    if metric == "accuracy":
        curve["per_class"] = [p.get("per_class") for _, p in points]
    return curve


def _evaluations(events: Sequence[Event], metric: str) -> List[Tuple[float, dict]]:
    points = []
    for event in events:
        payload = event.payload
        if metric in payload.get("before", {}):
            points.append((event.ts - payload.get("wall_time", 0.0), payload["before"]))
        if metric in payload:
            points.append((payload.get("trained_at", event.ts), payload))
    return points


def window_finish_times(run: RunLogs, worker: str) -> Dict[int, float]:
    """``t_j``: when the worker's model first held window ``j`` (its ``trained_at``)."""
    finished: Dict[int, float] = {}
    for event in run.events(worker, STATISTIC):
        window, at = event.payload.get("window"), event.payload.get("trained_at", event.ts)
        if window is not None:
            finished[window] = min(at, finished.get(window, at))
    return finished


def models_received(run: RunLogs, worker: str) -> List[Tuple[float, Mapping[str, int]]]:
    """``(time, coverage)`` of every model the worker received from its parent."""
    return [(e.ts, e.payload.get("coverage", {})) for e in run.events(worker, MODEL_RECEIVED)]


def process_usage(run: RunLogs, ident: str) -> Dict[str, Any]:
    """CPU seconds and peak memory of ``ident``: from cgroup accounting when the manifest
    carries it (``cgroup_usage``: ident -> ``{cpu_seconds, memory_peak_bytes}``, the whole
    host), else as the process logged them (the last ``cpu_total`` of each process started,
    summed over restarts; the largest ``memory_peak``)."""
    cpu = sum(next((e.payload["cpu_total"] for e in reversed(life) if "cpu_total" in e.payload), 0.0)
              for life in run.lives(ident))
    peaks = [e.payload["memory_peak"] for e in run.events(ident) if "memory_peak" in e.payload]
    logged = {"cpu_seconds": cpu if peaks else None, "memory_peak_bytes": max(peaks, default=None),
              "resource_source": "process logs" if peaks else None}
    accounted = run.manifest.get("cgroup_usage", {}).get(ident)
    if not accounted:
        return logged
    return {"cpu_seconds": accounted.get("cpu_seconds"), "memory_peak_bytes": accounted.get("memory_peak_bytes"),
            "resource_source": "cgroup", "cpu_seconds_logged": logged["cpu_seconds"],
            "memory_peak_bytes_logged": logged["memory_peak_bytes"]}


def ending(run: RunLogs, ident: str) -> str:
    """How the process's (last) life ended: DONE, STOP, ERROR, ``cut short``, ``no log``, or
    ``not run`` (a tree node of a centralized run)."""
    lives = run.lives(ident)
    if not lives:
        return "no log" if ident in run.processes else "not run"
    last = lives[-1][-1].type
    return last if last in (DONE, STOP, ERROR) else "cut short"


# ---------------------------------------------------------------- sections of metrics.json

def run_section(run: RunLogs, metric: Optional[str]) -> Dict[str, Any]:
    """What was run: the spec in brief, the time frame, the manifest's backends and revision."""
    spec = run.spec
    ends = [e.ts for events in run.logs.values() for e in events]
    starts = [e.ts for events in run.logs.values() for e in events[:1]]
    return {"name": spec.name, "directory": str(run.run_dir), "seed": spec.seed,
            "application": {"name": spec.application.name, **thaw(spec.application.params)},
            "data": {"dataset": spec.data.dataset, "partition": spec.data.partition, **thaw(spec.data.params)},
            "windows": {"interval_s": spec.windows.interval, "limit": spec.windows.limit,
                        "epochs": spec.windows.epochs},
            "metric": metric, "root": spec.root.id, "parameter_servers": [n.id for n in spec.parameter_servers],
            "workers": [n.id for n in spec.workers], "cloud": spec.cloud is not None,
            "cloud_mode": spec.cloud.mode if spec.cloud is not None else None,
            "policies": {n.id: {"type": n.policy.type, **thaw(n.policy.params)} for n in spec.nodes},
            "codecs": {n.id: [{"type": c.type, **thaw(c.params)} for c in n.codec] for n in spec.nodes if n.codec},
            "aggregations": {n.id: {"type": n.aggregation.type, **thaw(n.aggregation.params)}
                             for n in spec.nodes if not n.is_worker},
            "start_at": run.start_at, "run_time_s": max(ends) - min(starts) if ends else None,
            "network": spec.network.backend, "emulated": spec.network.emulated,
            "backends": run.manifest.get("backends"), "git_revision": run.manifest.get("git_revision")}


def nodes_section(run: RunLogs, curves: Mapping[str, Curve]) -> Dict[str, Dict[str, Any]]:
    """Per process: role, how it ended, run time, windows or merges, samples, CPU, memory; and
    every tree node, also those a centralized run did not start (the tree is still drawn)."""
    parents = {link.ends[0]: link.ends[1] for link in plan_network(run.spec).shaped_links}
    idents = dict.fromkeys([node.id for node in run.spec.nodes] + run.processes)
    return {ident: _node_summary(run, ident, parents.get(ident), curves.get(ident)) for ident in idents}


def _node_summary(run: RunLogs, ident: str, parent: Optional[str], curve: Optional[Curve]) -> Dict[str, Any]:
    stats = [e.payload for e in run.events(ident, STATISTIC)]
    events = run.events(ident)
    node = {n.id: n for n in run.spec.nodes}.get(ident)
    merges = node is not None and not node.is_worker
    return {"role": node.role if node else ("cloud" if ident == CLOUD_ID else "sensor"),
            "parent": parent, "level": node.level if node else None,
            "end": ending(run, ident), "starts": len(run.lives(ident)),
            "run_time_s": events[-1].ts - events[0].ts if events else None,
            "windows": None if merges else len({s["window"] for s in stats if "window" in s}),
            "merges": sum(1 for s in stats if "merge" in s) if merges else None,
            "samples": int(sum(s.get("samples", 0) for s in stats)),
            **process_usage(run, ident),
            "retries": len(run.events(ident, RETRY)), "unreachable": len(run.events(ident, UNREACHABLE)),
            "malformed": len(run.events(ident, MALFORMED)),
            "final": curve["value"][-1] if curve and curve["value"] else None}


def lag_section(curves: Mapping[str, Curve], metric: Optional[str]) -> Dict[str, Any]:
    """Every tree node's lag behind the cloud (:func:`lag_curve`), with its final, mean and max."""
    cloud = curves.get(CLOUD_ID)
    if not cloud or not cloud["t"]:
        return {"nodes": {}, "note": "no cloud baseline evaluations: no lag"}
    nodes = {}
    for ident, curve in curves.items():
        if ident == CLOUD_ID:
            continue
        t, lag = lag_curve(curve["t"], curve["value"], cloud["t"], cloud["value"], metric != "rmse")
        nodes[ident] = {"t": t, "value": lag, "final": lag[-1] if lag else None,
                        "mean": float(np.mean(lag)) if lag else None, "max": max(lag) if lag else None}
    return {"nodes": nodes}


def latency_section(run: RunLogs) -> Dict[str, Any]:
    """:func:`propagation_latency` of the run's workers."""
    workers = [n.id for n in run.spec.workers]
    return propagation_latency({w: window_finish_times(run, w) for w in workers},
                               {w: models_received(run, w) for w in workers}, run.spec.windows.limit)


def window_latencies(run: RunLogs, latency: Mapping[str, Any]) -> List[Tuple[float, float]]:
    """(when the last worker finished it, seconds since window 0; the worst worker's propagation
    latency) of every window whose latency is known, from ``latency`` (:func:`latency_section`)."""
    workers = latency["workers"]
    finished = {w: window_finish_times(run, w) for w in workers}
    windows = []
    for j in range(run.spec.windows.limit):
        known = [figures["per_window"][j] for figures in workers.values() if figures["per_window"][j] is not None]
        if known and all(j in finished[w] for w in workers):
            windows.append((run.since_start(max(finished[w][j] for w in workers)), max(known)))
    return windows


def convergence_section(run: RunLogs, curves: Mapping[str, Curve], metric: Optional[str]) -> Dict[str, Any]:
    """When the root came within 1 point (1 % of RMSE) of its final value."""
    root = run.spec.root.id
    curve = curves.get(root, {"t": [], "value": []})
    if not curve["value"]:
        return {"node": root, "final": None, "tolerance": None, "time_s": None}
    final = curve["value"][-1]
    tolerance = RMSE_TOLERANCE * final if metric == "rmse" else ACCURACY_TOLERANCE
    return {"node": root, "final": final, "tolerance": tolerance,
            "time_s": convergence_time(curve["t"], curve["value"], tolerance)}


def own_vs_other_section(run: RunLogs, curves: Mapping[str, Curve]) -> Dict[str, Any]:
    """Each worker's mean per-class accuracy on its own digits and on the others, over time;
    the root's final model on the same split for reference."""
    spec = run.spec
    definition = stream_definition(spec)
    if definition.source.task != "classification":
        return {"workers": {}, "note": f"{spec.data.dataset}: no classes to split"}
    n_sensors = max(spec.sensor_ids) + 1
    root_final = (curves.get(spec.root.id, {}).get("per_class") or [None])[-1]
    workers = {}
    for worker in spec.workers:
        own = own_labels([definition.label_distribution(k, n_sensors) for k in worker.sensors])
        workers[worker.id] = _own_vs_other(curves.get(worker.id, {}), own, root_final)
    return {"workers": workers}


def _own_vs_other(curve: Curve, own: List[int], root_final: Optional[list]) -> Dict[str, Any]:
    if not own:
        return {"own_labels": [], "note": "its sensors stream every digit alike: no own digits"}
    pairs = [split_per_class(per_class, own) for per_class in curve.get("per_class", []) if per_class]
    root = split_per_class(root_final, own) if root_final else (None, None)
    return {"own_labels": own, "t": [t for t, p in zip(curve.get("t", []), curve.get("per_class", [])) if p],
            "own": [o for o, _ in pairs], "other": [o for _, o in pairs],
            "final_own": pairs[-1][0] if pairs else None, "final_other": pairs[-1][1] if pairs else None,
            "root_final_own": root[0], "root_final_other": root[1]}


def pace_section(run: RunLogs) -> Dict[str, Any]:
    """Whether the machine kept the spec's clock, and how late the workers' windows closed.

    ``kept`` comes from the sensors alone: they only sleep and send, so a sample that left
    later than the window grace means the machine could not run every process at the
    spec's pace (and that sample missed its window). Workers' lateness (``trained_at``
    minus the window's end) also grows with slow exchanges, which the spec may well ask
    for, so it is reported, not judged."""
    interval = run.spec.windows.interval
    behind = [(e.payload["behind"], ident, e.payload.get("window")) for ident in run.processes
              for e in run.events(ident, STATISTIC, BEHIND)
              if isinstance(e.payload.get("behind"), (int, float))]
    worst_sensor = max(behind, default=(None, None, None))
    if not worst_sensor[0]:  # every sample on time: no sensor to name
        worst_sensor = (worst_sensor[0], None, None)
    late = _windows_late(run)
    worst_window = late[-1] if late else (None, None, None)
    return {"tolerance_s": round(window_grace(interval), 3),
            "kept": None if worst_sensor[0] is None else kept_pace(worst_sensor[0], interval),
            "sensor_behind_max_s": worst_sensor[0], "sensor": worst_sensor[1], "sensor_window": worst_sensor[2],
            "window_late_median_s": late[len(late) // 2][0] if late else None,
            "window_late_max_s": worst_window[0], "worker": worst_window[1], "worker_window": worst_window[2]}


def _windows_late(run: RunLogs) -> List[Tuple[float, str, int]]:
    """``(seconds, worker, window)`` for every window a worker finished, latest last:
    how long after the window's end its training finished."""
    if run.start_at is None:
        return []
    interval = run.spec.windows.interval
    return sorted((at - (run.start_at + (window + 1) * interval), worker.id, window)
                  for worker in run.spec.workers for window, at in window_finish_times(run, worker.id).items())


def completeness_section(run: RunLogs) -> Dict[str, Any]:
    """What a run cut short is missing: unreadable lines, absent logs, unfinished processes."""
    missing = list(run.problems)
    for ident in run.processes:
        end, lives = ending(run, ident), run.lives(ident)
        if end in (STOP, ERROR, "cut short"):
            detail = {STOP: "stopped by {signal}", ERROR: "failed: {error}"}.get(end, "its log ends without DONE")
            missing.append(f"{ident}: {detail.format(**{'signal': '?', 'error': '?', **lives[-1][-1].payload})}")
        missing += [f"{ident}: an earlier process ended without DONE, then it restarted"
                    for life in lives[:-1] if life[-1].type != DONE]
    limit = run.spec.windows.limit
    for worker in run.spec.workers:
        done = len(window_finish_times(run, worker.id))
        if run.logs.get(worker.id) and done < limit:
            missing.append(f"{worker.id}: {done} of {limit} windows")
    return {"complete": not missing, "missing": missing}


def centralized_section(run: RunLogs) -> Optional[Dict[str, int]]:
    """A centralized run's samples: sent by the sensors in the run's windows (``expected``),
    trained on by the cloud, of those late for their window, and never arrived; None otherwise."""
    if not run.spec.centralized:
        return None
    stats = [e.payload for e in run.events(CLOUD_ID, STATISTIC)]
    sent, trained = (int(sum(s.get(key, 0) for s in stats)) for key in ("expected", "samples"))
    return {"sent": sent, "trained": trained, "late": int(sum(s.get("late", 0) for s in stats)),
            "lost": sent - trained}


def summary_section(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """The answer in a few numbers: what compare tables and the report's answer block show."""
    run, nodes, links = metrics["run"], metrics["nodes"], metrics["links"]
    root_lag = metrics["lag"]["nodes"].get(run["root"], {})
    # the nodes that learned: the tree's, or a centralized run's cloud (its tree hosts sit idle)
    learners = [CLOUD_ID] if metrics["centralized"] else [run["root"], *run["parameter_servers"], *run["workers"]]
    return {"metric": run["metric"], "final_root": nodes.get(run["root"], {}).get("final"),   # none if centralized
            "final_cloud": nodes[CLOUD_ID]["final"] if CLOUD_ID in nodes else None,
            "root_lag_final": root_lag.get("final"), "root_lag_mean": root_lag.get("mean"),
            "latency_s": metrics["latency"]["seconds"],
            "latency_complete": None if metrics["centralized"] else metrics["latency"]["complete"],   # no tree
            "convergence_s": metrics["convergence"]["time_s"],
            "total_bytes": links["total_bytes"], "tree_bytes": links["tree_bytes"],
            "top_level_bytes": links["top_level_bytes"], "cloud_link_bytes": links["cloud_link_bytes"],
            "bytes_source": links["source"], "cloud_mode": run["cloud_mode"],
            "cpu_seconds_nodes": sum(nodes.get(ident, {}).get("cpu_seconds") or 0.0 for ident in learners),
            "staleness_mean": metrics["staleness"]["all"]["mean"],
            "staleness_max": metrics["staleness"]["all"]["max"],
            **{key: metrics["savings"][key] for key in SAVINGS_SUMMARY},
            "push_ratio": metrics["compression"]["push_ratio"], "codec_cpu_s": metrics["compression"]["codec_cpu_s"],
            "run_time_s": run["run_time_s"], "complete": metrics["completeness"]["complete"],
            "kept_pace": metrics["pace"]["kept"], "emulated": run["emulated"]}


# ---------------------------------------------------------------- entry points

def compute_metrics(run_dir: Path) -> Dict[str, Any]:
    """Every metric of the run in ``run_dir`` (see ``docs/metrics.md``), JSON-ready."""
    return metrics_of(RunLogs.read(Path(run_dir)))


def metrics_of(run: RunLogs) -> Dict[str, Any]:
    """Every metric of a run already read."""
    metric = metric_name(run)
    tracked = [n.id for n in run.spec.nodes] + ([CLOUD_ID] if run.spec.cloud is not None else [])
    curves = {ident: score_curve(run, ident, metric) for ident in tracked} if metric else {}
    metrics: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run": run_section(run, metric),
        "completeness": completeness_section(run), "pace": pace_section(run), "nodes": nodes_section(run, curves),
        "accuracy": {"metric": metric, "nodes": curves}, "lag": lag_section(curves, metric),
        "latency": latency_section(run), "convergence": convergence_section(run, curves, metric),
        "own_vs_other": own_vs_other_section(run, curves), "links": links_section(run),
        "staleness": staleness_section(run), "savings": savings_section(run)}
    metrics["network_events"] = network_events_section(run, curves.get(run.spec.root.id, {}), metric,
                                                       window_latencies(run, metrics["latency"]))
    metrics["compression"] = compression_section(run, metrics["links"])
    metrics["centralized"] = centralized_section(run)
    metrics["summary"] = summary_section(metrics)
    return metrics


def write_metrics(run_dir: Path, metrics: Optional[Mapping[str, Any]] = None) -> Path:
    """Write ``metrics`` (computed here if not given) to ``run_dir/metrics.json``."""
    path = Path(run_dir) / METRICS_NAME
    text = json.dumps(metrics or compute_metrics(run_dir), indent=1, allow_nan=False, default=_jsonable)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(text + "\n")
    temporary.replace(path)
    return path


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-ready")
