"""The OpenFlow 1.3 app of a run: proactive L2 forwarding for the tree, port statistics to JSON lines.

Run by ``ryu-manager`` or ``osken-manager`` (see :mod:`edgetestbed.controller.service`), it
reads its configuration from the JSON file named by the environment variable
``EDGETESTBED_CONTROLLER_CONFIG``::

    {"interval": 1.0,                              # seconds between port-stats requests
     "portstats": "RUN/net/portstats.jsonl",
     "events": "RUN/net/controller.jsonl",
     "switches": {"1": {"name": "s1",              # datapath id (decimal) -> switch
                        "routes": {"00:00:00:00:00:01": 1, ...}}}}   # host MAC -> output port

**Forwarding is proactive**: when a switch connects, it gets one entry per host MAC (the
port towards that host along the tree), one that floods multicast and broadcast (loop-free
on a tree; IPv6 neighbour discovery), and a table-miss entry that drops. The tree and every
host's MAC are known before the first packet, so nothing is learnt: no packet ever goes to
the controller (no first-packet delay in the latency metrics, no controller CPU on the
shared cores while nodes train), and no unknown unicast is flooded onto links that are not
on its path, which a learning switch does until it has learnt and which would add bytes to
the cost of links that carry no exchange. Once every entry is in (a barrier reply), the
switch is logged ``ready`` and its first port statistics are requested at once (the baseline).

**Port statistics** of every switch port (not the bridge's ``LOCAL`` port) are requested
every ``interval`` seconds and written one line per port to ``portstats``::

    {"time": 1700000000.5, "dpid": "0000000000000001", "switch": "s1", "port": 2,
     "name": "s1-eth1", "rx_bytes": ..., "tx_bytes": ..., "rx_packets": ..., "tx_packets": ...,
     "rx_dropped": ..., "tx_dropped": ..., "rx_errors": ..., "tx_errors": ...}

``time`` is when the reply arrived; a counter the switch reports as 2^64-1 ("unavailable",
seen during shutdown) is written as ``null``. ``events`` gets ``{"time", "event", "dpid"}``
lines with ``event`` one of ``connected``, ``ready``, ``disconnected``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from edgetestbed.controller import CONFIG_ENV, UNAVAILABLE
from edgetestbed.controller.compat import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, BaseApp, hub, ofp_event,
                                           ofproto_v1_3, set_ev_cls)
from edgetestbed.controller.jsonlines import JsonLinesWriter

COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_dropped", "tx_dropped",
            "rx_errors", "tx_errors")
MISS_PRIORITY, FLOOD_PRIORITY, ROUTE_PRIORITY = 0, 1, 2
GROUP_BIT = "01:00:00:00:00:00"  # the Ethernet multicast/broadcast bit


def dpid_text(dpid: int) -> str:
    """A datapath id as OVS and Mininet write it: 16 hex digits."""
    return f"{dpid:016x}"


class TreeController(BaseApp):
    """Forwarding entries from the run's configuration, and periodic port statistics."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        with open(os.environ[CONFIG_ENV], encoding="utf-8") as stream:
            config = json.load(stream)
        self.interval = float(config["interval"])
        self.switches = {int(dpid): switch for dpid, switch in config["switches"].items()}
        self.stats_log = JsonLinesWriter(config["portstats"])
        self.event_log = JsonLinesWriter(config["events"])
        self.datapaths: dict[int, Any] = {}
        self.port_names: dict[tuple[int, int], str] = {}
        self.poller = hub.spawn(self._poll)

    def _event(self, event: str, dpid: int) -> None:
        self.event_log.write({"time": time.time(), "event": event, "dpid": dpid_text(dpid)})

    # --- forwarding -------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_features(self, ev) -> None:
        datapath = ev.msg.datapath
        self._event("connected", datapath.id)
        parser, ofproto = datapath.ofproto_parser, datapath.ofproto
        self._add_flow(datapath, MISS_PRIORITY, parser.OFPMatch(), [])
        self._add_flow(datapath, FLOOD_PRIORITY, parser.OFPMatch(eth_dst=(GROUP_BIT, GROUP_BIT)),
                       [parser.OFPActionOutput(ofproto.OFPP_FLOOD)])
        routes = self.switches.get(datapath.id, {}).get("routes", {})
        for mac, port in routes.items():
            self._add_flow(datapath, ROUTE_PRIORITY, parser.OFPMatch(eth_dst=mac),
                           [parser.OFPActionOutput(int(port))])
        datapath.send_msg(parser.OFPPortDescStatsRequest(datapath, 0))
        datapath.send_msg(parser.OFPBarrierRequest(datapath))

    @staticmethod
    def _add_flow(datapath, priority: int, match, actions: list) -> None:
        parser, ofproto = datapath.ofproto_parser, datapath.ofproto
        instructions = [parser.OFPInstructionActions(ofproto.OFPIT_APPLY_ACTIONS, actions)] if actions else []
        datapath.send_msg(parser.OFPFlowMod(datapath=datapath, priority=priority, match=match,
                                            instructions=instructions))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev) -> None:
        self._event("ready", ev.msg.datapath.id)
        self._request_stats(ev.msg.datapath)  # the baseline, before any traffic

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev) -> None:
        datapath = ev.datapath
        if ev.state == MAIN_DISPATCHER:
            self.datapaths[datapath.id] = datapath
        elif datapath.id in self.datapaths:
            del self.datapaths[datapath.id]
            self._event("disconnected", datapath.id)

    # --- port statistics ------------------------------------------------------------------

    def _poll(self) -> None:
        while True:
            for datapath in list(self.datapaths.values()):
                self._request_stats(datapath)
            hub.sleep(self.interval)

    @staticmethod
    def _request_stats(datapath) -> None:
        datapath.send_msg(datapath.ofproto_parser.OFPPortStatsRequest(datapath, 0, datapath.ofproto.OFPP_ANY))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc_reply(self, ev) -> None:
        dpid = ev.msg.datapath.id
        for port in ev.msg.body:
            name = port.name.decode() if isinstance(port.name, bytes) else port.name
            self.port_names[(dpid, port.port_no)] = name

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats_reply(self, ev) -> None:
        now = time.time()
        datapath = ev.msg.datapath
        switch = self.switches.get(datapath.id, {}).get("name")
        for stat in ev.msg.body:
            if stat.port_no > datapath.ofproto.OFPP_MAX:
                continue
            counters = {name: _available(getattr(stat, name)) for name in COUNTERS}
            self.stats_log.write({"time": now, "dpid": dpid_text(datapath.id), "switch": switch,
                                  "port": stat.port_no, "name": self.port_names.get((datapath.id, stat.port_no)),
                                  **counters})


def _available(value: int) -> int | None:
    return None if value == UNAVAILABLE else value
