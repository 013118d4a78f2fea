"""The JSON-lines log every testbed process writes, and the resource figures it reports.

One object per line, ``{"node": ident, "type": ..., "payload": {...}, "ts": unix time}``,
written with a single ``write`` and flushed at once, so a crash loses at most the line
being written and a progress display can tail the file. Event types (payloads are
documented where they are written, in the worker, server, cloud and sensor modules):

``READY`` (built, waiting for the start barrier) ``START`` (window 0's start known)
``CONNECTION`` ``STATISTIC`` ``BEHIND`` ``MODEL_RECEIVED`` ``MALFORMED`` ``RETRY``
``UNREACHABLE`` ``STOP`` ``ERROR`` ``DONE``, ``ROUND`` (a worker waiting for its ``sync``
parent's round: :mod:`edgetestbed.nodes.upstream`), ``KEPT_MODEL`` (a pull answered
``NOT_MODIFIED``: :mod:`edgetestbed.nodes.upstream`), and a learning-based trigger's decisions
``SUPPRESSED`` ``DISCARDED`` ``FORCED`` (written through the node's view of its model;
payloads: :mod:`edgetestbed.policies.trigger`)
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np

START, CONNECTION, STATISTIC, MODEL_RECEIVED = "START", "CONNECTION", "STATISTIC", "MODEL_RECEIVED"
BEHIND, READY, ROUND, KEPT_MODEL = "BEHIND", "READY", "ROUND", "KEPT_MODEL"
MALFORMED, RETRY, UNREACHABLE, STOP, ERROR, DONE = "MALFORMED", "RETRY", "UNREACHABLE", "STOP", "ERROR", "DONE"


class EventLog:
    """Appends events to ``<run dir>/logs/<ident>.jsonl``."""

    def __init__(self, path: Path, node: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.node = node
        self._file = open(path, "a", encoding="utf-8")

    def write(self, type_: str, **payload: Any) -> None:
        """One event, flushed before returning."""
        line = json.dumps({"node": self.node, "type": type_, "payload": payload, "ts": time.time()},
                          separators=(",", ":"), default=_jsonable)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays as plain JSON values; anything else as text."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def usage() -> Dict[str, float]:
    """This process's CPU seconds so far and its peak resident memory in bytes."""
    return {"cpu_total": time.process_time(), "memory_peak": peak_memory()}


def peak_memory() -> int:
    """Peak resident memory in bytes: ``VmHWM`` of this program. Not ``ru_maxrss``, which
    Linux carries over ``exec`` and so reports the peak of whatever forked this process."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Stopwatch:
    """Wall and CPU time of one piece of work, as STATISTIC fields."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.time(), time.process_time()

    def fields(self) -> Dict[str, float]:
        return {"wall_time": time.time() - self.wall, "cpu_time": time.process_time() - self.cpu, **usage()}
