"""The run report: ``report.md`` and a self-contained ``report.html`` in the run directory.

:func:`write_report` recomputes ``metrics.json`` (:mod:`edgetestbed.analysis.metrics`), draws
``plots/*.png`` (:mod:`edgetestbed.analysis.plots`) and writes the report twice from one
document: Markdown linking the PNGs, and HTML with the PNGs embedded as data URIs, so it
opens offline, sent by mail or copied alone. It reads only the run directory: no root.

The report opens with the answer (final root accuracy, lag, latency, convergence, bytes),
then what was run (spec, backends), the topology with bytes and parameters per link, the
learning curves, the lag, the latency per worker, the staleness of merged updates per link,
own vs other digits, the cost per link,
what codecs saved and cost (when a run coded), CPU and memory per process, and the fidelity check when ``linkcheck.json`` is present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from edgetestbed.analysis import plots
from edgetestbed.analysis.costreport import compression_section, cost_section, savings_section
from edgetestbed.analysis.document import (Block, heading, image, items, lag_text, percent, score, seconds, table,
                                           text, to_html, to_markdown)
from edgetestbed.analysis.linkbytes import link_params
from edgetestbed.analysis.metrics import metrics_of, write_metrics
from edgetestbed.analysis.netevents import network_events_report
from edgetestbed.analysis.plots import human_bytes, link_parameters
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.data.schedule import pace_warning
from edgetestbed.params.units import format_size
from edgetestbed.topo.loopback import NOT_EMULATED

PLOTS_DIR = "plots"
LINKCHECK_NAME = "linkcheck.json"


# ---------------------------------------------------------------- the sections

def answer_lines(metrics: Mapping[str, Any]) -> List[str]:
    """The answer block; also what ``report`` prints on the terminal."""
    lines = [] if metrics["run"].get("emulated", True) else [f"NOT EMULATED ({metrics['run']['network']}): "
                                                             f"{NOT_EMULATED}; hosts unlimited"]
    lines += _centralized_lines(metrics) if metrics.get("centralized") else _tree_lines(metrics)
    if not metrics["summary"]["complete"]:
        lines.append(f"INCOMPLETE RUN: {len(metrics['completeness']['missing'])} gaps, listed below")
    pace = metrics["pace"]
    if pace["kept"] is False:
        lines.append(pace_warning(pace["sensor"], pace["sensor_window"], pace["sensor_behind_max_s"],
                                  metrics["run"]["windows"]["interval_s"]))
    return lines


def _centralized_lines(metrics: Mapping[str, Any]) -> List[str]:
    summary, samples, metric = metrics["summary"], metrics["centralized"], metrics["run"]["metric"]
    return ["CENTRALIZED RUN: every sensor sent its raw samples to the cloud across the network; the tree's "
            "nodes ran no process",
            f"final cloud {metric or 'score'}: {score(summary['final_cloud'], metric)}, trained on "
            f"{samples['trained']} of the {samples['sent']} samples the sensors sent ({samples['late']} a window "
            f"late, {samples['lost']} never arrived)",
            f"bytes of raw data on the cloud's WAN link: {human_bytes(summary['cloud_link_bytes'])}; on the tree's "
            f"links: {human_bytes(summary['tree_bytes'])}; into the root: {human_bytes(summary['top_level_bytes'])}; "
            f"on all links: {human_bytes(summary['total_bytes'])} (from {summary['bytes_source']})",
            f"CPU of the cloud: {seconds(summary['cpu_seconds_nodes'])}; "
            f"run time {seconds(summary['run_time_s'])}"]


def _tree_lines(metrics: Mapping[str, Any]) -> List[str]:
    summary, latency, metric = metrics["summary"], metrics["latency"], metrics["run"]["metric"]
    where = f" (worker {latency['worker']}, window {latency['window']})" if latency["worker"] else ""
    return [f"final root {metric or 'score'}: {score(summary['final_root'], metric)}"
             f" (cloud baseline: {score(summary['final_cloud'], metric)})",
             f"root's lag behind the cloud: {lag_text(summary['root_lag_final'], metric)} at the end, "
             f"{lag_text(summary['root_lag_mean'], metric)} on average",
             f"propagation latency: {seconds(summary['latency_s'])}{where}"
             + ("" if latency["complete"] else " — incomplete, see below"),
             f"convergence (root within {_tolerance(metrics)} of its final value): {seconds(summary['convergence_s'])}",
             f"bytes on all links: {human_bytes(summary['total_bytes'])}; on the tree: "
             f"{human_bytes(summary['tree_bytes'])}; into the root: {human_bytes(summary['top_level_bytes'])} "
             f"(from {summary['bytes_source']})",
             f"CPU of the tree's nodes: {seconds(summary['cpu_seconds_nodes'])}; run time {seconds(summary['run_time_s'])}"]


def _tolerance(metrics: Mapping[str, Any]) -> str:
    tolerance = metrics["convergence"]["tolerance"]
    if tolerance is None:
        return "–"
    return f"{tolerance:.2f} µg/m³" if metrics["run"]["metric"] == "rmse" else f"{100 * tolerance:g} point"


def spec_section(run: RunLogs, metrics: Mapping[str, Any]) -> List[Block]:
    spec, info = run.spec, metrics["run"]
    backends = info["backends"] or {}
    facts = [f"application: {_described(info['application'])}", f"data: {_described(info['data'])}",
             f"windows: {spec.windows.limit} of {spec.windows.interval:g} s, {spec.windows.epochs} epoch(s) each; "
             f"sensors: {spec.sensors.rate:g} samples/s each, link {link_parameters(link_params(spec.sensors.link))}",
             "backends: " + (", ".join(f"{k} {v}" for k, v in backends.items()) or "unknown (no manifest.json)"),
             f"kernel {run.manifest.get('kernel', '–')}, edgetestbed {run.manifest.get('edgetestbed_version', '–')}, "
             f"git {(info['git_revision'] or '–')[:12]}, seed {spec.seed}"]
    rows = [[n.id, n.role, n.parent or "", f"{n.cpu:g}", format_size(n.memory),
             "" if n.link is None else link_parameters(link_params(n.link)),
             " ".join(map(str, n.sensors)), _described({"type": n.policy.type, **n.policy.params})]
            for n in spec.nodes]
    return [heading("What was run"), items(facts),
            table(["node", "role", "parent", "cpu (cores)", "memory", "link to parent", "sensors", "policy"], rows)]


def _described(fields: Mapping[str, Any]) -> str:
    first, *rest = fields.items()
    return f"{first[1]}" + (f" ({', '.join(f'{k}={v}' for k, v in rest)})" if rest else "")


def learning_section(metrics: Mapping[str, Any], figures: Mapping[str, Optional[Path]], run_dir: Path) -> List[Block]:
    metric, lags = metrics["run"]["metric"], metrics["lag"]["nodes"]
    rows = [[ident, node["role"], score(node["final"], metric), lag_text(lags.get(ident, {}).get("final"), metric),
             node["windows"] if node["windows"] is not None else node["merges"], node["samples"]]
            for ident, node in metrics["nodes"].items() if node["role"] != "sensor"]
    return [heading("Learning"), *image(figures["accuracy"], run_dir, "accuracy over time"),
            table(["node", "role", "final", "final lag", "windows / merges", "samples"], rows),
            *image(figures["lag"], run_dir, "lag behind the cloud"),
            *([] if figures["lag"] else [text(metrics["lag"].get("note", "no lag to show"))])]


def latency_section(metrics: Mapping[str, Any]) -> List[Block]:
    latency = metrics["latency"]
    rows = [[worker, seconds(entry["seconds"]), entry["window"],
             " ".join("–" if v is None else f"{v:.2f}" for v in entry["per_window"])]
            for worker, entry in latency["workers"].items()]
    blocks = [heading("Propagation latency"),
              text("Time from the last worker finishing window j until this worker received a model holding "
                   "window j of every worker (exact, from coverage vectors)."),
              table(["worker", "latency", "worst window", "per window (s)"], rows)]
    return blocks + ([items(latency["missing"])] if latency["missing"] else [])


def staleness_section(metrics: Mapping[str, Any]) -> List[Block]:
    """Per tree link, how stale the child's merged updates were (``metrics.staleness``)."""
    section = metrics.get("staleness") or {"links": []}
    rows = [[item["link"], item["aggregation"], item["count"],
             "–" if item["mean"] is None else f"{item['mean']:.2f}", item["max"],
             " ".join(f"{value}:{count}" for value, count in item["histogram"].items()) or "–"]
            for item in section["links"]]
    return [heading("Staleness"),
            text("Per link, the parent's merges between the model version the child had pulled and the one "
                 "its update was merged into (0: nothing merged in between)."),
            table(["link", "parent's aggregation", "updates merged", "mean", "max", "staleness:updates"], rows)]


