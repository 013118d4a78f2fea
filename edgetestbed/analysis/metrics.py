"""The metrics of one run, from its run directory alone: what the hierarchy bought and what it cost.

:func:`compute_metrics` reads the run directory (:mod:`edgetestbed.analysis.runlogs`) and
returns one JSON-ready dict; :func:`write_metrics` stores it as ``metrics.json``. Every
field is documented in ``docs/metrics.md``. The definitions (docs/architecture.md, "Measurement and
metrics") are the pure functions at the top of this module, so tests can feed them
hand-made numbers:

- :func:`lag_curve`: ``A_cloud(t) − A_node(t)`` at the node's evaluation times, the cloud's
  curve linearly interpolated between its own evaluations (RMSE: ``node − cloud``, so a
  positive lag always means "behind the cloud");
- :func:`propagation_latency`: the seeds' formula, exact through coverage vectors;
- :func:`convergence_time`: the first time a curve is within a tolerance of its last value;
- :func:`own_labels` and :func:`split_per_class`: a worker's own digits vs the others.

Times are seconds since window 0 began. A run cut short (Ctrl-C, a killed process, a
truncated log) still gets its metrics: what could not be computed is ``null`` and the
reason is listed in ``completeness.missing`` or next to the figure.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edgetestbed.analysis.runlogs import Event, RunLogs
from edgetestbed.nodes.eventlog import BEHIND, CONNECTION, DONE, ERROR, MALFORMED, MODEL_RECEIVED, RETRY, \
    STATISTIC, STOP, UNREACHABLE
from edgetestbed.nodes.model import covers
from edgetestbed.nodes.protocol import ACK, MODEL, PULL, PUSH
from edgetestbed.sensors.sensor import kept_pace, stream_definition, window_grace
from edgetestbed.sensors.partitions import N_DIGITS
from edgetestbed.spec.fields import thaw
from edgetestbed.spec.model import LinkSpec
from edgetestbed.topo.loopback import NOT_EMULATED
from edgetestbed.topo.plan import CLOUD_ID, LinkPlan, plan_network

SCHEMA_VERSION = 3
METRICS_NAME = "metrics.json"
ACCURACY_TOLERANCE = 0.01        # convergence: within 1 point (0.01) of the final accuracy
RMSE_TOLERANCE = 0.01            # ... or within 1 % of the final RMSE
LOG_SOURCE = "node logs"
LOG_SOURCE_NOTE = ("bytes of the ZeroMQ messages as the processes logged them (payload and ZMTP framing), "
                   "without TCP/IP headers, retransmissions or handshakes")
MESSAGE_CLASSES = {PULL: "model pull", MODEL: "model pull", PUSH: "update push"}
CONTROL, SENSOR_DATA = "control", "sensor data"

Curve = Dict[str, list]


# ---------------------------------------------------------------- the definitions (pure)

def lag_curve(t: Sequence[float], values: Sequence[float], cloud_t: Sequence[float],
              cloud_values: Sequence[float], higher_is_better: bool = True) -> Tuple[List[float], List[float]]:
    """The lag behind the cloud at each of a node's times ``t``: ``cloud − node`` (``node −
    cloud`` when lower is better). The cloud's curve is interpolated linearly between its
    evaluations and held at its last value after them (its model no longer changes); node
    times before the cloud's first evaluation are left out (nothing to compare with)."""
    if not len(cloud_t):
        return [], []
    t, values = np.asarray(t, dtype=float), np.asarray(values, dtype=float)
    kept = t >= cloud_t[0]
    cloud = np.interp(t[kept], cloud_t, cloud_values)
    lag = cloud - values[kept] if higher_is_better else values[kept] - cloud
    return t[kept].tolist(), lag.tolist()


