"""The report's figures, drawn from ``metrics.json`` alone (matplotlib, Agg: no display needed).

Each ``plot_*`` function takes the metrics (and what else it draws), writes one PNG and
returns its path, or None when the run has nothing to draw for it (no cloud: no lag).
Axes carry units; accuracy is shown in percent, lags in percentage points, RMSE in the
target's unit (µg/m³ for AQI), bytes in decimal units (kB, MB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from edgetestbed.params.units import format_bandwidth, format_duration  # noqa: E402

DPI = 110
CLASS_COLORS = {"model pull": "tab:blue", "update push": "tab:orange", "control": "tab:gray",
                "sensor data": "tab:green", "other": "tab:purple"}
ROLE_STYLE = {"root": {"linewidth": 2.6}, "ps": {"linestyle": "--", "linewidth": 1.6},
              "worker": {"linewidth": 1.0, "alpha": 0.85}, "cloud": {"linestyle": ":", "linewidth": 2.2}}
WORKER_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def human_bytes(size: Optional[float]) -> str:
    """Bytes in decimal units: 1234567 -> ``1.23 MB``; None -> ``–``."""
    if size is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def link_parameters(params: Mapping[str, Any]) -> str:
    """A link's spec in the spec's own units: ``10Mbit 5ms 1% loss``; ``unshaped`` if nothing."""
    parts = [format_bandwidth(params["bw_mbit"])] if params.get("bw_mbit") else []
    parts += [format_duration(params[key], unit="ms") + suffix for key, suffix in
              (("delay_ms", ""), ("jitter_ms", " jitter")) if params.get(key)]
    parts += [f"{params['loss_pct']:g}% loss"] if params.get("loss_pct") else []
    return " ".join(parts) or "unshaped"


def score_axis(metric: Optional[str]) -> tuple:
    """``(label, scale)`` of the run's metric: accuracy in percent, RMSE as it is."""
    return ("accuracy (%)", 100.0) if metric != "rmse" else ("RMSE (µg/m³)", 1.0)


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def _tree_order(metrics: Mapping[str, Any]) -> List[str]:
    run = metrics["run"]
    return [run["root"], *run["parameter_servers"], *run["workers"]]


def node_styles(metrics: Mapping[str, Any]) -> Dict[str, dict]:
    """Line style per tree node and the cloud: the root blue and thick, parameter servers
    dashed in oranges, workers thin in distinct colours, the cloud black and dotted."""
    run = metrics["run"]
    oranges = plt.get_cmap("Oranges")(np.linspace(0.55, 0.9, max(len(run["parameter_servers"]), 1)))
    colors = {run["root"]: "tab:blue", "cloud": "black",
              **dict(zip(run["parameter_servers"], oranges)),
              **{w: WORKER_COLORS[i % len(WORKER_COLORS)] for i, w in enumerate(run["workers"])}}
    return {ident: {"color": color, **ROLE_STYLE[metrics["nodes"][ident]["role"]]}
            for ident, color in colors.items() if ident in metrics["nodes"]}


def _legend_outside(axes: plt.Axes) -> None:
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def mark_events(axes: plt.Axes, metrics: Mapping[str, Any]) -> int:
    """A dotted line at each applied network event (``metrics.network_events``), numbered as in
    the report's table; how many were drawn."""
    events = [e for e in (metrics.get("network_events") or {}).get("events", []) if e.get("applied") is not None]
    for event in events:
        axes.axvline(event["applied"], color="dimgray", linestyle=":", linewidth=1)
        axes.annotate(f"#{event['index']}", (event["applied"], 1.0), xycoords=("data", "axes fraction"),
                      fontsize=7, color="dimgray", ha="left", va="top")
    return len(events)


# ---------------------------------------------------------------- learning

def plot_accuracy(metrics: Mapping[str, Any], path: Path) -> Optional[Path]:
    """Every tree node's accuracy (or RMSE) over time, the cloud as reference."""
    curves = metrics["accuracy"]["nodes"]
    if not any(curve["t"] for curve in curves.values()):
        return None
    label, scale = score_axis(metrics["run"]["metric"])
    figure, axes = plt.subplots(figsize=(8.5, 4.5))
    styles = node_styles(metrics)
    for ident in [*_tree_order(metrics), "cloud"]:
        curve = curves.get(ident)
        if curve and curve["t"]:
            axes.step(curve["t"], np.asarray(curve["value"]) * scale, where="post",
                      label=f"{ident} ({metrics['nodes'][ident]['role']})", **styles[ident])
    axes.set(xlabel="time since window 0 began (s)", ylabel=label, title="Model quality over time")
    mark_events(axes, metrics)
    axes.grid(alpha=0.3)
    _legend_outside(axes)
    return _save(figure, path)


