"""One link's packet capture: bytes per direction and per message class, read as a stream.

The file is read record by record with scapy's ``RawPcapReader`` (never loaded whole); the
few header fields needed are unpacked directly from each record's first bytes, which is an
order of magnitude faster than dissecting every packet into scapy layers.

Per frame:

- **bytes**: the IPv4 total length; for a non-IPv4 frame its length less the 14-byte
  Ethernet header. Captures keep headers only, and this needs nothing beyond them. A GSO/GRO
  super-packet (up to 64 kB, seen where hosts hand TCP segmentation to the interface)
  counts what it carries with one set of headers, exactly as the kernel's counters do.
- **wire_bytes**: the same, with a TCP super-packet counted as the MTU-sized segments it
  becomes on a real link (each with its own IP and TCP headers; MTU 1500, Mininet's).
- **direction**: ``up`` if the source MAC is on the link's ``a`` side (the child, sensor
  or cloud), ``down`` if on its ``b`` side; ``unknown`` otherwise.
- **class**, from the ZeroMQ endpoints in ``wiring.json`` (a TCP connection's listening
  end is the endpoint it was made to):

  ``sensor data``  every packet of a connection to a sensor's endpoint (its PUB socket);
  ``model pull``   a ``MODEL`` reply and the ``PULL`` request that asked for it;
  ``update push``  a ``PUSH`` and the ``ACK`` that answered it;
  ``control``      the rest of a connection to a node's endpoint: TCP handshakes and
                   teardowns, ZMTP greetings, ``DONE`` and its ``ACK``;
  ``other``        anything else (IPv6 neighbour discovery, an iperf3 test, ...).

  On a node's endpoint a child sends one request and waits for its reply, so the
  connection's payload alternates direction message by message: a **burst** (the data
  segments sent one way until data flows the other way) is one message, or part of the
  ZMTP handshake. Bursts of at least ``model_threshold`` payload bytes carry a model: toward
  the listener (the parent) a ``PUSH``, away from it a ``MODEL``. A smaller burst toward the
  listener that is answered by a ``MODEL`` is its ``PULL``; a smaller burst away from the
  listener that answers a ``PUSH`` is its ``ACK``. A ``PULL`` answered ``NOT_MODIFIED`` (no
  weights) is two small bursts, like ``DONE`` and its ``ACK``: it counts as ``control`` here,
  while the logs (:mod:`~edgetestbed.analysis.linkbytes`) count it as ``model pull``; a few
  hundred bytes each. Pure acknowledgements count with the burst they acknowledge (the one
  in flight), so a class's bytes include the transport overhead it causes.

Given an ``interval`` (unix times, as the kernel stamps captured packets), the reader also
tallies per direction the frames stamped within it (``within``): the interface counters'
interval, for comparing like with like (see :mod:`edgetestbed.analysis.agreement`).
"""

from __future__ import annotations

import math
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional

from scapy.utils import RawPcapReader

from edgetestbed.measure.headers import ETHERNET_HEADER

MTU = 1500
ETHERTYPE_IPV4 = 0x0800
PROTOCOL_TCP = 6
SYN_FIN_RST = 0x07
UP, DOWN, UNKNOWN = "up", "down", "unknown"
SENSOR_DATA, MODEL_PULL, UPDATE_PUSH, CONTROL, OTHER = "sensor data", "model pull", "update push", "control", "other"
CLASSES = (SENSOR_DATA, MODEL_PULL, UPDATE_PUSH, CONTROL, OTHER)
SENSOR, NODE = "sensor", "node"


@dataclass
class Tally:
    """Bytes (IP total length), MTU-segmented wire bytes, frames and super-packets among them."""

    bytes: int = 0
    wire_bytes: int = 0
    packets: int = 0
    gso_packets: int = 0

    def add(self, size: int, wire: int) -> None:
        self.bytes += size
        self.wire_bytes += wire
        self.packets += 1
        self.gso_packets += wire != size

    def merge(self, other: "Tally") -> None:
        self.bytes += other.bytes
        self.wire_bytes += other.wire_bytes
        self.packets += other.packets
        self.gso_packets += other.gso_packets

    def as_dict(self) -> dict:
        return {"bytes": self.bytes, "wire_bytes": self.wire_bytes, "packets": self.packets,
                "gso_packets": self.gso_packets}