def propagation_latency(finished: Mapping[str, Mapping[int, float]],
                        received: Mapping[str, Sequence[Tuple[float, Mapping[str, int]]]],
                        windows: int) -> Dict[str, Any]:
    """The seeds' propagation latency. ``finished[i][j]`` is ``t_j^i``, when worker ``i``
    finished window ``j``; ``received[i]`` lists ``(time, coverage)`` of every model worker
    ``i`` received. ``tr_j^i`` is the first time ``i`` received a model whose coverage holds
    window ``j`` of every worker; ``latency_j^i = tr_j^i − max_k t_j^k``, ``latency^i =
    max_j latency_j^i`` and the configuration's latency is ``max_i latency^i``. A window
    some worker never finished, or never got back, is ``None`` and listed in ``missing``."""
    workers = list(finished)
    per_window: Dict[str, List[Optional[float]]] = {w: [None] * windows for w in workers}
    unfinished: Dict[int, List[str]] = {}
    for j in range(windows):
        unfinished[j] = [w for w in workers if j not in finished[w]]
        if unfinished[j]:
            continue
        everyone_done = max(finished[w][j] for w in workers)
        for i in workers:
            back = _first_covering(received.get(i, ()), workers, j)
            per_window[i][j] = None if back is None else back - everyone_done
    by_worker = {w: _worst_window(per_window[w]) for w in workers}
    worst = max((w for w in workers if by_worker[w]["seconds"] is not None),
                key=lambda w: by_worker[w]["seconds"], default=None)
    missing = [f"window {j}: never finished by {', '.join(late)}" for j, late in unfinished.items() if late]
    missing += _never_received(per_window, unfinished)
    return {"seconds": by_worker[worst]["seconds"] if worst else None, "worker": worst,
            "window": by_worker[worst]["window"] if worst else None, "complete": not missing,
            "missing": missing, "workers": by_worker}


def _first_covering(received: Sequence[Tuple[float, Mapping[str, int]]], workers: Sequence[str],
                    window: int) -> Optional[float]:
    return min((t for t, coverage in received if covers(coverage, workers, window)), default=None)


def _worst_window(latencies: Sequence[Optional[float]]) -> Dict[str, Any]:
    known = [(value, j) for j, value in enumerate(latencies) if value is not None]
    seconds, window = max(known) if known else (None, None)
    return {"seconds": seconds, "window": window, "per_window": list(latencies)}


def _never_received(per_window: Mapping[str, Sequence[Optional[float]]], unfinished: Mapping[int, list]) -> List[str]:
    lines = []
    for worker, latencies in per_window.items():
        lost = [j for j, value in enumerate(latencies) if value is None and not unfinished[j]]
        if lost:
            lines.append(f"{worker}: never received a model holding every worker's window "
                         f"{', '.join(map(str, lost))}")
    return lines


def convergence_time(t: Sequence[float], values: Sequence[float], tolerance: float) -> Optional[float]:
    """The first time ``values`` is within ``tolerance`` of its last value; None if empty."""
    if not len(values):
        return None
    final = values[-1]
    return next(float(time) for time, value in zip(t, values) if abs(value - final) <= tolerance)


def own_labels(distributions: Sequence[Optional[np.ndarray]]) -> List[int]:
    """A worker's own digits: those its sensors, together, send more often than 1 in 10.
    ``distributions`` are its sensors' digit probabilities (None: the natural frequencies,
    taken as uniform); the sensors send at one rate, so together they are the mean."""
    uniform = np.full(N_DIGITS, 1 / N_DIGITS)
    mean = np.mean([uniform if d is None else d for d in distributions], axis=0)
    return [int(digit) for digit in np.flatnonzero(mean > 1 / N_DIGITS + 1e-9)]


def split_per_class(per_class: Sequence[Optional[float]], own: Sequence[int]) -> Tuple[Optional[float], Optional[float]]:
    """Mean per-class accuracy over ``own`` classes and over the others (classes absent
    from the test set, ``None``, left out); None for an empty side."""
    def mean(values: List[Optional[float]]) -> Optional[float]:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known else None
    return (mean([per_class[c] for c in own]),
            mean([v for c, v in enumerate(per_class) if c not in own]))


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
    """How the process's (last) life ended: DONE, STOP, ERROR, ``cut short`` or ``no log``."""
    lives = run.lives(ident)
    if not lives:
        return "no log"
    last = lives[-1][-1].type
    return last if last in (DONE, STOP, ERROR) else "cut short"