def own_vs_other_section(metrics: Mapping[str, Any], figure: Optional[Path], run_dir: Path) -> List[Block]:
    section = metrics["own_vs_other"]
    rows = [[worker, " ".join(map(str, split["own_labels"])) or "none", percent(split.get("final_own")),
             percent(split.get("final_other")), percent(split.get("root_final_own")),
             percent(split.get("root_final_other"))] for worker, split in section["workers"].items()]
    blocks = [heading("Own digits vs the others"), *image(figure, run_dir, "own vs other digits")]
    if rows:
        blocks.append(table(["worker", "own digits", "worker: own", "worker: other", "root: own", "root: other"], rows))
    return blocks + ([text(section["note"])] if "note" in section else [])


def resources_section(metrics: Mapping[str, Any], figure: Optional[Path], run_dir: Path) -> List[Block]:
    rows = [[ident, node["role"], node["end"], node["starts"], seconds(node["run_time_s"]),
             "–" if node["cpu_seconds"] is None else f"{node['cpu_seconds']:.2f}",
             "–" if node["memory_peak_bytes"] is None else f"{node['memory_peak_bytes'] / 2**20:.0f}",
             node["resource_source"], node["retries"], node["unreachable"], node["malformed"]]
            for ident, node in metrics["nodes"].items()]
    return [heading("CPU and memory"), *image(figure, run_dir, "CPU and memory per process"),
            table(["process", "role", "ended", "starts", "run time", "CPU (s)", "peak memory (MiB)", "source",
                   "retries", "unreachable", "malformed"], rows)]