def _tallies() -> defaultdict:
    return defaultdict(Tally)


@dataclass
class Burst:
    """The data one end of a connection sent before the other end sent data, with the
    acknowledgements of it; tallied per link direction."""

    toward_listener: bool
    payload: int = 0
    by_direction: defaultdict = field(default_factory=_tallies)


@dataclass
class Conversation:
    """One TCP connection to a node's endpoint."""

    bursts: list[Burst] = field(default_factory=list)

    def add(self, direction: str, size: int, wire: int, payload: int, toward_listener: bool) -> None:
        current = self.bursts[-1] if self.bursts else None
        if payload and (current is None or current.toward_listener != toward_listener):
            current = Burst(toward_listener)
            self.bursts.append(current)
        if current is None:  # pure acknowledgements before the first data: the handshake
            current = Burst(not toward_listener)
            self.bursts.append(current)
        current.payload += payload
        current.by_direction[direction].add(size, wire)

    def classes(self, threshold: int) -> Iterable[tuple[str, Burst]]:
        """Each burst with its message class (see the module docstring). A small burst is
        ``model pull`` or ``update push`` only next to a model-carrying one, so a ``PULL``
        answered ``NOT_MODIFIED`` (two small bursts: the capture keeps headers only and cannot
        read the reply's type) is ``control``, and ``model pull`` bytes are those of exchanges
        that carried a model."""
        big = [burst.payload >= threshold for burst in self.bursts]
        for index, burst in enumerate(self.bursts):
            answer = index + 1 < len(self.bursts) and big[index + 1]
            answers = index > 0 and big[index - 1]
            if big[index]:
                yield (UPDATE_PUSH if burst.toward_listener else MODEL_PULL), burst
            elif burst.toward_listener and answer and not self.bursts[index + 1].toward_listener:
                yield MODEL_PULL, burst
            elif not burst.toward_listener and answers and self.bursts[index - 1].toward_listener:
                yield UPDATE_PUSH, burst
            else:
                yield CONTROL, burst


@dataclass
class LinkTraffic:
    """What one capture saw: tallies per direction, and per direction and message class."""

    directions: defaultdict = field(default_factory=_tallies)
    classes: defaultdict = field(default_factory=lambda: defaultdict(_tallies))
    messages: defaultdict = field(default_factory=lambda: defaultdict(int))  # model-carrying bursts per class
    within: defaultdict = field(default_factory=_tallies)  # per direction, the frames within the interval
    first: float | None = None
    last: float | None = None

    def add(self, direction: str, message_class: str, size: int, wire: int) -> None:
        self.directions[direction].add(size, wire)
        self.classes[direction][message_class].add(size, wire)

    def as_dict(self) -> dict:
        return {"directions": {d: t.as_dict() for d, t in self.directions.items()},
                "classes": {d: {c: t.as_dict() for c, t in by_class.items()} for d, by_class in self.classes.items()},
                "messages": dict(self.messages), "within": {d: t.as_dict() for d, t in self.within.items()},
                "first": self.first, "last": self.last}


def ipv4(address: str) -> bytes:
    return bytes(int(part) for part in address.split("."))


