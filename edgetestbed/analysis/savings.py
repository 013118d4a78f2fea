"""What the triggers saved: the ``savings`` section of ``metrics.json``.

Per tree link (child → parent), the exchanges the child's trigger and its parent's
``NOT_MODIFIED`` replies left out, from the nodes' DONE counts (summed over a process's
lives) and their logged messages:

* ``pushes_suppressed``, ``updates_discarded``: the child's (``accuracy``,
  ``significance``, ``relevance``; 0 for the other policies); either is a push not sent;
* ``pulls_not_modified``: the parent's ``NOT_MODIFIED`` replies to the child, counted in the
  parent's log (its DONE's ``pulls_not_modified`` totals them over its children), but not
  those to a ``waiting`` PULL (a ``sync`` child polling for its round to close: the reply only
  says the round is still open, and no model was left out);
* ``saved_bytes``: an **estimate from the nodes' own messages**, since what was not sent
  cannot be measured: (suppressed + discarded) × the mean bytes of the child's logged
  PUSHes, plus ``NOT_MODIFIED`` replies × the mean bytes of the parent's logged MODEL replies
  to the child, minus the ``NOT_MODIFIED`` replies' own bytes. A mean with no message to take
  it from counts as 0 (a child that never pushed saves nothing by this estimate); a resent
  PUSH is one push.

The section's ``pushes_suppressed``, ``updates_discarded``, ``pulls_not_modified`` and
``saved_bytes`` total the links (and are the summary's).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from edgetestbed.analysis.compression import life_endings
from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.process.protocol import MODEL, NOT_MODIFIED, PULL, PUSH
from edgetestbed.spec.plan import plan_network

NOTE = "saved bytes are an estimate: exchanges left out × the mean bytes of the node's own logged messages"
COUNTS = ("pushes_suppressed", "updates_discarded")
TOTALS = (*COUNTS, "pulls_not_modified", "saved_bytes")   # also the summary's


def savings_section(run: RunLogs) -> Dict[str, Any]:
    """``{"note", "links": [...], **TOTALS}``: the links' figures, and their totals."""
    items = [_link(run, link.label, *link.ends) for link in plan_network(run.spec).shaped_links
             if link.kind == "tree"]
    return {"note": NOTE, "links": items, **{key: sum(item[key] for item in items) for key in TOTALS}}


def _link(run: RunLogs, label: str, child: str, parent: str) -> Dict[str, Any]:
    endings = life_endings(run, child)
    counts = {key: sum(int(ending.get(key, 0)) for ending in endings) for key in COUNTS}
    pushes, models = _sent(run, child, parent, PUSH), _sent(run, parent, child, MODEL)
    waiting = {e.payload.get("seq") for e in run.connections(parent, child, "received", (PULL,))
               if e.payload.get("waiting")}
    not_modified = [size for seq, size in _replies(run, parent, child, NOT_MODIFIED) if seq not in waiting]
    saved_pushes = sum(counts.values()) * _mean(pushes)
    saved_pulls = len(not_modified) * _mean(models) - sum(not_modified) if models else 0
    return {"link": label, "child": child, "parent": parent, **counts, "pulls_not_modified": len(not_modified),
            "push_bytes_mean": _mean(pushes), "model_bytes_mean": _mean(models),
            "saved_bytes": round(saved_pushes + saved_pulls)}


def _sent(run: RunLogs, sender: str, receiver: str, kind: str) -> List[int]:
    """The bytes of each ``kind`` message ``sender`` logged sending ``receiver`` (a resent
    PUSH counts once: it is the same exchange; every reply is one)."""
    sent: List[Mapping[str, Any]] = [e.payload for e in run.sent(sender, receiver, kind)]
    if kind == PUSH:
        return list({fields.get("seq"): int(fields.get("bytes", 0)) for fields in sent}.values())
    return [int(fields.get("bytes", 0)) for fields in sent]


def _replies(run: RunLogs, sender: str, receiver: str, kind: str) -> List[tuple]:
    """``(seq, bytes)`` of each ``kind`` reply ``sender`` logged sending ``receiver``."""
    return [(e.payload.get("seq"), int(e.payload.get("bytes", 0))) for e in run.sent(sender, receiver, kind)]


def _mean(sizes: List[int]) -> float:
    return sum(sizes) / len(sizes) if sizes else 0.0