def fidelity_section(linkcheck: Optional[Mapping[str, Any]]) -> List[Block]:
    if linkcheck is None:
        return [heading("Fidelity check"), text(f"No {LINKCHECK_NAME} in this run directory: the links were not "
                                                "measured (python -m edgetestbed linkcheck measures them on "
                                                "an emulated network).")]
    rows = [["-".join(result["link"]), link_parameters(result["configured"]), *measured_cells(result),
             ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in result["checks"].items()),
             "ok" if result["ok"] else "FAIL"] for result in linkcheck.get("links", [])]
    cpu = [[r["host"], f"{r['configured_cores']:g}", f"{r['measured_share']:.3f}", "ok" if r["ok"] else "FAIL"]
           for r in linkcheck.get("cpu", [])]
    blocks = [heading("Fidelity check"), text(f"Every link measured against the spec: "
                                              f"{'all within tolerance' if linkcheck.get('ok') else 'SOME FAILED'}."),
              table(["link", "configured", "RTT (median)", "throughput", "loss", "checks", "verdict"], rows)]
    return blocks + ([table(["host", "cpu (cores)", "measured share", "verdict"], cpu)] if cpu else [])


def measured_cells(result: Mapping[str, Any]) -> List[str]:
    """RTT, throughput and loss of one linkcheck link; for an unmeasured one, why not."""
    measured = result["measured"]
    if measured is None:
        return [f"not measured: {result['error'].splitlines()[0]}", "-", "-"]
    return [f"{measured['rtt_ms_median']:.2f} ms", f"{measured['bw_mbit']:.2f} Mbit/s", f"{measured['loss_pct']:.2f} %"]