class LinkReader:
    """Reads one link's capture. ``listeners`` maps ``(IPv4 address, port)`` of each ZeroMQ
    endpoint to ``sensor`` or ``node``; ``a_macs``/``b_macs`` are the MACs of each side;
    ``interval`` (first, last), if given, the times whose frames ``within`` tallies."""

    def __init__(self, a_macs: Iterable[str], b_macs: Iterable[str], listeners: Mapping[tuple[str, int], str],
                 model_threshold: int, interval: Optional[tuple[float, float]] = None) -> None:
        self.side = {**{_mac(m): UP for m in a_macs}, **{_mac(m): DOWN for m in b_macs}}
        self.listeners = {(ipv4(ip), port): role for (ip, port), role in listeners.items()}
        self.threshold = model_threshold
        self.interval = interval
        self.traffic = LinkTraffic()
        self.conversations: dict[tuple, Conversation] = {}

    def read(self, path: Path) -> LinkTraffic:
        with RawPcapReader(str(path)) as reader:
            for data, meta in reader:
                self._frame(data, meta.wirelen, meta.sec + meta.usec / 1e6)
        self._settle()
        return self.traffic

    def _frame(self, data: bytes, wirelen: int, moment: float) -> None:
        traffic = self.traffic
        traffic.first = moment if traffic.first is None else traffic.first
        traffic.last = moment
        direction = self.side.get(data[6:12], UNKNOWN)
        size, wire = self._classify(direction, data, wirelen)
        if self.interval is not None and self.interval[0] <= moment <= self.interval[1]:
            traffic.within[direction].add(size, wire)

    def _classify(self, direction: str, data: bytes, wirelen: int) -> tuple[int, int]:
        """Tally one frame by class (TCP to a node's endpoint: once its burst is known); return
        its bytes and wire bytes."""
        if len(data) < 34 or struct.unpack_from("!H", data, 12)[0] != ETHERTYPE_IPV4:
            size = wirelen - ETHERNET_HEADER
            self.traffic.add(direction, OTHER, size, size)
            return size, size
        ihl = (data[14] & 0x0F) * 4
        size = struct.unpack_from("!H", data, 16)[0] or wirelen - ETHERNET_HEADER
        tcp = ETHERNET_HEADER + ihl
        if data[23] != PROTOCOL_TCP or len(data) < tcp + 14:
            self.traffic.add(direction, OTHER, size, size)
            return size, size
        source, target = data[26:30], data[30:34]
        sport, dport = struct.unpack_from("!HH", data, tcp)
        headers = ihl + (data[tcp + 12] >> 4) * 4
        payload = size - headers
        wire = _segmented(size, headers, payload)
        self._tcp(direction, size, wire, payload, data[tcp + 13], (source, sport), (target, dport))
        return size, wire

    def _tcp(self, direction: str, size: int, wire: int, payload: int, flags: int,
             source: tuple, target: tuple) -> None:
        toward = target in self.listeners
        listener = target if toward else source
        role = self.listeners.get(listener)
        if role is None:
            self.traffic.add(direction, OTHER, size, wire)
        elif role == SENSOR:
            self.traffic.add(direction, SENSOR_DATA, size, wire)
        elif flags & SYN_FIN_RST and not payload:
            self.traffic.add(direction, CONTROL, size, wire)
        else:
            key = (source, target) if toward else (target, source)
            conversation = self.conversations.setdefault(key, Conversation())
            conversation.add(direction, size, wire, payload, toward)

    def _settle(self) -> None:
        """Classify every burst of every conversation and add it to the totals."""
        for conversation in self.conversations.values():
            for message_class, burst in conversation.classes(self.threshold):
                if burst.payload >= self.threshold:
                    self.traffic.messages[message_class] += 1
                for direction, tally in burst.by_direction.items():
                    self.traffic.directions[direction].merge(tally)
                    self.traffic.classes[direction][message_class].merge(tally)
        self.conversations.clear()


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _segmented(size: int, headers: int, payload: int) -> int:
    """IP bytes of a TCP packet once cut into MTU-sized segments (itself if it fits)."""
    if size <= MTU or payload <= 0:
        return size
    segments = math.ceil(payload / (MTU - headers))
    return size + (segments - 1) * headers


def read_link(path: Path, a_macs: Iterable[str], b_macs: Iterable[str],
              listeners: Mapping[tuple[str, int], str], model_threshold: int,
              interval: Optional[tuple[float, float]] = None) -> LinkTraffic:
    """Read the capture at ``path``; see :class:`LinkReader`."""
    return LinkReader(a_macs, b_macs, listeners, model_threshold, interval).read(path)
