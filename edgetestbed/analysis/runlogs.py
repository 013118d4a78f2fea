"""A run directory as analysis reads it: the resolved spec, the manifest and every process's log.

Reads files only (no root, no Mininet), so a report can be made anywhere from a copied
run directory. A run cut short still reads: a line that is not valid JSON (the one a
killed process was writing) is skipped, and a missing log or manifest is noted; what
is missing is listed in :attr:`RunLogs.problems` for the metrics to report. A run
directory without ``manifest.json`` (one made by tests on loopback) reads with an
empty manifest.

Event times stay unix times here; :meth:`RunLogs.since_start` turns them into seconds
since window 0 began (``start_at`` in every process's ``START``), the time axis of every
metric.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from edgetestbed.errors import UserError
from edgetestbed.process.eventlog import CONNECTION, READY, START
from edgetestbed.spec.load import load_spec
from edgetestbed.spec.model import Spec

SPEC_NAME, MANIFEST_NAME, LOGS_DIR = "spec.yaml", "manifest.json", "logs"


@dataclass(frozen=True)
class Event:
    """One log line: which process, what happened, its fields, when (unix time)."""

    node: str
    type: str
    payload: dict
    ts: float


@dataclass
class RunLogs:
    """Everything a run directory says about one run."""

    run_dir: Path
    spec: Spec
    manifest: dict
    logs: Dict[str, List[Event]]
    problems: List[str] = field(default_factory=list)
    start_at: Optional[float] = None     # unix time window 0 began, from the START events
    origin: float = 0.0                  # the metrics' time zero: start_at, else the first event

    @classmethod
    def read(cls, run_dir: Path) -> "RunLogs":
        """Read ``run_dir``; UserError if it holds no ``spec.yaml`` (not a run directory)."""
        run_dir = Path(run_dir)
        if not (run_dir / SPEC_NAME).is_file():
            raise UserError(f"{run_dir}: not a run directory (no {SPEC_NAME})")
        run = cls(run_dir, load_spec(run_dir / SPEC_NAME), {}, {})
        manifest = run_dir / MANIFEST_NAME
        if manifest.is_file():
            run.manifest = json.loads(manifest.read_text())
        for ident in run.processes:
            run.logs[ident] = run._read_log(ident)
        starts = (e.payload.get("start_at") for e in run._all_events() if e.type == START)
        run.start_at = next((float(t) for t in starts if t is not None), None)
        run.origin = run.start_at if run.start_at is not None else min(
            (e.ts for e in run._all_events()), default=0.0)
        if run.start_at is None:
            run.problems.append("no START says when window 0 began: times count from the first event")
        return run

    def _read_log(self, ident: str) -> List[Event]:
        path = self.run_dir / LOGS_DIR / f"{ident}.jsonl"
        if not path.is_file():
            self.problems.append(f"{ident}: no log ({LOGS_DIR}/{path.name}); the process never started")
            return []
        events = []
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            try:
                record = json.loads(line)
                events.append(Event(record["node"], record["type"], record["payload"], float(record["ts"])))
            except (ValueError, KeyError, TypeError):
                self.problems.append(f"{ident}: line {number} of its log is unreadable (cut short?)")
        return events

    @property
    def processes(self) -> List[str]:
        """Every process the run started: tree nodes in spec order (none in a centralized run),
        sensors, the cloud."""
        return list(self.spec.process_ids)

    def events(self, ident: str, *types: str) -> List[Event]:
        """``ident``'s events in log order, only those of ``types`` if given."""
        return [e for e in self.logs.get(ident, []) if not types or e.type in types]

    def connections(self, ident: str, peer: str, direction: Optional[str] = None,
                    kinds: Sequence[str] = ()) -> List[Event]:
        """``ident``'s CONNECTION events with ``peer``: only those of ``direction`` (``sent`` or
        ``received``) and of message ``kinds``, if given."""
        return [e for e in self.events(ident, CONNECTION) if e.payload.get("peer") == peer
                and direction in (None, e.payload.get("direction")) and (not kinds or e.payload.get("kind") in kinds)]

    def sent(self, sender: str, receiver: str, *kinds: str, or_received: bool = False) -> List[Event]:
        """CONNECTION events of the messages (of ``kinds``, if given) ``sender`` logged sending
        ``receiver``; with ``or_received``, if ``sender`` left no log, those ``receiver`` logged
        receiving from it."""
        if or_received and not self.logs.get(sender):
            return self.connections(receiver, sender, "received", kinds)
        return self.connections(sender, receiver, "sent", kinds)

    def lives(self, ident: str) -> List[List[Event]]:
        """``ident``'s events split where each process began, one list per process started:
        at its ``READY``, the first thing a process logs (runs from before the start barrier
        began at ``START``, which now follows ``READY`` directly)."""
        lives: List[List[Event]] = []
        for event in self.events(ident):
            after_ready = bool(lives) and lives[-1][-1].type == READY
            if not lives or event.type == READY or (event.type == START and not after_ready):
                lives.append([])
            lives[-1].append(event)
        return lives

    def _all_events(self) -> List[Event]:
        return [event for events in self.logs.values() for event in events]

    def since_start(self, ts: float) -> float:
        """``ts`` as seconds since window 0 began."""
        return ts - self.origin
