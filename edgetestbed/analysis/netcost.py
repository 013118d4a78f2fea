"""What each link of a run cost, from independent sources that must agree, and against a cost model.

``network_cost(run_dir)`` reads only files (no root, no Mininet): ``net/`` as
:mod:`edgetestbed.measure.meters` wrote it (``meters.json``, one pcap per link,
``counters.jsonl``, ``portstats.jsonl`` with OVS), ``wiring.json``, ``spec.yaml`` and the
processes' logs. Metrics put its result under ``metrics.json["links"]``.

Sources, per link and direction (``up`` is ``ends[0]`` → ``ends[1]``: child → parent,
sensor → worker, cloud → root; ``down`` the reverse), all at the link's capture interface
(the parent-side switch port, see :mod:`edgetestbed.measure.taps`) unless said otherwise:

``pcap``       the capture, read by :mod:`edgetestbed.analysis.pcap`: ``bytes`` (sum of IP
               total lengths of every frame captured: the link's cost), ``wire_bytes`` (the
               same with TCP super-packets counted as the MTU-sized segments they become on a
               real link), ``packets``, ``gso_packets``, ``by_class`` (bytes per message
               class); ``counter_interval_bytes`` and ``counter_interval_packets``: the same
               for the frames stamped within the counters' interval of the capture interface
               (first to last sample; None without counters), what the counters are checked
               against (see :mod:`edgetestbed.analysis.agreement`).
``counters``   kernel interface counters, last sample minus first: ``frame_bytes`` as the
               kernel counts them (Ethernet frames), ``bytes`` = ``frame_bytes`` − 14 ×
               ``packets`` (like for like with the capture's IP bytes: a veth counts each
               frame, super-packets included, with its 14-byte Ethernet header and nothing
               else), ``packets``, ``dropped``, ``errors``. ``up`` is the interface's receive
               side, ``down`` its transmit side.
``openflow``   the switch's OpenFlow port statistics of the same port (first and last
               sample), the same fields; None with Linux-bridge switches (no OpenFlow).
               With OVS these are the kernel's counters of the port as OVS reads them, taken
               at other moments by another path: they check the controller's view and the
               sampling, not the kernel's counting (the capture checks that).
``far_end``    kernel counters of the link's other end (``ends[0]``'s side): for ``up`` what
               it sent into the link, for ``down`` what it received from it. On a link with
               loss these differ from the capture interface by what was lost; with hosts
               that segment late (Linux bridges) they count super-packets. Not a wire
               source for the disagreement.
``payload``    what the processes logged: ``message_bytes`` (ZeroMQ messages incl. ZMTP
               framing: ``bytes`` of CONNECTION events of the sender, or of the receiver
               if the sender left no log; a sensor's STATISTIC ``bytes``), ``array_bytes``
               (the arrays alone: ``payload_bytes``; None for sensors, which do not log it),
               ``messages``.

Derived, per direction and for the link (``total``):

``disagreement``  largest relative difference between the capture and a source that checks
                  it, each over the same interval: counters ``bytes`` against
                  ``pcap.counter_interval_bytes``, openflow ``bytes`` against ``pcap.bytes``
                  (its samples enclose the capture); |a − b| / max(a, b); None with no check.
                  See :mod:`edgetestbed.analysis.agreement` for why and how precise.
``overhead``      ``pcap.wire_bytes / payload.message_bytes`` (transport and ZMTP overhead
                  and retransmissions; None without payload).

Per link: ``link``, ``kind``, ``ends``, ``params`` (bw_mbit, delay_ms, jitter_ms, loss_pct,
queue), ``capture_interface``, ``bytes``/``up_bytes``/``down_bytes`` and ``wire_bytes``
(from the capture: every frame it holds), ``by_class`` (both directions), ``model_messages`` (model-carrying
bursts the capture saw, per class), ``up``, ``down``, ``total`` (the sources summed over both
directions), ``capture`` (tcpdump's ``captured``, ``received``,
``dropped``), ``flagged`` and ``flags`` (why), and for tree links ``cost_model`` and
``exchanges``:

A link is **flagged** when its traffic exceeds ``MIN_BYTES`` (100 kB) and the disagreement of
its total, or of a direction that itself exceeds ``MIN_BYTES``, is above ``TOLERANCE`` (2 %);
or when the kernel dropped packets before tcpdump could take them (``capture.dropped`` > 0:
its buffer overflowed while traffic flowed). ``received`` − ``captured`` is not flagged: those
are the packets of the block libpcap had not yet handed over when tcpdump was stopped, which
arrived after the run's traffic had ended (see :mod:`edgetestbed.measure.meters`); had any
traffic been cut off, the counters would disagree with the capture.

``cost_model`` (the child's policy ``simple`` only, else ``{"policy": ..., "applies": false}``):
the model transfers the protocol makes on the link (a pull on joining, a pull and a push per
step, the final synchronisation's pulls as the logs recorded them) in bytes with TCP/IP
overhead, against the capture; see :mod:`edgetestbed.analysis.costmodel` for what it assumes
and its fields.

``exchanges`` (from the child's log): every request the child sent (PULL, PUSH) matched
with its reply (MODEL, ACK) by sequence number; ``time`` from the first send of the request
to the reply's arrival, against ``expected`` = 2 × delay + (request + reply message bytes) ×
(1 + ``TCP_OVERHEAD``) × 8 / bandwidth of the link (access links are unshaped). Per kind
(``pull``, ``push``): ``count``, ``median_s``, ``max_s``, ``expected_median_s``,
``median_ratio``; and ``items``: ``{kind, seq, window, bytes, time_s, expected_s}``. TCP
restarts slow start after an idle window, so a model's transfer takes a few round trips more
than size / bandwidth: ratios above 1 are expected on links with delay.

Top level: ``source``, ``note`` (what the bytes are, naming only the other wire sources some
link of this run had: no OpenFlow with Linux-bridge switches), ``items`` (the links above, in
plan order), ``tolerance``, ``min_bytes``, ``flagged`` (labels), ``max_disagreement`` (over
links above ``MIN_BYTES``), ``sources`` (which sources the run has), ``controller`` (as the
run recorded it: used or why not), ``total_bytes``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from edgetestbed.analysis.agreement import MIN_BYTES, TOLERANCE, counter_deltas, flags, total
from edgetestbed.analysis.agreement import WIRE_SOURCES, disagreement  # noqa: F401  (re-exported)
from edgetestbed.analysis.costmodel import MODEL_CARRIERS, TCP_OVERHEAD, cost_model
from edgetestbed.analysis.costmodel import MSS, SEGMENT_HEADERS  # noqa: F401  (re-exported: tests use them from here)
from edgetestbed.analysis.definitions import ratio
from edgetestbed.analysis.linkbytes import centralized_messages
from edgetestbed.analysis.pcap import CLASSES, DOWN, UP, LinkTraffic, read_link
from edgetestbed.analysis.runlogs import Event, RunLogs
from edgetestbed.controller import UNAVAILABLE
from edgetestbed.controller.jsonlines import read_json_lines
from edgetestbed.measure.headers import ETHERNET_HEADER
from edgetestbed.process.eventlog import STATISTIC
from edgetestbed.process.protocol import ACK, MODEL, NOT_MODIFIED, PULL, PUSH
from edgetestbed.process.wiring import Wiring
from edgetestbed.spec.plan import sensor_id

SOURCE = "packet captures"
NOTE = "IP bytes per link from a packet capture at the link's parent-side switch port"
CHECKS = {"counters": "interface counters", "openflow": "OpenFlow port statistics"}
DEFAULT_MODEL_THRESHOLD = 1024  # bytes of a burst that carries a model, when no log says better
REPLIES = {PULL: (MODEL, NOT_MODIFIED), PUSH: (ACK,)}   # a request's possible replies


def network_cost(run_dir: Path) -> dict:
    """Per-link network cost of the run in ``run_dir``; see the module docstring."""
    run_dir = Path(run_dir)
    meters_path = run_dir / "net" / "meters.json"
    if not meters_path.is_file():
        return {"source": SOURCE, "note": "the run did not measure its network (no net/meters.json)"}
    meters = json.loads(meters_path.read_text())
    run = RunLogs.read(run_dir)
    context = _Context(run, meters)
    items = [_link_item(context, tap) for tap in meters["links"]]
    checked = [item["total"]["disagreement"] for item in items
               if item["bytes"] > MIN_BYTES and item["total"]["disagreement"] is not None]
    return {"source": SOURCE, "note": note(items), "items": items, "tolerance": TOLERANCE, "min_bytes": MIN_BYTES,
            "flagged": [item["link"] for item in items if item["flagged"]],
            "max_disagreement": max(checked, default=None), "sources": context.sources(),
            "controller": meters.get("controller"), "total_bytes": sum(item["bytes"] for item in items)}


def note(items: Iterable[Mapping[str, Any]]) -> str:
    """What the bytes are and which other wire sources checked them: only those some link had
    (a Linux-bridge switch has no OpenFlow; a run without counters.jsonl no counters)."""
    items = list(items)
    used = [name for source, name in CHECKS.items() if any(item[d][source] for item in items for d in (UP, DOWN))]
    if not used:
        return f"{NOTE}; no other wire source to check it against"
    return f"{NOTE}, checked against {' and '.join(used)}"


class _Context:
    """What every link's analysis shares: the run's logs, endpoints and sampled counters."""

    def __init__(self, run: RunLogs, meters: dict) -> None:
        self.run = run
        self.meters = meters
        self.net_dir = run.run_dir / "net"
        self.listeners = _listeners(run)
        self.counters, self.counter_times = counter_deltas(read_json_lines(self.net_dir / "counters.jsonl"))
        self.portstats = _port_deltas(read_json_lines(self.net_dir / "portstats.jsonl"))

    def sources(self) -> list[str]:
        present = ["pcap", "payload"]
        present += ["counters"] if self.counters else []
        present += ["openflow"] if self.portstats else []
        return present


def _port_deltas(lines: list[dict]) -> dict[tuple[str, int], dict[str, Optional[int]]]:
    """(dpid, port) -> counter -> last minus first available value (null and 2^64-1 are not)."""
    first: dict[tuple, dict] = {}
    last: dict[tuple, dict] = {}
    for line in lines:
        key = (line["dpid"], line["port"])
        for name, value in line.items():
            if name.startswith(("rx_", "tx_")) and value not in (None, UNAVAILABLE):
                first.setdefault(key, {}).setdefault(name, value)
                last.setdefault(key, {})[name] = value
    return {key: {name: last[key][name] - value for name, value in first[key].items()} for key in first}


def _listeners(run: RunLogs) -> dict[tuple[str, int], str]:
    """(address, port) of every ZeroMQ endpoint -> ``sensor`` or ``node``."""
    path = run.run_dir / "wiring.json"
    if not path.is_file():
        return {}
    sensors = {sensor_id(index) for index in run.spec.sensor_ids}
    return {(endpoint.host, endpoint.port): ("sensor" if ident in sensors else "node")
            for ident, endpoint in Wiring.load(path).endpoints.items()}


# --- one link -------------------------------------------------------------------------------

def _link_item(context: _Context, tap: dict) -> dict:
    child, parent = tap["ends"]
    messages = _link_messages(context.run, tap)
    traffic = read_link(context.net_dir / tap["pcap"], tap["a_macs"], tap["b_macs"], context.listeners,
                        _model_threshold(messages[UP] + messages[DOWN]), context.counter_times.get(tap["capture"]))
    directions = {direction: _direction(context, tap, traffic, direction, messages[direction])
                  for direction in (UP, DOWN)}
    summed = total(directions.values())
    pcap = {d: directions[d]["pcap"] for d in (UP, DOWN)}
    item = {"link": tap["label"], "kind": tap["kind"], "ends": [child, parent], "params": tap["params"],
            "capture_interface": tap["capture"],
            "bytes": pcap[UP]["bytes"] + pcap[DOWN]["bytes"], "up_bytes": pcap[UP]["bytes"],
            "down_bytes": pcap[DOWN]["bytes"], "wire_bytes": pcap[UP]["wire_bytes"] + pcap[DOWN]["wire_bytes"],
            "by_class": {c: pcap[UP]["by_class"].get(c, 0) + pcap[DOWN]["by_class"].get(c, 0) for c in CLASSES
                         if c in pcap[UP]["by_class"] or c in pcap[DOWN]["by_class"]},
            "model_messages": dict(traffic.messages), UP: directions[UP], DOWN: directions[DOWN], "total": summed,
            "capture": context.meters.get("captures", {}).get(tap["label"], {})}
    item["flags"] = flags(item)
    item["flagged"] = bool(item["flags"])
    if tap["kind"] == "tree":
        run = context.run   # each direction as its sender logged it (its receiver, if the sender left no log)
        item["cost_model"] = cost_model(run, child, item, run.sent(parent, child, or_received=True),
                                        run.sent(child, parent, or_received=True))
        item["exchanges"] = exchanges(context.run, child, parent, tap["params"])
    return item


def _link_messages(run: RunLogs, tap: dict) -> dict[str, list[dict]]:
    """Per direction, what the processes logged sending across the link (see ``payload``)."""
    child, parent = tap["ends"]
    if tap["kind"] == "sensor":
        return {UP: [{"bytes": e.payload.get("bytes", 0), "payload_bytes": None}
                     for e in run.events(child, STATISTIC)], DOWN: []}
    if run.spec.centralized:   # raw samples only: as the sensors below logged them, and the cloud got them
        up, down = centralized_messages(run, tap["kind"], child)
        return {UP: [{"bytes": size, "payload_bytes": None} for size in up],
                DOWN: [{"bytes": size, "payload_bytes": None} for size in down]}
    if tap["kind"] == "wan":
        return {UP: [], DOWN: []}  # the cloud regenerates its samples: nothing is sent
    return {UP: [e.payload for e in run.sent(child, parent, or_received=True)],
            DOWN: [e.payload for e in run.sent(parent, child, or_received=True)]}


def _model_threshold(messages: list[dict]) -> int:
    """Half the smallest model-carrying message logged: bursts at least that big carry a model."""
    sizes = [m["bytes"] for m in messages if m.get("kind") in MODEL_CARRIERS and m.get("payload_bytes")]
    return min(sizes) // 2 if sizes else DEFAULT_MODEL_THRESHOLD


def _direction(context: _Context, tap: dict, traffic: LinkTraffic, direction: str, messages: list[dict]) -> dict:
    ends = tap["ends"] if direction == UP else tap["ends"][::-1]
    tally = traffic.directions.get(direction)
    pcap = {**(tally.as_dict() if tally else {"bytes": 0, "wire_bytes": 0, "packets": 0, "gso_packets": 0}),
            "by_class": {c: t.bytes for c, t in traffic.classes.get(direction, {}).items()},
            **_within_counters(context, tap, traffic, direction)}
    side = "rx" if direction == UP else "tx"
    counters = _counter_source(context.counters.get(tap["capture"]), side)
    openflow = None
    if tap.get("openflow"):
        openflow = _counter_source(context.portstats.get((tap["openflow"]["dpid"], tap["openflow"]["port"])), side)
    far_name = tap["interfaces"][0]["name"]
    far_end = _counter_source(context.counters.get(far_name), "tx" if direction == UP else "rx")
    payload = _payload(messages)
    entry = {"from": ends[0], "to": ends[1], "pcap": pcap, "counters": counters, "openflow": openflow,
             "far_end": far_end and {"interface": far_name, **far_end}, "payload": payload}
    entry["disagreement"] = disagreement(entry)
    entry["overhead"] = ratio(pcap["wire_bytes"], payload["message_bytes"])
    return entry


def _within_counters(context: _Context, tap: dict, traffic: LinkTraffic, direction: str) -> dict:
    """The capture's frames within the counters' interval of its interface (None: no counters)."""
    if tap["capture"] not in context.counter_times:
        return {"counter_interval_bytes": None, "counter_interval_packets": None}
    within = traffic.within.get(direction)
    return {"counter_interval_bytes": within.bytes if within else 0,
            "counter_interval_packets": within.packets if within else 0}


def _counter_source(delta: Optional[Mapping[str, Any]], side: str) -> Optional[dict]:
    """One side (``rx``/``tx``) of an interface's counter deltas, in IP-equivalent bytes."""
    if not delta or delta.get(f"{side}_bytes") is None or delta.get(f"{side}_packets") is None:
        return None
    frames, packets = delta[f"{side}_bytes"], delta[f"{side}_packets"]
    return {"bytes": frames - ETHERNET_HEADER * packets, "frame_bytes": frames, "packets": packets,
            "dropped": delta.get(f"{side}_dropped"), "errors": delta.get(f"{side}_errors")}