# ---------------------------------------------------------------- bytes per link, from the logs

def logged_links(run: RunLogs) -> Dict[str, Any]:
    """Bytes on every shaped link as the processes logged them, per direction and message
    class. ``up`` is child → parent (sensor → worker, cloud → root). Each direction is
    counted where it was sent (where it was received if the sender left no log)."""
    items = [_logged_link(run, link) for link in plan_network(run.spec).shaped_links]
    note = (LOG_SOURCE_NOTE if run.spec.network.emulated
            else f"{NOT_EMULATED} (the nodes' own logs, not captures); {LOG_SOURCE_NOTE}")
    return {"source": LOG_SOURCE, "note": note, "items": items, **link_totals(run, items)}


def _logged_link(run: RunLogs, link: LinkPlan) -> Dict[str, Any]:
    child, parent = link.ends
    if link.kind == "sensor":
        sent = [(SENSOR_DATA, e.payload.get("bytes", 0)) for e in run.events(child, STATISTIC)]
        return _link_item(link, sent, [])
    if link.kind == "wan":
        return _link_item(link, [], [])   # the cloud regenerates its data: no traffic
    requests = {e.payload.get("seq"): e.payload.get("kind") for ident, peer in ((child, parent), (parent, child))
                for e in _messages(run, ident, peer) if e.payload.get("kind") in (PULL, PUSH, DONE)}
    return _link_item(link, _direction(run, child, parent, requests), _direction(run, parent, child, requests))


def _messages(run: RunLogs, ident: str, peer: str, direction: Optional[str] = None) -> List[Event]:
    return [e for e in run.events(ident, CONNECTION)
            if e.payload.get("peer") == peer and direction in (None, e.payload.get("direction"))]


def _direction(run: RunLogs, sender: str, receiver: str, requests: Mapping[Any, str]) -> List[Tuple[str, int]]:
    """``(message class, bytes)`` of each message ``sender`` sent ``receiver``."""
    events = (_messages(run, sender, receiver, "sent") if run.logs.get(sender)
              else _messages(run, receiver, sender, "received"))
    return [(_message_class(e.payload.get("kind"), requests.get(e.payload.get("seq"))), e.payload.get("bytes", 0))
            for e in events]


def _message_class(kind: str, request: Optional[str]) -> str:
    """A pull and its MODEL are ``model pull``, a push and its ACK ``update push``, the rest ``control``."""
    return MESSAGE_CLASSES.get(request if kind == ACK else kind, CONTROL)


def _link_item(link: LinkPlan, up: Sequence[Tuple[str, int]], down: Sequence[Tuple[str, int]]) -> Dict[str, Any]:
    by_class: Dict[str, int] = {}
    for message_class, size in [*up, *down]:
        by_class[message_class] = by_class.get(message_class, 0) + size
    up_bytes, down_bytes = sum(size for _, size in up), sum(size for _, size in down)
    return {"link": link.label, "kind": link.kind, "ends": list(link.ends), "params": link_params(link.spec),
            "up_bytes": up_bytes, "down_bytes": down_bytes, "bytes": up_bytes + down_bytes,
            "messages": len(up) + len(down), "by_class": by_class}


def link_params(link: Optional[LinkSpec]) -> Dict[str, Any]:
    """A link's spec as plain numbers (``bw_mbit`` None: unlimited)."""
    link = link or LinkSpec()
    return {"bw_mbit": link.bw_mbit, "delay_ms": link.delay_ms, "jitter_ms": link.jitter_ms,
            "loss_pct": link.loss_pct, "queue": link.queue}