def plot_lag(metrics: Mapping[str, Any], path: Path) -> Optional[Path]:
    """Each tree node's lag behind the cloud over time."""
    lags = metrics["lag"]["nodes"]
    if not any(lag["t"] for lag in lags.values()):
        return None
    rmse = metrics["run"]["metric"] == "rmse"
    scale = 1.0 if rmse else 100.0
    figure, axes = plt.subplots(figsize=(8.5, 4.5))
    styles = node_styles(metrics)
    for ident in _tree_order(metrics):
        lag = lags.get(ident)
        if lag and lag["t"]:
            axes.plot(lag["t"], np.asarray(lag["value"]) * scale, marker=".",
                      label=f"{ident} ({metrics['nodes'][ident]['role']})", **styles[ident])
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set(xlabel="time since window 0 began (s)",
             ylabel="RMSE above the cloud's (µg/m³)" if rmse else "cloud − node accuracy (percentage points)",
             title="Lag behind the centralized cloud model (above 0: behind)")
    mark_events(axes, metrics)
    axes.grid(alpha=0.3)
    _legend_outside(axes)
    return _save(figure, path)


def plot_own_vs_other(metrics: Mapping[str, Any], path: Path) -> Optional[Path]:
    """Per worker: final accuracy on its own digits and on the others, and the root's on the same split."""
    workers = {w: split for w, split in metrics["own_vs_other"]["workers"].items() if split.get("own_labels")}
    if not workers:
        return None
    bars = (("final_own", "worker, own digits", "tab:green", None), ("final_other", "worker, other digits",
                                                                       "tab:red", None),
            ("root_final_own", "root, same own digits", "tab:green", "//"),
            ("root_final_other", "root, same other digits", "tab:red", "//"))
    x, width = np.arange(len(workers)), 0.2
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(workers) + 3), 4.2))
    for offset, (key, label, color, hatch) in enumerate(bars):
        values = [100 * (split.get(key) or 0.0) for split in workers.values()]
        axes.bar(x + (offset - 1.5) * width, values, width, label=label, color=color, hatch=hatch,
                 alpha=0.45 if hatch else 0.85, edgecolor="black", linewidth=0.5)
    axes.set_xticks(x, [f"{w}\nown: {', '.join(map(str, s['own_labels']))}" for w, s in workers.items()])
    axes.set(ylabel="mean per-digit accuracy (%)", ylim=(0, 105),
             title="Workers on their own digits vs the others (final models)")
    axes.grid(axis="y", alpha=0.3)
    _legend_outside(axes)
    return _save(figure, path)


# ---------------------------------------------------------------- cost

def plot_link_bytes(metrics: Mapping[str, Any], path: Path) -> Optional[Path]:
    """Bytes per link, stacked by message class (when the source tells classes)."""
    items = [item for item in metrics["links"]["items"] if item.get("bytes")]
    if not items:
        return None
    classes = [c for c in CLASS_COLORS if any(item.get("by_class", {}).get(c) for item in items)]
    figure, axes = plt.subplots(figsize=(8.5, 0.45 * len(items) + 1.6))
    names = [f"{item['ends'][0]} – {item['ends'][1]}" for item in items]
    left = np.zeros(len(items))
    for message_class in classes or ["bytes"]:
        values = np.array([item.get("by_class", {}).get(message_class, 0) if classes else item["bytes"]
                           for item in items]) / 1e6
        axes.barh(names, values, left=left, color=CLASS_COLORS.get(message_class, "tab:blue"), label=message_class)
        left += values
    for y, (item, total) in enumerate(zip(items, left)):
        axes.text(total, y, f" {human_bytes(item['bytes'])}", va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, left.max() * 1.18)
    axes.set(xlabel="MB, both directions", title=f"Bytes per link ({metrics['links']['source']})")
    axes.grid(axis="x", alpha=0.3)
    _legend_outside(axes)
    return _save(figure, path)


def plot_resources(metrics: Mapping[str, Any], path: Path) -> Optional[Path]:
    """CPU seconds and peak memory of every process."""
    nodes = {ident: node for ident, node in metrics["nodes"].items() if node.get("cpu_seconds") is not None}
    if not nodes:
        return None
    names = list(nodes)
    colors = [{"root": "tab:blue", "ps": "tab:orange", "worker": "tab:green", "sensor": "tab:olive",
               "cloud": "black"}.get(node["role"], "tab:gray") for node in nodes.values()]
    figure, (cpu, memory) = plt.subplots(1, 2, figsize=(max(8.0, 0.55 * len(names) + 4), 4.2))
    cpu.bar(names, [node["cpu_seconds"] for node in nodes.values()], color=colors)
    memory.bar(names, [(node["memory_peak_bytes"] or 0) / 2**20 for node in nodes.values()], color=colors)
    source = ", ".join(sorted({node["resource_source"] for node in nodes.values()}))
    cpu.set(ylabel="CPU time (s)", title=f"CPU per process ({source})")
    memory.set(ylabel="peak memory (MiB)", title=f"Peak memory per process ({source})")
    for axes in (cpu, memory):
        axes.tick_params(axis="x", labelrotation=60, labelsize=8)
        axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)


# ---------------------------------------------------------------- the topology

