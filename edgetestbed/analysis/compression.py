"""What the codecs saved and what they cost: the ``compression`` section of ``metrics.json``.

Per tree link (child → parent), for each kind of model traffic a codec may code (the child's
pushes, the parent's replies to its pulls), what the senders logged: messages, the tensors'
bytes uncoded (``raw_bytes``: what the same updates would have cost without a codec) and the
arrays' bytes as sent (``coded_bytes``), their ratio; and, when the run captured its network,
the bytes the capture saw for that traffic class and direction (``wire_bytes``: pushes go up,
pulled models down), with ``wire_per_logged``, the captured bytes over the logged messages'
bytes (framing, TCP/IP headers and retransmissions; about 1.03–1.1 when the two agree), which
checks the node's count on the wire.

Per node that codes or exchanges: the CPU seconds and peak memory spent encoding and decoding
(``codec_*`` of its DONE or STOP events, :mod:`edgetestbed.codecs.usage`), its
``exchange_time`` (wall seconds waiting on its parent: requests from encoding to reply), its
``compute_time`` (a worker's training seconds, the ``train_time`` of its windows) and the
seed study's communication-to-computation ratio, ``exchange_time / compute_time``: for
workers only, since a parameter server's merges are not training.

Every figure sums over a process's restarts (each life's last DONE or STOP).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from edgetestbed.analysis.definitions import ratio
from edgetestbed.analysis.runlogs import Event, RunLogs
from edgetestbed.codecs.usage import DECODE, ENCODE
from edgetestbed.process.eventlog import DONE, STATISTIC, STOP
from edgetestbed.process.protocol import MODEL, PUSH
from edgetestbed.spec.plan import plan_network

# kind of traffic -> (message type, whether the child sends it, the capture's class and direction)
TRAFFIC = {"push": (PUSH, True, "update push", "up"), "pull": (MODEL, False, "model pull", "down")}
USAGE_KEYS = [f"codec_{kind}{suffix}" for kind in (ENCODE, DECODE) for suffix in ("s", "_cpu", "_peak")]


def compression_section(run: RunLogs, links: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"links": [...], "nodes": {...}, "push_ratio": coded / raw bytes of every push (None
    without pushes), "codec_cpu_s": encoding and decoding CPU seconds of all nodes}``."""
    captured = {item["link"]: item for item in links.get("items", [])}
    items = [_link(run, link.label, *link.ends, captured.get(link.label))
             for link in plan_network(run.spec).shaped_links if link.kind == "tree"]
    nodes = {node.id: _node(run, node.id, node.is_worker) for node in run.spec.nodes}
    raw = sum(item["push"]["raw_bytes"] for item in items)
    return {"links": items, "nodes": nodes,
            "push_ratio": ratio(sum(item["push"]["coded_bytes"] for item in items), raw),
            "codec_cpu_s": sum(node.get(f"codec_{kind}_cpu", 0.0) for node in nodes.values()
                               for kind in (ENCODE, DECODE))}


def _link(run: RunLogs, label: str, child: str, parent: str, captured: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    spec = {node.id: node for node in run.spec.nodes}[child]
    item: Dict[str, Any] = {"link": label, "child": child, "parent": parent,
                            "codec": [codec.type for codec in spec.codec]}
    for kind, (message, by_child, capture_class, direction) in TRAFFIC.items():
        sender, receiver = (child, parent) if by_child else (parent, child)
        item[kind] = _traffic(run.sent(sender, receiver, message), captured, capture_class, direction)
    return item


def _traffic(sent: List[Event], captured: Optional[Mapping[str, Any]], capture_class: str,
             direction: str) -> Dict[str, Any]:
    coded = sum(e.payload.get("payload_bytes", 0) for e in sent)
    raw = sum(e.payload.get("raw_bytes", e.payload.get("payload_bytes", 0)) for e in sent)
    logged = sum(e.payload.get("bytes", 0) for e in sent)
    pcap = ((captured or {}).get(direction) or {}).get("pcap") or {}
    wire = pcap.get("by_class", {}).get(capture_class)
    return {"messages": len(sent), "coded_messages": sum(1 for e in sent if "codec" in e.payload),
            "raw_bytes": raw, "coded_bytes": coded, "ratio": ratio(coded, raw), "message_bytes": logged,
            "wire_bytes": wire, "wire_per_logged": ratio(wire, logged)}


def life_endings(run: RunLogs, ident: str) -> List[Mapping[str, Any]]:
    """The payload of each life's last DONE or STOP (empty for a life that ended without):
    a restarted process counts afresh, so its figures are summed over these."""
    return [next((e.payload for e in reversed(life) if e.type in (DONE, STOP)), {}) for life in run.lives(ident)]


def _node(run: RunLogs, ident: str, trains: bool) -> Dict[str, Any]:
    endings = life_endings(run, ident)
    totals = {key: _combine(key, [ending[key] for ending in endings if key in ending])
              for key in [*USAGE_KEYS, "exchange_time"]}
    node: Dict[str, Any] = {key: value for key, value in totals.items() if value is not None}
    if trains:
        compute = sum(e.payload.get("train_time", 0.0) for e in run.events(ident, STATISTIC))
        node.update(compute_time=compute, comm_to_comp=ratio(node.get("exchange_time"), compute))
    return node


def _combine(key: str, values: List[float]) -> Optional[float]:
    """Over a process's lives: peaks, the largest; counts and seconds, the sum; None if none."""
    if not values:
        return None
    return max(values) if key.endswith("_peak") else sum(values)
