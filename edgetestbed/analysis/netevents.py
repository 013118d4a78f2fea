"""The network events a run applied: the ``network_events`` section of ``metrics.json`` and its
report table.

Read from ``RUN/network_events.jsonl`` (:mod:`edgetestbed.dynamics.timeline` writes one line
per event as it is applied). Each item is that record plus, for a link event, the link's
**configured** one-way delay before and after the event (the spec's delay, changed by each
``set`` of it in turn), to set beside the delay the probe **measured** (half the minimum
ping round trip). A run without events has an empty list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from edgetestbed.analysis.document import Block, heading, table, text
from edgetestbed.dynamics.timeline import RECORDS
from edgetestbed.spec.model import Spec


def network_events_section(run_dir: Path, spec: Spec) -> Dict[str, Any]:
    """``{"events": [...]}``: every applied event's record with the configured delays."""
    path = Path(run_dir) / RECORDS
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    configured = {node.id: node.link.delay_ms for node in spec.nodes if node.link is not None}
    events = []
    for record in records:
        link = record.get("link")   # None for a node event (crash, restart)
        before = configured.get(link)
        if record.get("delay_ms") is not None and record.get("applied") is not None:
            configured[link] = record["delay_ms"]
        events.append({**record, "configured_before_ms": before, "configured_after_ms": configured.get(link)})
    return {"events": events}


def network_events_report(metrics: Mapping[str, Any]) -> List[Block]:
    """The report's table of applied events; nothing for a run without any."""
    events = (metrics.get("network_events") or {}).get("events") or []
    if not events:
        return []
    rows = [[event["index"], event.get("link") or event["node"], _what(event), _time(event["due"]), _time(event.get("applied")),
             _delays(event["configured_before_ms"], _measured(event["before"])),
             _delays(event["configured_after_ms"], _measured(event["after"]))] for event in events]
    return [heading("Network events"),
            text("Each event of the spec's timeline (a dotted line #N on the time plots), when it was due "
                 "and applied (seconds since window 0 "
                 "began), and the link's one-way delay configured against measured just before and just after "
                 "(half the minimum round trip of 8 pings from the child to its parent; 'no reply': the link "
                 "carried nothing)."),
            table(["event", "link or node", "change", "due", "applied", "delay before: set / measured",
                   "delay after: set / measured"], rows)]


def _what(event: Mapping[str, Any]) -> str:
    if event.get("state") or event.get("node"):   # down, up, partition, heal; crash, restart
        return event.get("action") or event["state"]
    named = {"delay_ms": ("delay", "ms"), "jitter_ms": ("jitter", "ms"), "loss_pct": ("loss", "%"),
             "bw_mbit": ("rate", "Mbit/s")}
    return ", ".join(f"{name} {event[key]:g} {unit}" for key, (name, unit) in named.items() if event.get(key) is not None)


def _time(value: Optional[float]) -> str:
    return "not applied" if value is None else f"{value:.2f} s"


def _measured(probe: Optional[Mapping[str, Any]]) -> str:
    if probe is None:
        return "not probed"
    return "no reply" if probe["delay_ms"] is None else f"{probe['delay_ms']:.1f} ms"


def _delays(configured: Optional[float], measured: str) -> str:
    return f"{'–' if configured is None else f'{configured:g} ms'} / {measured}"
