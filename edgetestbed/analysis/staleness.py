"""How stale the updates parameter servers merged were: the ``staleness`` section of ``metrics.json``.

An update's staleness is the number of its parent's merges between the model it was computed
from (the version the child last pulled) and the model it was merged into; the parent logs
it for every PUSH it merges (``staleness`` in its merge ``STATISTIC``,
:mod:`edgetestbed.nodes.server`). It is what asynchronous training pays for not waiting, and
what ``async`` aggregation discounts updates by, so it is reported per tree link, where a
slow or lossy edge shows as a long tail: ``count`` (PUSHes merged), ``mean``, ``max`` and the
``histogram`` (staleness → PUSHes, keys as text for JSON). A run logged before staleness was
measured has no values: ``count`` 0 and ``mean`` and ``max`` null.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Sequence

from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.process.eventlog import STATISTIC
from edgetestbed.spec.plan import plan_network


def distribution(values: Sequence[int]) -> Dict[str, Any]:
    """``{count, mean, max, histogram}`` of staleness ``values``."""
    histogram = Counter(values)
    return {"count": len(values), "mean": sum(values) / len(values) if values else None,
            "max": max(values, default=None),
            "histogram": {str(value): histogram[value] for value in sorted(histogram)}}


def merged_staleness(run: RunLogs, child: str, parent: str) -> List[int]:
    """The staleness of every PUSH of ``child`` that ``parent`` merged, in merge order."""
    return [value for event in run.events(parent, STATISTIC)
            for value in event.payload.get("staleness", {}).get(child, [])]


def staleness_section(run: RunLogs) -> Dict[str, Any]:
    """``{"links": [{link, child, parent, aggregation, count, mean, max, histogram}, ...],
    "all": the same over every link}``."""
    nodes = {node.id: node for node in run.spec.nodes}
    links, every = [], []
    for link in plan_network(run.spec).shaped_links:
        if link.kind != "tree":
            continue
        child, parent = link.ends
        values = merged_staleness(run, child, parent)
        every += values
        links.append({"link": link.label, "child": child, "parent": parent,
                      "aggregation": nodes[parent].aggregation.type, **distribution(values)})
    return {"links": links, "all": distribution(every)}