def fidelity_verdicts(linkcheck: Optional[Mapping[str, Any]]) -> Dict[str, bool]:
    """Link label (``child-parent``) -> linkcheck verdict."""
    return {"-".join(result["link"]): result["ok"] for result in (linkcheck or {}).get("links", [])}


# ---------------------------------------------------------------- the report

FIGURES: Dict[str, Callable] = {"accuracy": plots.plot_accuracy, "lag": plots.plot_lag,
                                "own_vs_other": plots.plot_own_vs_other, "link_bytes": plots.plot_link_bytes,
                                "resources": plots.plot_resources}


def build_document(run: RunLogs, metrics: Mapping[str, Any]) -> List[Block]:
    """The report's blocks; draws the figures into ``plots/`` on the way."""
    run_dir = run.run_dir
    linkcheck_path = run_dir / LINKCHECK_NAME
    linkcheck = json.loads(linkcheck_path.read_text()) if linkcheck_path.is_file() else None
    figures = {name: draw(metrics, run_dir / PLOTS_DIR / f"{name}.png") for name, draw in FIGURES.items()}
    topology = plots.plot_topology(metrics, run_dir / PLOTS_DIR / "topology.png", fidelity_verdicts(linkcheck))
    missing = metrics["completeness"]["missing"]
    return [heading(f"Run report: {metrics['run']['name']}", 1), text(f"Run directory: {run_dir}"),
            heading("Answer"), items(answer_lines(metrics), "answer"),
            *([heading("Missing from this run"), items(missing)] if missing else []),
            *spec_section(run, metrics), heading("Topology"), *image(topology, run_dir, "topology"),
            *learning_section(metrics, figures, run_dir), *latency_section(metrics), *staleness_section(metrics),
            *own_vs_other_section(metrics, figures["own_vs_other"], run_dir),
            *cost_section(metrics, figures["link_bytes"], run_dir), *compression_section(metrics),
            *savings_section(metrics), *network_events_report(metrics),
            *resources_section(metrics, figures["resources"], run_dir), *fidelity_section(linkcheck),
            text("All figures come from metrics.json; its fields are documented in docs/metrics.md. "
                 "Times are seconds since window 0 began.")]


def write_report(run_dir: Path) -> Path:
    """Write ``metrics.json``, ``plots/*.png``, ``report.md`` and ``report.html`` in ``run_dir``;
    the path of ``report.html``. UserError if ``run_dir`` is not a run directory."""
    run_dir = Path(run_dir)
    run = RunLogs.read(run_dir)
    metrics = metrics_of(run)
    write_metrics(run_dir, metrics)
    blocks = build_document(run, metrics)
    (run_dir / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    path = run_dir / "report.html"
    path.write_text(to_html(blocks, run_dir, f"edgetestbed run {metrics['run']['name']}"), encoding="utf-8")
    return path


def report_main(run_dir: Path, say: Callable[[str], None] = print) -> int:
    """``python -m edgetestbed report RUN_DIR``: write the report, print the answer and where
    the files are; 0 (a run cut short is reported too, its gaps listed). UserError (exit 2)
    if ``run_dir`` is not a run directory."""
    path = write_report(run_dir)
    metrics = json.loads((path.parent / "metrics.json").read_text())
    say("\n".join([*answer_lines(metrics), f"report: {path} (and report.md, metrics.json, {PLOTS_DIR}/)"]))
    return 0
