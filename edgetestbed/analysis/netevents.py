"""The network events a run applied: the ``network_events`` section of ``metrics.json`` and its
report table.

Read from ``RUN/network_events.jsonl`` (:mod:`edgetestbed.dynamics.timeline` writes one line
per event as it is applied). Each item is that record plus, for a link event, the link's
**configured** one-way delay before and after the event (the spec's delay, changed by each
``set`` of it in turn), to set beside the delay the probe **measured** (half the minimum
ping round trip), and what the event cost the root's model (:func:`event_cost`). A run
without events has an empty list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from edgetestbed.analysis.document import Block, heading, table, text
from edgetestbed.dynamics.timeline import RECORDS
from edgetestbed.spec.model import Spec


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


def network_events_section(run_dir: Path, spec: Spec, root_curve: Mapping[str, Sequence[float]],
                           metric: Optional[str]) -> Dict[str, Any]:
    """``{"events": [...]}``: every applied event's record with the configured delays and its
    cost to the root's model (``root_*``)."""
    path = Path(run_dir) / RECORDS
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    configured = {node.id: node.link.delay_ms for node in spec.nodes if node.link is not None}
    events = []
    for record in records:
        link = record.get("link")   # None for a node event (crash, restart)
        before = configured.get(link)
        if record.get("delay_ms") is not None and record.get("applied") is not None:
            configured[link] = record["delay_ms"]
        cost = event_cost(root_curve, record.get("applied"), metric == "rmse")
        events.append({**record, "configured_before_ms": before, "configured_after_ms": configured.get(link),
                       **{f"root_{key}": value for key, value in cost.items()}})
    return {"events": events}


def network_events_report(metrics: Mapping[str, Any]) -> List[Block]:
    """The report's table of applied events; nothing for a run without any."""
    events = (metrics.get("network_events") or {}).get("events") or []
    if not events:
        return []
    metric = (metrics.get("run") or {}).get("metric")
    rows = [[event["index"], _subject(event), _what(event), _time(event["due"]), _time(event.get("applied")),
             _delays(event["configured_before_ms"], _measured(event["before"])),
             _delays(event["configured_after_ms"], _measured(event["after"])),
             _dip(event.get("root_dip"), metric),
             _time(event.get("root_recovery_s"), "never" if event.get("root_score_before") is not None else "–")]
            for event in events]
    return [heading("Network events"),
            text("Each event of the spec's timeline (a dotted line #N on the time plots), when it was due "
                 "and applied (seconds since window 0 "
                 "began), and the link's one-way delay configured against measured just before and just after "
                 "(half the minimum round trip of 8 pings from the child to its parent; 'no reply': the link "
                 "carried nothing); what it cost the root's model: how much worse its score got before it was "
                 "as good as when the event came, and how long that took (events that overlap share the cost)."),
            table(["event", "link or node", "change", "due", "applied", "delay before: set / measured",
                   "delay after: set / measured", "root's dip", "root recovered after"], rows)]


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


def _measured(probe: Optional[Mapping[str, Any]]) -> str:
    if probe is None:
        return "not probed"
    return "no reply" if probe["delay_ms"] is None else f"{probe['delay_ms']:.1f} ms"


def _delays(configured: Optional[float], measured: str) -> str:
    return f"{'–' if configured is None else f'{configured:g} ms'} / {measured}"