def _payload(messages: list[dict]) -> dict:
    arrays = [m.get("payload_bytes") for m in messages]
    return {"message_bytes": sum(m.get("bytes", 0) for m in messages),
            "array_bytes": sum(arrays) if arrays and None not in arrays else None, "messages": len(messages)}


# --- the exchanges ---------------------------------------------------------------------------

def exchanges(run: RunLogs, child: str, parent: str, params: Mapping[str, Any]) -> dict:
    """The child's request/reply exchanges with its parent, timed against latency + size / bandwidth."""
    events = run.connections(child, parent)
    first_sent: dict[Any, Event] = {}
    items = []
    for event in events:
        fields = event.payload
        if fields.get("direction") == "sent" and fields.get("kind") in REPLIES:
            first_sent.setdefault(fields.get("seq"), event)
            continue
        request = first_sent.pop(fields.get("seq"), None)
        if request is None or fields.get("kind") not in REPLIES[request.payload["kind"]]:
            continue
        size = request.payload.get("bytes", 0) + fields.get("bytes", 0)
        items.append({"kind": request.payload["kind"].lower(), "seq": fields.get("seq"),
                      "window": request.payload.get("window"), "bytes": size,
                      "time_s": event.ts - request.ts, "expected_s": expected_time(size, params)})
    return {"items": items, **{kind: _summary([i for i in items if i["kind"] == kind]) for kind in ("pull", "push")}}


def expected_time(size: int, params: Mapping[str, Any]) -> float:
    """Round trip plus the time to send ``size`` message bytes (with TCP/IP headers) at the link's rate."""
    transfer = size * (1 + TCP_OVERHEAD) * 8 / (params["bw_mbit"] * 1e6) if params.get("bw_mbit") else 0.0
    return 2 * (params.get("delay_ms") or 0.0) / 1000 + transfer


def _summary(items: list[dict]) -> dict:
    if not items:
        return {"count": 0}
    times = [i["time_s"] for i in items]
    expected = [i["expected_s"] for i in items]
    return {"count": len(items), "median_s": statistics.median(times), "max_s": max(times),
            "expected_median_s": statistics.median(expected),
            "median_ratio": statistics.median(i["time_s"] / i["expected_s"] for i in items if i["expected_s"])
            if any(expected) else None}
