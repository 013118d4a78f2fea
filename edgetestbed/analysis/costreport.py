"""The report's sections on what the network carried: bytes per link, whether the wire
sources agree, the measured bytes against the cost model, what codecs saved and cost, and
what the triggers left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional

from edgetestbed.analysis import plots
from edgetestbed.analysis.document import Block, heading, image, percent, seconds, table, text
from edgetestbed.analysis.plots import human_bytes, link_parameters


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


def compression_section(metrics: Mapping[str, Any]) -> List[Block]:
    """What the codecs saved per link and direction, checked on the wire, and what coding cost
    each node (only for a run where something was coded)."""
    section = metrics["compression"]
    coded = [(item, kind) for item in section["links"] for kind in ("push", "pull") if item[kind]["coded_messages"]]
    if not coded:
        return []
    rows = [[item["link"], kind, "+".join(item["codec"]) if kind == "push" else "pulled model", traffic["messages"],
             human_bytes(traffic["raw_bytes"]), human_bytes(traffic["coded_bytes"]), _times(traffic["ratio"]),
             human_bytes(traffic["wire_bytes"]), _times(traffic["wire_per_logged"])]
            for item, kind in coded for traffic in [item[kind]]]
    nodes = [[ident, node.get("codec_encodes"), _milliseconds(node.get("codec_encode_cpu")),
              human_bytes(node.get("codec_encode_peak")), node.get("codec_decodes"),
              _milliseconds(node.get("codec_decode_cpu")), human_bytes(node.get("codec_decode_peak")),
              seconds(node.get("exchange_time")), seconds(node.get("compute_time")),
              "–" if node.get("comm_to_comp") is None else f"{node['comm_to_comp']:.2f}"]
             for ident, node in section["nodes"].items() if node]
    return [heading("Compressed updates"),
            text("Per link and direction: the tensors' bytes uncoded (what the same updates would have cost "
                 "without a codec) and as sent, counted by the sender; the bytes the capture saw for that "
                 "traffic class (pushes up, pulled models down), and that over the logged messages' bytes "
                 "(framing, TCP/IP headers, retransmissions): the node's count checked on the wire."),
            table(["link", "traffic", "codec", "messages", "uncoded", "coded", "coded / uncoded", "on the wire",
                   "wire / logged"], rows),
            text("Per node: the CPU time and peak memory spent encoding and decoding (the calling thread's CPU; "
                 "Python-traced allocations, numpy's included), the time spent waiting on the parent, a "
                 "worker's training time, and their ratio (communication to computation)."),
            table(["node", "encodes", "encode CPU", "encode peak", "decodes", "decode CPU", "decode peak",
                   "exchange time", "training time", "comm / comp"], nodes)]


def _times(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}×"


def _milliseconds(value: Optional[float]) -> str:
    return "–" if value is None else f"{1000 * value:.1f} ms"


def savings_section(metrics: Mapping[str, Any]) -> List[Block]:
    """The exchanges the triggers left out per link and the bytes that saved (an estimate),
    for a run where something was left out (``metrics.savings``; none in an older one)."""
    section = metrics.get("savings")
    links = [item for item in (section or {}).get("links", [])
             if item["pushes_suppressed"] or item["updates_discarded"] or item["pulls_not_modified"]]
    if not links:
        return []
    rows = [[item["link"], item["pushes_suppressed"], item["updates_discarded"], item["pulls_not_modified"],
             human_bytes(round(item["push_bytes_mean"])), human_bytes(round(item["model_bytes_mean"])),
             human_bytes(item["saved_bytes"])] for item in links]
    return [heading("Exchanges left out"),
            text("Per link: pushes the child's trigger suppressed, updates it discarded, pulls its parent "
                 f"answered NOT_MODIFIED; the bytes saved are an estimate from the nodes' own messages "
                 f"(left out × the mean logged PUSH or MODEL bytes, less the NOT_MODIFIED replies' own): "
                 f"{human_bytes(section['saved_bytes'])} in all."),
            table(["link", "pushes suppressed", "updates discarded", "pulls not modified", "mean push",
                   "mean model", "saved (est.)"], rows)]
