"""The network events a run applied: the ``network_events`` section of ``metrics.json`` and its
report table.

Read from ``RUN/network_events.jsonl`` (:mod:`edgetestbed.dynamics.timeline` writes one line
per event as it is applied). Each item is that record plus, for a link event, the link's
**configured** one-way delay before and after the event (the spec's delay, changed by each
``set`` of it in turn), to set beside the delay the probe **measured** (half the minimum
ping round trip), and what the event cost: the root's model (:func:`event_cost`), the tree's
bytes (:func:`event_traffic`) and the propagation latency (:func:`event_latency`). A run
without events has an empty list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from edgetestbed.analysis.document import Block, heading, table, text
from edgetestbed.analysis.plots import human_bytes
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.dynamics.timeline import RECORDS
from edgetestbed.process.eventlog import CONNECTION


class _Configured(NamedTuple):
    """A link's one-way delay and rate as the spec set them, changed by each applied event so far."""
    delay_ms: Optional[float]
    bw_mbit: Optional[float]


_UNCONFIGURED = _Configured(None, None)   # a node event's, or a link the spec left unshaped


def event_cost(curve: Mapping[str, Sequence[float]], applied: Optional[float], lower_is_better: bool) -> Dict[str, Any]:
    """What an event applied at ``applied`` cost a model whose score over time is ``curve``
    (``t``, ``value``): its score then (``score_before``: the last evaluation at or before), the
    first later time it was at least as good again (``recovery_s`` after the event; None if it
    never was), and how much worse it got in between (``dip``: 0 if the next evaluation was
    already as good; in the score's units, positive for worse)."""
    sign = -1.0 if lower_is_better else 1.0
    points = list(zip(curve.get("t", []), curve.get("value", [])))
    earlier = [value for t, value in points if applied is not None and t <= applied]
    if not earlier:
        return {"score_before": None, "dip": None, "recovery_s": None}
    before = earlier[-1]
    later = [(t, value) for t, value in points if t > applied]
    recovered = next((t for t, value in later if sign * value >= sign * before), None)
    meanwhile = [value for t, value in later if recovered is None or t < recovered]
    dip = max([sign * (before - value) for value in meanwhile], default=0.0)
    return {"score_before": before, "dip": round(max(dip, 0.0), 6),
            "recovery_s": None if recovered is None else round(recovered - applied, 4)}


def event_traffic(sent: Sequence[Tuple[float, int]], applied: Optional[float], span: float) -> Dict[str, Any]:
    """The bytes of the messages in ``sent`` ((seconds since window 0, bytes) each) in the
    ``span`` seconds before ``applied`` and in the ``span`` after, and how many more came
    after (``extra_bytes``: negative when the event quieted them)."""
    if applied is None:
        return {"bytes_before": None, "bytes_after": None, "extra_bytes": None}
    before = sum(size for t, size in sent if applied - span <= t < applied)
    after = sum(size for t, size in sent if applied <= t < applied + span)
    return {"bytes_before": before, "bytes_after": after, "extra_bytes": after - before}


def event_latency(windows: Sequence[Tuple[float, float]], applied: Optional[float], span: float) -> Dict[str, Any]:
    """What an event did to the propagation latency. ``windows``: (when the last worker
    finished it, seconds since window 0; its latency, the worst worker's) of every window
    whose latency is known, in order.

    ``latency_before_s``: the latency of the last window whose model had come back to the
    workers before the event (untouched by it); ``latency_after_s``: the worst latency of the
    windows still travelling when it was applied or finished in the ``span`` seconds after;
    ``extra_latency_s``: the difference. None where there is no such window."""
    if applied is None:
        return {"latency_before_s": None, "latency_after_s": None, "extra_latency_s": None}
    back = [latency for done, latency in windows if done + latency <= applied]
    hit = [latency for done, latency in windows if done <= applied + span and done + latency > applied]
    before, after = (back[-1] if back else None), max(hit, default=None)
    extra = None if before is None or after is None else round(after - before, 4)
    return {"latency_before_s": before, "latency_after_s": after, "extra_latency_s": extra}


def tree_messages(run: RunLogs) -> List[Tuple[float, int]]:
    """(seconds since window 0, bytes on the wire) of every message a tree node logged sending
    another tree node: the model traffic, without sensor samples."""
    tree = {node.id for node in run.spec.nodes}
    return sorted((run.since_start(event.ts), event.payload.get("bytes", 0))
                  for ident in tree for event in run.events(ident, CONNECTION)
                  if event.payload.get("direction") == "sent" and event.payload.get("peer") in tree)