def link_totals(run: RunLogs, items: Sequence[Mapping[str, Any]]) -> Dict[str, int]:
    """Bytes on all links, on tree links, on sensor links, and on the tree links into the root."""
    root = run.spec.root.id
    def total(keep) -> int:
        return int(sum(item.get("bytes") or 0 for item in items if keep(item)))
    return {"total_bytes": total(lambda item: True), "tree_bytes": total(lambda item: item["kind"] == "tree"),
            "sensor_bytes": total(lambda item: item["kind"] == "sensor"),
            "top_level_bytes": total(lambda item: item["kind"] == "tree" and item["ends"][1] == root)}


def links_section(run: RunLogs) -> Dict[str, Any]:
    """Bytes per link: measured on the wire by :mod:`edgetestbed.analysis.netcost` when it
    exists and the run captured (``net/``), the rest of its result under ``netcost``; else
    (or if its result has no ``items``) from the node logs, labelled so."""
    logged = logged_links(run)
    measured = _network_cost(run.run_dir)
    if measured is None:
        return logged
    rest = {key: value for key, value in measured.items() if key != "items"}
    if not isinstance(measured.get("items"), list):
        return {**logged, "netcost": rest,
                "note": f"{LOG_SOURCE_NOTE}; network cost analysis: {measured.get('note', 'no per-link items')}"}
    return {"source": measured.get("source", "netcost"), "note": measured.get("note", ""),
            "items": measured["items"], **link_totals(run, measured["items"]), "netcost": rest}


def _network_cost(run_dir: Path) -> Optional[dict]:
    """``netcost.network_cost(run_dir)`` if that module exists and the run has ``net/``."""
    if not (run_dir / "net").is_dir():
        return None
    try:
        netcost = importlib.import_module("edgetestbed.analysis.netcost")
    except ModuleNotFoundError as error:
        if error.name != "edgetestbed.analysis.netcost":
            raise
        return None
    return netcost.network_cost(run_dir)


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
            "policies": {n.id: {"type": n.policy.type, **thaw(n.policy.params)} for n in spec.nodes},
            "start_at": run.start_at, "run_time_s": max(ends) - min(starts) if ends else None,
            "network": spec.network.backend, "emulated": spec.network.emulated,
            "backends": run.manifest.get("backends"), "git_revision": run.manifest.get("git_revision")}


def nodes_section(run: RunLogs, curves: Mapping[str, Curve]) -> Dict[str, Dict[str, Any]]:
    """Per process: role, how it ended, run time, windows or merges, samples, CPU, memory."""
    parents = {link.ends[0]: link.ends[1] for link in plan_network(run.spec).shaped_links}
    return {ident: _node_summary(run, ident, parents.get(ident), curves.get(ident)) for ident in run.processes}


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
    if spec.data.dataset != "mnist":
        return {"workers": {}, "note": f"{spec.data.dataset}: no classes to split"}
    definition = stream_definition(spec)
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


def summary_section(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """The answer in a few numbers: what compare tables and the report's answer block show."""
    run, nodes, links = metrics["run"], metrics["nodes"], metrics["links"]
    root_lag = metrics["lag"]["nodes"].get(run["root"], {})
    tree = [run["root"], *run["parameter_servers"], *run["workers"]]
    return {"metric": run["metric"], "final_root": nodes[run["root"]]["final"],
            "final_cloud": nodes[CLOUD_ID]["final"] if CLOUD_ID in nodes else None,
            "root_lag_final": root_lag.get("final"), "root_lag_mean": root_lag.get("mean"),
            "latency_s": metrics["latency"]["seconds"], "latency_complete": metrics["latency"]["complete"],
            "convergence_s": metrics["convergence"]["time_s"],
            "total_bytes": links["total_bytes"], "tree_bytes": links["tree_bytes"],
            "top_level_bytes": links["top_level_bytes"], "bytes_source": links["source"],
            "cpu_seconds_nodes": sum(nodes[ident]["cpu_seconds"] or 0.0 for ident in tree),
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
        "own_vs_other": own_vs_other_section(run, curves), "links": links_section(run)}
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
