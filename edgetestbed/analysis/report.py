"""The run report: ``report.md`` and a self-contained ``report.html`` in the run directory.

:func:`write_report` recomputes ``metrics.json`` (:mod:`edgetestbed.analysis.metrics`), draws
``plots/*.png`` (:mod:`edgetestbed.analysis.plots`) and writes the report twice from one
document: Markdown linking the PNGs, and HTML with the PNGs embedded as data URIs, so it
opens offline, sent by mail or copied alone. It reads only the run directory: no root.

The report opens with the answer (final root accuracy, lag, latency, convergence, bytes),
then what was run (spec, backends), the topology with bytes and parameters per link, the
learning curves, the lag, the latency per worker, own vs other digits, the cost per link,
CPU and memory per process, and the fidelity check when ``linkcheck.json`` is present.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from edgetestbed.analysis import plots
from edgetestbed.analysis.linkbytes import link_params
from edgetestbed.analysis.metrics import metrics_of, write_metrics
from edgetestbed.analysis.plots import human_bytes, link_parameters
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.data.schedule import pace_warning
from edgetestbed.params.units import format_size
from edgetestbed.topo.loopback import NOT_EMULATED

PLOTS_DIR = "plots"
LINKCHECK_NAME = "linkcheck.json"
HTML_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:left}th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0 1.5em}
.answer{background:#f4f8fb;border-left:4px solid #3182bd;padding:.5em 1em}code{background:#f3f3f3;padding:0 .2em}"""


# ---------------------------------------------------------------- a tiny document model

@dataclass(frozen=True)
class Block:
    """One piece of the report: ``heading`` (text, level), ``text``, ``items`` (a list),
    ``table`` (header row, rows) or ``image`` (path relative to the run directory, caption)."""

    kind: str
    content: Any
    extra: Any = None


def heading(text: str, level: int = 2) -> Block:
    return Block("heading", text, level)


def text(content: str) -> Block:
    return Block("text", content)


def items(lines: Sequence[str], css_class: Optional[str] = None) -> Block:
    return Block("items", list(lines), css_class)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Block:
    return Block("table", [list(header), *[["–" if cell is None else str(cell) for cell in row] for row in rows]])


def image(path: Optional[Path], run_dir: Path, caption: str) -> List[Block]:
    return [] if path is None else [Block("image", path.relative_to(run_dir).as_posix(), caption)]


def to_markdown(blocks: Sequence[Block]) -> str:
    """The document as Markdown, images linked."""
    out: List[str] = []
    for block in blocks:
        if block.kind == "heading":
            out.append(f"{'#' * block.extra} {block.content}")
        elif block.kind == "text":
            out.append(block.content)
        elif block.kind == "items":
            out.append("\n".join(f"- {line}" for line in block.content))
        elif block.kind == "table":
            header, *rows = block.content
            out.append("\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                                  *["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                                    for row in rows]]))
        else:
            out.append(f"![{block.extra}]({block.content})")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Sequence[Block], run_dir: Path, title: str) -> str:
    """The document as one HTML page, images embedded as data URIs."""
    body = [_html_block(block, run_dir) for block in blocks]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _html_block(block: Block, run_dir: Path) -> str:
    escape = html.escape
    if block.kind == "heading":
        return f"<h{block.extra}>{escape(block.content)}</h{block.extra}>"
    if block.kind == "text":
        return f"<p>{escape(block.content)}</p>"
    if block.kind == "items":
        css = f' class="{block.extra}"' if block.extra else ""
        return f"<ul{css}>" + "".join(f"<li>{escape(line)}</li>" for line in block.content) + "</ul>"
    if block.kind == "table":
        header, *rows = block.content
        return (f"<table><tr>{_cells(header, 'th')}</tr>" + "".join(f"<tr>{_cells(row, 'td')}</tr>" for row in rows)
                + "</table>")
    data = base64.b64encode((run_dir / block.content).read_bytes()).decode("ascii")
    return f'<figure><img alt="{escape(block.extra)}" src="data:image/png;base64,{data}"></figure>'


def _cells(row: Sequence[str], tag: str) -> str:
    return "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in row)


# ---------------------------------------------------------------- formatting

def percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def seconds(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f} s"


def score(value: Optional[float], metric: Optional[str]) -> str:
    """A value of the run's metric: accuracy in percent, RMSE in µg/m³."""
    if value is None or metric != "rmse":
        return percent(value)
    return f"{value:.2f} µg/m³"


def lag_text(value: Optional[float], metric: Optional[str]) -> str:
    """A lag behind the cloud: accuracy points, or µg/m³ of RMSE."""
    if value is None:
        return "–"
    return f"{value:+.2f} µg/m³" if metric == "rmse" else f"{100 * value:+.1f} points"


# ---------------------------------------------------------------- the sections

