"""The start barrier: window 0 begins once every process of the run is ready.

A process builds its role first (imports, data loaded, sockets bound and connected),
logs ``READY`` and waits for ``<run dir>/start.json``. The run launches the sensors,
waits until all are ready, then the tree level by level from the root, each level
once the one above is ready, so every process listens before anyone dials it. When
the last process is ready, the run writes ``start.json``: window 0 begins
:func:`start_lead` ahead, the same instant for everyone. A process started later (a
restart after a crash) finds the file and joins the running clock at once.

No CPU margin is guessed: a process on 0.05 core that needs 6 s to import simply makes
everyone wait, and one that is never ready fails the run (``READY_TIMEOUT_S``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from edgetestbed.spec.model import Spec

START_FILE = "start.json"
# From the file's appearance to window 0: enough for a throttled process to notice it
# (0.05 core is 5 ms of CPU per 100 ms period, and it polls every POLL_S), plus
# HANDSHAKE_RTTS round trips of the slowest link for connections dialled just before
# READY to finish (TCP, then ZMTP's greeting, then a subscription): ZeroMQ connects in
# the background, and a sensor's samples reach only subscribers already in place.
START_LEAD_S = 1.0
HANDSHAKE_RTTS = 3
POLL_S = 0.02
READY_TIMEOUT_S = 120.0  # per launch group: far beyond any start-up seen, yet a hung one ends the run


def start_lead(spec: Spec) -> float:
    """Seconds from the last READY to window 0 (see START_LEAD_S)."""
    links = [node.link for node in spec.nodes if node.link] + [spec.sensors.link]
    links += [spec.cloud.link] if spec.cloud else []
    slowest_rtt = max(2 * (link.delay_ms + link.jitter_ms) / 1000 for link in links)
    return START_LEAD_S + HANDSHAKE_RTTS * slowest_rtt


def write_start(run_dir: Path, start_at: float) -> None:
    """Publish window 0's start; atomic, so a reader never sees half a file."""
    partial = Path(run_dir) / f".{START_FILE}.partial"
    partial.write_text(json.dumps({"start_at": start_at}), encoding="utf-8")
    os.replace(partial, Path(run_dir) / START_FILE)


def read_start(run_dir: Path) -> Optional[float]:
    """Window 0's start as unix time, or None while the run has not published it."""
    try:
        return float(json.loads((Path(run_dir) / START_FILE).read_text(encoding="utf-8"))["start_at"])
    except FileNotFoundError:
        return None