def network_events_section(run: RunLogs, root_curve: Mapping[str, Sequence[float]], metric: Optional[str],
                           windows: Sequence[Tuple[float, float]]) -> Dict[str, Any]:
    """``{"events": [...]}``: every applied event's record with the configured delays and its
    cost to the root's model (``root_*``), to the tree's traffic over one window interval
    (``tree_*``) and to the propagation latency (``windows``: see :func:`event_latency`)."""
    path = Path(run.run_dir) / RECORDS
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    configured = {node.id: _Configured(node.link.delay_ms, node.link.bw_mbit)
                  for node in run.spec.nodes if node.link is not None}
    sent = tree_messages(run) if records else []
    events = []
    for record in records:
        link = record.get("link")   # None for a node event (crash, restart)
        before = configured.get(link, _UNCONFIGURED)
        if link is not None and record.get("applied") is not None:
            configured[link] = _Configured(record.get("delay_ms", before.delay_ms), record.get("bw_mbit", before.bw_mbit))
        after = configured.get(link, _UNCONFIGURED)
        applied = record.get("applied")
        cost = event_cost(root_curve, applied, metric == "rmse")
        traffic = event_traffic(sent, applied, run.spec.windows.interval)
        events.append({**record, "configured_before_ms": before.delay_ms, "configured_after_ms": after.delay_ms,
                       "configured_rate_before_mbit": before.bw_mbit, "configured_rate_after_mbit": after.bw_mbit,
                       **{f"root_{key}": value for key, value in cost.items()},
                       **{f"tree_{key}": value for key, value in traffic.items()},
                       **event_latency(windows, applied, run.spec.windows.interval)})
    return {"events": events}


def network_events_report(metrics: Mapping[str, Any]) -> List[Block]:
    """The report's table of applied events; nothing for a run without any."""
    events = (metrics.get("network_events") or {}).get("events") or []
    if not events:
        return []
    metric = (metrics.get("run") or {}).get("metric")
    rows = [[event["index"], _subject(event), _what(event), _time(event["due"]), _time(event.get("applied")),
             _link_state(event["configured_before_ms"], event.get("configured_rate_before_mbit"), event["before"]),
             _link_state(event["configured_after_ms"], event.get("configured_rate_after_mbit"), event["after"]),
             _dip(event.get("root_dip"), metric),
             _time(event.get("root_recovery_s"), "never" if event.get("root_score_before") is not None else "–"),
             _extra_bytes(event.get("tree_extra_bytes")),
             _latencies(event.get("latency_before_s"), event.get("latency_after_s"))]
            for event in events]
    return [heading("Network events"),
            text("Each event of the spec's timeline (a dotted line #N on the time plots), when it was due "
                 "and applied (seconds since window 0 "
                 "began), and the link's one-way delay configured against measured just before and just after "
                 "(half the minimum round trip of 8 pings from the child to its parent; 'no reply': the link "
                 "carried nothing) and, for a change of rate, the rate (one frame over the median spacing of a "
                 "train of datagrams from the child to its parent); what it cost the root's model: how much worse its score got before it was "
                 "as good as when the event came, and how long that took; the tree's extra bytes: what its "
                 "nodes sent each other in one window interval after the event, less the interval before (as "
                 "they logged it); and the propagation latency of the last window back at the workers before "
                 "the event against the worst of those travelling at it or finished one interval after it. "
                 "Events that overlap share the cost."),
            table(["event", "link or node", "change", "due", "applied", "before: set / measured",
                   "after: set / measured", "root's dip", "root recovered after", "tree's extra bytes",
                   "latency before → after"], rows)]


def _subject(event: Mapping[str, Any]) -> str:
    """The link's child, the node, or a background flow's ends."""
    return event.get("link") or event.get("node") or f"{event['from']} → {event['to']}"


def _what(event: Mapping[str, Any]) -> str:
    if event.get("action") == "background":
        return f"background {event['rate_mbit']:g} Mbit/s until {event['stop_s']:g} s"
    if event.get("state") or event.get("node"):   # down, up, partition, heal; crash, restart
        return event.get("action") or event["state"]
    named = {"delay_ms": ("delay", "ms"), "jitter_ms": ("jitter", "ms"), "loss_pct": ("loss", "%"),
             "bw_mbit": ("rate", "Mbit/s")}
    return ", ".join(f"{name} {event[key]:g} {unit}" for key, (name, unit) in named.items() if event.get(key) is not None)


def _time(value: Optional[float], missing: str = "not applied") -> str:
    return missing if value is None else f"{value:.2f} s"


def _dip(value: Optional[float], metric: Optional[str]) -> str:
    if value is None:
        return "–"
    return f"{value:.3g} RMSE" if metric == "rmse" else f"{100 * value:.1f} points"


def _extra_bytes(size: Optional[int]) -> str:
    return "–" if size is None else ("+" if size >= 0 else "−") + human_bytes(abs(size))


def _latencies(before: Optional[float], after: Optional[float]) -> str:
    return " → ".join("–" if value is None else f"{value:.2f}" for value in (before, after)) + " s"


def _link_state(delay_ms: Optional[float], rate_mbit: Optional[float], probe: Optional[Mapping[str, Any]]) -> str:
    """The link's delay configured / measured, and its rate where the probe measured one."""
    delays = f"{'–' if delay_ms is None else f'{delay_ms:g} ms'} / {_measured(probe)}"
    if probe is None or probe.get("rate_mbit") is None:
        return delays
    return f"{delays}; {'–' if rate_mbit is None else f'{rate_mbit:g}'} / {probe['rate_mbit']:.2f} Mbit/s"


def _measured(probe: Optional[Mapping[str, Any]]) -> str:
    if probe is None:
        return "not probed"
    return "no reply" if probe["delay_ms"] is None else f"{probe['delay_ms']:.1f} ms"