def answer_lines(metrics: Mapping[str, Any]) -> List[str]:
    """The answer block; also what ``report`` prints on the terminal."""
    summary, latency, metric = metrics["summary"], metrics["latency"], metrics["run"]["metric"]
    where = f" (worker {latency['worker']}, window {latency['window']})" if latency["worker"] else ""
    lines = [] if metrics["run"].get("emulated", True) else [f"NOT EMULATED ({metrics['run']['network']}): "
                                                             f"{NOT_EMULATED}; hosts unlimited"]
    lines += [f"final root {metric or 'score'}: {score(summary['final_root'], metric)}"
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
    if not summary["complete"]:
        lines.append(f"INCOMPLETE RUN: {len(metrics['completeness']['missing'])} gaps, listed below")
    pace = metrics["pace"]
    if pace["kept"] is False:
        lines.append(pace_warning(pace["sensor"], pace["sensor_window"], pace["sensor_behind_max_s"],
                                  metrics["run"]["windows"]["interval_s"]))
    return lines


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


def own_vs_other_section(metrics: Mapping[str, Any], figure: Optional[Path], run_dir: Path) -> List[Block]:
    section = metrics["own_vs_other"]
    rows = [[worker, " ".join(map(str, split["own_labels"])) or "none", percent(split.get("final_own")),
             percent(split.get("final_other")), percent(split.get("root_final_own")),
             percent(split.get("root_final_other"))] for worker, split in section["workers"].items()]
    blocks = [heading("Own digits vs the others"), *image(figure, run_dir, "own vs other digits")]
    if rows:
        blocks.append(table(["worker", "own digits", "worker: own", "worker: other", "root: own", "root: other"], rows))
    return blocks + ([text(section["note"])] if "note" in section else [])


def cost_section(metrics: Mapping[str, Any], figure: Optional[Path], run_dir: Path) -> List[Block]:
    links = metrics["links"]
    classes = [c for c in plots.CLASS_COLORS if any(c in item.get("by_class", {}) for item in links["items"])]
    rows = [[item["link"], item["kind"], link_parameters(item.get("params", {})), human_bytes(item.get("up_bytes")),
             human_bytes(item.get("down_bytes")), human_bytes(item.get("bytes")),
             *[human_bytes(item.get("by_class", {}).get(c)) for c in classes]] for item in links["items"]]
    blocks = [heading("Network cost"), text(f"Source: {links['source']} — {links.get('note', '')}"),
              *image(figure, run_dir, "bytes per link"),
              table(["link (child-parent)", "kind", "parameters", "up", "down", "total", *classes], rows)]
    return blocks + agreement_section(links) + cost_model_section(links)


def agreement_section(links: Mapping[str, Any]) -> List[Block]:
    """Do the wire sources agree? Per link (network-cost analysis only): bytes from the capture
    (all of it: the link's cost; and within the counters' interval: what the counters are checked
    against), interface counters, OpenFlow and the logs, the largest disagreement, overhead, flags."""
    measured = [item for item in links["items"] if "total" in item]
    if not measured:
        return []
    def source(item: Mapping[str, Any], name: str) -> str:
        return human_bytes((item["total"].get(name) or {}).get("bytes"))
    rows = [[item["link"], source(item, "pcap"),
             human_bytes((item["total"].get("pcap") or {}).get("counter_interval_bytes")),
             source(item, "counters"), source(item, "openflow"),
             human_bytes(sum(item[d]["payload"]["message_bytes"] for d in ("up", "down"))),
             percent(item["total"].get("disagreement")), _overhead(item), "; ".join(item.get("flags", [])) or "ok"]
            for item in measured]
    netcost = links.get("netcost", {})
    return [heading("Do the sources agree?", 3),
            text(f"Links above {human_bytes(netcost.get('min_bytes'))} must agree within "
                 f"{percent(netcost.get('tolerance'))}; largest disagreement "
                 f"{percent(netcost.get('max_disagreement'))}; flagged: {', '.join(netcost.get('flagged', [])) or 'none'}. "
                 "The counters are checked against the capture's packets between their first and last "
                 "samples (the captures start before and stop after them), OpenFlow against the whole capture."),
            table(["link", "capture", "capture, counters' interval", "counters", "OpenFlow", "logged messages",
                   "disagreement", "wire / logged", "flags"], rows)]


def _overhead(item: Mapping[str, Any]) -> str:
    logged = sum(item[d]["payload"]["message_bytes"] for d in ("up", "down"))
    return f"{item['wire_bytes'] / logged:.3f}" if logged and item.get("wire_bytes") is not None else "–"


def cost_model_section(links: Mapping[str, Any]) -> List[Block]:
    """Measured bytes of tree links against the simple policy's cost model (network-cost analysis only)."""
    models = [(item["link"], item["cost_model"]) for item in links["items"]
              if item.get("cost_model", {}).get("expected_bytes") is not None]
    if not models:
        return []
    rows = [[link, model["windows"], model["steps"], _transfers(model), model["captured_transfers"],
             human_bytes(model["simulator_estimate"]), human_bytes(model["expected_bytes"]),
             human_bytes(model["measured_bytes"]), f"{model['ratio']:.3f}",
             "ok" if model["within_tolerance"] else "OFF"] for link, model in models]
    return [heading("Measured against the cost model", 3),
            text("simple policy: one model per pull and per push, with TCP/IP overhead: a pull when the child "
                 "joins, a pull before and a push after each of its steps (windows or merges), and the pulls of "
                 "its final synchronisation, as many as the logs recorded (their number depends on timing). "
                 "The simulators' estimate is 2 × windows × model size."),
            table(["link", "windows", "steps", "transfers (joins + 2 × steps + final sync)", "captured",
                   "simulator estimate", "expected", "measured", "ratio", "within 10 %"], rows)]


def _transfers(model: Mapping[str, Any]) -> str:
    return f"{model['transfers']} ({model['joins']} + 2 × {model['steps']} + {model['final_sync_pulls']})"


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
            *learning_section(metrics, figures, run_dir), *latency_section(metrics),
            *own_vs_other_section(metrics, figures["own_vs_other"], run_dir),
            *cost_section(metrics, figures["link_bytes"], run_dir),
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
