"""Do a link's wire sources agree? Each source that checks the capture, over the capture's
packets of that source's own interval.

The captures are started one after another before the interface counters' first sample, and
stopped one after another after their last (:mod:`edgetestbed.measure.meters`), so every capture
covers a longer interval than the counters on both ends. Background frames there (IPv6
neighbour discovery, MLD, ...) are in the capture only: on a direction that carries little
else they used to make the two disagree by several per cent. So the counters are compared
with the capture's frames stamped within ``[first sample's time, last sample's time]`` of the
capture interface (``pcap.counter_interval_bytes``); the capture's ``bytes``, the link's cost,
stay every frame it holds.

How precise that is: a sample reads one ``/proc/<pid>/net/dev`` per namespace, in no set
order, and records its time once it has read them all (the README's default run, 60
interfaces: each periodic sample came 1.5-3 ms later than the interval, which is how long one
takes); the kernel stamps a captured frame when it reaches the capture. A frame within those
milliseconds of a sample may fall on the other side of it than the counters put it: around the
first and last samples traffic is background only, so a frame or two (tens of bytes, 0.2 % of
a quiet direction's 20 kB in the runs checked), far below ``MIN_BYTES`` × ``TOLERANCE``.

OpenFlow port statistics are compared with the whole capture, as before: the controller starts
before the captures and takes its last statistics after they stopped, so their interval
encloses the capture's and no part of the capture matches it better. The counters and OpenFlow
are not compared directly (they cover different intervals); each is compared with the capture.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

TOLERANCE = 0.02
MIN_BYTES = 100_000
WIRE_SOURCES = ("pcap", "counters", "openflow")
CHECKS = ("counters", "openflow")
WITHIN_COUNTERS = "counter_interval_bytes"   # the capture's bytes within the counters' interval


def counter_deltas(samples: list[dict]) -> tuple[dict[str, dict[str, int]], dict[str, tuple[float, float]]]:
    """Interface -> counter -> last minus first sample; and interface -> (time of its first
    sample, time of its last): an interface may be missing from some samples (a host gone)."""
    first: dict[str, dict] = {}
    last: dict[str, dict] = {}
    times: dict[str, tuple[float, float]] = {}
    for sample in samples:
        for name, counters in sample["interfaces"].items():
            first.setdefault(name, counters)
            last[name] = counters
            times[name] = (times.get(name, (sample["time"],))[0], sample["time"])
    deltas = {name: {key: last[name][key] - first[name][key] for key in first[name]} for name in first}
    return deltas, times


def captured_for(pcap: Mapping[str, Any], source: str) -> int:
    """The capture's bytes to set against ``source``: within the counters' interval for the
    counters (all of them if the reader had no interval), all of them for OpenFlow."""
    if source == "counters" and pcap.get(WITHIN_COUNTERS) is not None:
        return pcap[WITHIN_COUNTERS]
    return pcap["bytes"]


def disagreement(entry: Mapping[str, Any]) -> Optional[float]:
    """Largest |source − capture| / max(source, capture) over the checking sources present in
    ``entry``, each against the capture over its own interval; None with no source to check."""
    pcap = entry.get("pcap")
    if not pcap:
        return None
    parts = []
    for source in CHECKS:
        if entry.get(source):
            counted, captured = entry[source]["bytes"], captured_for(pcap, source)
            if max(counted, captured) > 0:
                parts.append(abs(counted - captured) / max(counted, captured))
    return max(parts, default=None)


def total(directions: Iterable[Mapping[str, Any]]) -> dict:
    """The wire sources summed over both directions (None where a direction lacks one), with
    their disagreement."""
    directions = list(directions)
    summed: dict[str, Any] = {}
    for source in WIRE_SOURCES:
        parts = [d[source] for d in directions]
        summed[source] = {"bytes": sum(p["bytes"] for p in parts)} if all(parts) else None
    within = [d["pcap"].get(WITHIN_COUNTERS) for d in directions]
    if summed["pcap"] is not None and None not in within:
        summed["pcap"][WITHIN_COUNTERS] = sum(within)
    summed["disagreement"] = disagreement(summed)
    return summed


def flags(item: Mapping[str, Any]) -> list[str]:
    """Why a link's measurement is not to be trusted (see :mod:`edgetestbed.analysis.netcost`)."""
    found = []
    if item["bytes"] > MIN_BYTES:
        for name in ("total", "up", "down"):
            part = item[name]
            heavy = name == "total" or part["pcap"]["bytes"] > MIN_BYTES
            if heavy and part["disagreement"] is not None and part["disagreement"] > TOLERANCE:
                found.append(f"{name}: wire sources disagree by {part['disagreement']:.1%} ({_figures(part)})")
    if item["capture"].get("dropped"):
        found.append(f"the kernel dropped {item['capture']['dropped']} packets before tcpdump took them")
    return found


def _figures(part: Mapping[str, Any]) -> str:
    """The bytes each source counted, the capture's within the counters' interval too."""
    pcap = part["pcap"]
    within = pcap.get(WITHIN_COUNTERS)
    text = [f"pcap {pcap['bytes']}" + (f" ({within} in the counters' interval)"
                                       if within is not None and part.get("counters") else "")]
    return ", ".join(text + [f"{s} {part[s]['bytes']}" for s in CHECKS if part.get(s)])
