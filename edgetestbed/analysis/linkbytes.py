"""Bytes on every shaped link of one run: the ``links`` section of ``metrics.json``.

Measured on the wire by :mod:`edgetestbed.analysis.netcost` when the run captured
(``net/``); else from the node logs, per direction and message class, labelled so.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.process.eventlog import DONE, STATISTIC
from edgetestbed.process.protocol import ACK, MODEL, NOT_MODIFIED, PULL, PUSH
from edgetestbed.spec.model import LinkSpec
from edgetestbed.spec.plan import LinkPlan, plan_network, sensor_id
from edgetestbed.topo.loopback import NOT_EMULATED

LOG_SOURCE = "node logs"
LOG_SOURCE_NOTE = ("bytes of the ZeroMQ messages as the processes logged them (payload and ZMTP framing), "
                   "without TCP/IP headers, retransmissions or handshakes")
MESSAGE_CLASSES = {PULL: "model pull", MODEL: "model pull", NOT_MODIFIED: "model pull", PUSH: "update push"}
CONTROL, SENSOR_DATA = "control", "sensor data"


def logged_links(run: RunLogs) -> Dict[str, Any]:
    """Bytes on every shaped link as the processes logged them, per direction and message
    class. ``up`` is child → parent (sensor → worker, cloud → root). Each direction is
    counted where it was sent (where it was received if the sender left no log)."""
    items = [_logged_link(run, link) for link in plan_network(run.spec).shaped_links]
    note = (LOG_SOURCE_NOTE if run.spec.network.emulated
            else f"{NOT_EMULATED} (the nodes' own logs, not captures); {LOG_SOURCE_NOTE}")
    return {"source": LOG_SOURCE, "note": note, "items": items, **link_totals(run, items)}


def _logged_link(run: RunLogs, link: LinkPlan) -> Dict[str, Any]:
    child, parent = link.ends
    if link.kind == "sensor":
        sent = [(SENSOR_DATA, e.payload.get("bytes", 0)) for e in run.events(child, STATISTIC)]
        return _link_item(link, sent, [])
    if run.spec.centralized:
        up, down = centralized_messages(run, link.kind, child)
        return _link_item(link, [(SENSOR_DATA, size) for size in up], [(SENSOR_DATA, size) for size in down])
    if link.kind == "wan":
        return _link_item(link, [], [])   # the cloud regenerates its data: no traffic
    requests = {e.payload.get("seq"): e.payload.get("kind") for ident, peer in ((child, parent), (parent, child))
                for e in run.connections(ident, peer) if e.payload.get("kind") in (PULL, PUSH, DONE)}
    return _link_item(link, _direction(run, child, parent, requests), _direction(run, parent, child, requests))


def centralized_messages(run: RunLogs, kind: str, child: str) -> Tuple[List[int], List[int]]:
    """Bytes of each message ``(up, down)`` on a tree or WAN link of a centralized run, whose
    ``ends[0]`` is ``child``: the raw samples on their way up to the root's switch, then down
    the WAN link to the cloud; as the sensors below it logged them sending (the WAN link: as
    the cloud logged them arriving). Both the logged and the measured link bytes count these."""
    if kind == "wan":
        return [], [e.payload.get("sensor_bytes", 0) for e in run.events(child, STATISTIC)]
    sent = [e.payload.get("bytes", 0) for sensor in sensors_below(run, child) for e in run.events(sensor, STATISTIC)]
    return sent, []


def sensors_below(run: RunLogs, ident: str) -> List[str]:
    """The sensors of the workers in ``ident``'s subtree."""
    children = [node.id for node in run.spec.nodes if node.parent == ident]
    own = [sensor_id(index) for index in run.spec.node(ident).sensors]
    return own + [sensor for child in children for sensor in sensors_below(run, child)]


def _direction(run: RunLogs, sender: str, receiver: str, requests: Mapping[Any, str]) -> List[Tuple[str, int]]:
    """``(message class, bytes)`` of each message ``sender`` sent ``receiver``."""
    events = run.sent(sender, receiver, or_received=True)
    return [(_message_class(e.payload.get("kind"), requests.get(e.payload.get("seq"))), e.payload.get("bytes", 0))
            for e in events]


def _message_class(kind: str, request: Optional[str]) -> str:
    """A pull and its MODEL (or NOT_MODIFIED) are ``model pull``, a push and its ACK ``update push``, the rest ``control``."""
    return MESSAGE_CLASSES.get(request if kind == ACK else kind, CONTROL)


def _link_item(link: LinkPlan, up: Sequence[Tuple[str, int]], down: Sequence[Tuple[str, int]]) -> Dict[str, Any]:
    by_class: Dict[str, int] = {}
    for message_class, size in [*up, *down]:
        by_class[message_class] = by_class.get(message_class, 0) + size
    up_bytes, down_bytes = sum(size for _, size in up), sum(size for _, size in down)
    return {"link": link.label, "kind": link.kind, "ends": list(link.ends), "params": link_params(link.spec),
            "up_bytes": up_bytes, "down_bytes": down_bytes, "bytes": up_bytes + down_bytes,
            "messages": len(up) + len(down), "by_class": by_class}


def link_params(link: Optional[LinkSpec]) -> Dict[str, Any]:
    """A link's spec as plain numbers (``bw_mbit`` None: unlimited)."""
    link = link or LinkSpec()
    return {"bw_mbit": link.bw_mbit, "delay_ms": link.delay_ms, "jitter_ms": link.jitter_ms,
            "loss_pct": link.loss_pct, "queue": link.queue}


def link_totals(run: RunLogs, items: Sequence[Mapping[str, Any]]) -> Dict[str, int]:
    """Bytes on all links, on tree links, on sensor links, on the tree links into the root,
    and on the cloud's WAN link."""
    root = run.spec.root.id
    def total(keep) -> int:
        return int(sum(item.get("bytes") or 0 for item in items if keep(item)))
    return {"total_bytes": total(lambda item: True), "tree_bytes": total(lambda item: item["kind"] == "tree"),
            "sensor_bytes": total(lambda item: item["kind"] == "sensor"),
            "top_level_bytes": total(lambda item: item["kind"] == "tree" and item["ends"][1] == root),
            "cloud_link_bytes": total(lambda item: item["kind"] == "wan")}


def links_section(run: RunLogs) -> Dict[str, Any]:
    """Bytes per link: measured on the wire by :mod:`edgetestbed.analysis.netcost` when it
    exists and the run captured (``net/``), the rest of its result under ``netcost``; else
    (or if its result has no ``items``) from the node logs, labelled so."""
    logged = logged_links(run)
    measured = _network_cost(run.run_dir)
    if measured is None:
        return logged
    rest = {key: value for key, value in measured.items() if key != "items"}
    if not isinstance(measured.get("items"), list):
        return {**logged, "netcost": rest,
                "note": f"{LOG_SOURCE_NOTE}; network cost analysis: {measured.get('note', 'no per-link items')}"}
    return {"source": measured.get("source", "netcost"), "note": measured.get("note", ""),
            "items": measured["items"], **link_totals(run, measured["items"]), "netcost": rest}


def _network_cost(run_dir: Path) -> Optional[dict]:
    """``netcost.network_cost(run_dir)`` if that module exists and the run has ``net/``."""
    if not (run_dir / "net").is_dir():
        return None
    try:
        netcost = importlib.import_module("edgetestbed.analysis.netcost")
    except ModuleNotFoundError as error:
        if error.name != "edgetestbed.analysis.netcost":
            raise
        return None
    return netcost.network_cost(run_dir)