def tree_positions(metrics: Mapping[str, Any]) -> Dict[str, tuple]:
    """``(x, y)`` of every process: leaves spread evenly, a parent above the middle of its
    children, levels downwards; sensors a row below their worker; the cloud beside the root."""
    nodes = metrics["nodes"]
    children: Dict[str, List[str]] = {}
    for ident, node in nodes.items():
        if node["role"] != "cloud" and node["parent"] is not None:
            children.setdefault(node["parent"], []).append(ident)
    positions: Dict[str, tuple] = {}
    depth = max((node["level"] or 0) for node in nodes.values()) + 1
    next_leaf = [0.0]

    def place(ident: str, y: float) -> float:
        kids = children.get(ident, [])
        xs = [place(kid, y - 1) for kid in kids]
        x = float(np.mean(xs)) if xs else next_leaf[0]
        if not xs:
            next_leaf[0] += 1.0
        positions[ident] = (x, -float(depth) if nodes[ident]["role"] == "sensor" else y)
        return x

    root = metrics["run"]["root"]
    place(root, 0.0)
    if "cloud" in nodes:
        positions["cloud"] = (positions[root][0] + max(1.5, next_leaf[0] / 4), 0.0)
    return positions


def plot_topology(metrics: Mapping[str, Any], path: Path, fidelity: Optional[Mapping[str, bool]] = None) -> Path:
    """The tree with every link labelled: bytes (both directions) and the spec's parameters;
    with ``fidelity`` (link label -> linkcheck verdict) a ✓ or ✗ too."""
    positions = tree_positions(metrics)
    leaves = sum(1 for node in metrics["nodes"].values() if node["role"] == "sensor") or 1
    depth = max(-y for _, y in positions.values()) + 1
    figure, axes = plt.subplots(figsize=(max(7.0, 1.5 * leaves), 1.9 * depth + 1))
    for item in metrics["links"]["items"]:
        _draw_link(axes, positions, item, (fidelity or {}).get(item["link"]))
    for ident, (x, y) in positions.items():
        _draw_node(axes, ident, metrics["nodes"][ident], x, y)
    axes.set_axis_off()
    axes.margins(0.08, 0.15)
    axes.set_title(f"Topology: bytes per link ({metrics['links']['source']}) and link parameters", fontsize=10)
    return _save(figure, path)


def _draw_link(axes: plt.Axes, positions: Mapping[str, tuple], item: Mapping[str, Any],
               verdict: Optional[bool]) -> None:
    (x0, y0), (x1, y1) = positions[item["ends"][0]], positions[item["ends"][1]]
    sensor = item["kind"] == "sensor"
    axes.plot([x0, x1], [y0, y1], color="gray" if sensor else "black", linewidth=0.8 if sensor else 1.4, zorder=1)
    mark = "" if verdict is None else (" ✓" if verdict else " ✗ linkcheck")
    text = f"{human_bytes(item.get('bytes'))}{mark}\n{link_parameters(item['params'])}"
    fraction = 0.35 if sensor else 0.5
    axes.text(x0 + (x1 - x0) * fraction, y0 + (y1 - y0) * fraction, text, fontsize=6.5 if sensor else 7.5,
              ha="center", va="center", zorder=3, color="darkred" if verdict is False else "black",
              bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


def _draw_node(axes: plt.Axes, ident: str, node: Mapping[str, Any], x: float, y: float) -> None:
    colors = {"root": "#9ecae1", "ps": "#fdd0a2", "worker": "#c7e9c0", "sensor": "#f0f0f0", "cloud": "#d9d9d9"}
    sensor = node["role"] == "sensor"
    axes.text(x, y, ident.replace("sensor", "s") if sensor else ident, ha="center", va="center",
              fontsize=7 if sensor else 9, zorder=4,
              bbox={"boxstyle": "circle,pad=0.3" if sensor else "round,pad=0.4",
                    "facecolor": colors.get(node["role"], "white"), "edgecolor": "black", "linewidth": 0.8})


# ---------------------------------------------------------------- across runs

def plot_cost_vs_accuracy(rows: Sequence[Mapping[str, Any]], path: Path) -> Optional[Path]:
    """One point per run: total bytes against the final accuracy of the model it serves (the
    root's; a centralized run's cloud's), and top-level bytes."""
    rows = [row for row in rows if row.get("final_model") is not None and row.get("total_bytes") is not None]
    if not rows:
        return None
    label, scale = score_axis(rows[0].get("metric"))
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for row in rows:   # a run's two points, joined
        axes.plot([row["top_level_bytes"] / 1e6, row["total_bytes"] / 1e6], [row["final_model"] * scale] * 2,
                  color="lightgray", linewidth=1, zorder=1)
        axes.annotate(row["run"], (row["total_bytes"] / 1e6, row["final_model"] * scale), fontsize=7,
                      xytext=(4, 4), textcoords="offset points")
    for key, marker, name in (("total_bytes", "o", "all links"), ("top_level_bytes", "^", "links into the root")):
        axes.scatter([row[key] / 1e6 for row in rows], [row["final_model"] * scale for row in rows],
                     marker=marker, s=50, label=name, zorder=2)
    axes.set(xlabel="bytes per run (MB)", ylabel=f"final {label} (root; cloud if centralized)", title="Cost vs accuracy across runs")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)
