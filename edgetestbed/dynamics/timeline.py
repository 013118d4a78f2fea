"""The run's events, applied when due on a thread of the run, each recorded with its probes.

For each link event in time order: probe the link before it is due (unless the link is
down), wait until it is due, apply it through the network, probe again (unless the link is
now down), and append its record to ``RUN/network_events.jsonl``. A change of rate probes the
rate too, at the rates configured before and after it (see :mod:`~edgetestbed.dynamics.probe`),
and starts its first probe earlier for it. A node event
(``crash``, ``restart``) is applied through the run's processes (:class:`Processes`: SIGKILL
by PID, or a new process that joins the running clock) and recorded without probes; so is a
``background`` flow, a UDP flow between two hosts (iperf3, outside their limits) whose
processes are recorded in the run's ledger and stopped with the timeline if still running.
A sensor's ``stop_sensor`` or ``start_sensor`` is kept by the sensor itself, from the spec by
the shared schedule (:func:`~edgetestbed.process.sampling.withheld`): it is only recorded
here, when due. A record is the event as the spec gives it (its ``describe()``) plus, in seconds from window
0's start, when it was ``due`` and when it was ``applied``, and the ``before`` and ``after``
probes (:class:`~edgetestbed.dynamics.probe.Probe`; ``null`` when not taken).

The thread applies events one after another, so an event due while an earlier one is still
being probed is applied late; its record says by how much (``applied - due``).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Union

from edgetestbed import ledger as resources
from edgetestbed.dynamics.probe import Probe, probe_link
from edgetestbed.errors import CapabilityError
from edgetestbed.measure.hosttools import MeasurementError, udp_flow
from edgetestbed.spec.model import FlowEvent, LinkEvent, NodeEvent, SensorEvent, Spec

if TYPE_CHECKING:
    from edgetestbed.topo.network import EmulatedNetwork

Event = Union[LinkEvent, NodeEvent, SensorEvent, FlowEvent]
RECORDS = "network_events.jsonl"
PROBE_LEAD_S = 0.5    # the probe before an event starts this long before it is due
RATE_PROBE_LEAD_S = 1.0   # ... and this long when it measures the rate too: pings, then a train


class Processes(Protocol):
    """What a timeline does to the run's processes (the runner's ``Experiment``)."""

    def crash(self, ident: str) -> float: ...     # SIGKILL; the unix time it was dead
    def restart(self, ident: str) -> float: ...   # a new process; the unix time it started


class Timeline:
    """Applies ``spec.events`` to ``network`` and ``processes`` from ``start_at`` (window 0's
    start, unix time)."""

    def __init__(self, spec: Spec, network: EmulatedNetwork, processes: Processes, run_dir: Path,
                 start_at: float, say: Callable[[str], None]) -> None:
        self.spec, self.network, self.processes = spec, network, processes
        self.start_at, self.say = start_at, say
        self.path = Path(run_dir) / RECORDS
        self.problem: Optional[str] = None
        self._down: set[str] = set()
        self._rates = {node.id: node.link.bw_mbit for node in spec.nodes if node.link is not None}
        self._flows: list[tuple[subprocess.Popen, dict]] = []   # background flows' processes, ledger entries
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No event is applied after this returns (one being applied finishes first)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        for process, entry in self._flows:
            if process.poll() is None:
                resources.remove(entry)
            process.wait()

    def failure(self) -> Optional[str]:
        """Why an event could not be applied (the run must stop), or None."""
        return self.problem

    def _run(self) -> None:
        for event in self.spec.events:
            due = self.start_at + event.offset(self.spec.windows.interval)
            link = event.link if isinstance(event, LinkEvent) else None
            new_rate = event.change.bw_mbit if link is not None and event.change is not None else None
            if not self._sleep_until(due - (PROBE_LEAD_S if new_rate is None else RATE_PROBE_LEAD_S)):
                return
            before = self._probe(link, None if new_rate is None else self._rates[link])
            if not self._sleep_until(due):
                return
            try:
                applied = self._apply(event)
            except (CapabilityError, MeasurementError, OSError, RuntimeError, ValueError) as error:
                self.problem = f"event {event.index} ({event.describe()['action']}) could not be applied: {error}"
                self._record(event, due, None, before, None, error=str(error))
                return
            if new_rate is not None:
                self._rates[link] = new_rate
            self._record(event, due, applied, before, self._probe(link, new_rate))

    def _apply(self, event: Event) -> float:
        """Apply ``event``; the unix time it took effect."""
        if isinstance(event, FlowEvent):
            return self._start_flow(event)
        if isinstance(event, SensorEvent):   # the sensor keeps it by the shared schedule: due is when
            return time.time()
        if isinstance(event, NodeEvent):
            return (self.processes.crash if event.action == "crash" else self.processes.restart)(event.node)
        if event.state is not None:
            applied = self.network.set_link_state(event.link, up=event.state == "up")
            (self._down.discard if event.state == "up" else self._down.add)(event.link)
            return applied
        return self.network.change_link(event.link, event.change)

    def _start_flow(self, flow: FlowEvent) -> float:
        """Start ``flow`` (its server, then its client, each recorded); the client's start time."""
        processes = udp_flow(self.network.host(flow.sender), self.network.host(flow.receiver), flow.rate_mbit,
                             flow.stop_s - flow.at_s)
        for process in processes:
            self._flows.append((process, self.network.ledger.record_process(process.pid, process.args)))
        return time.time()

    def _probe(self, link: Optional[str], rate_mbit: Optional[float]) -> Optional[Probe]:
        """The link's probe (its rate too, given the configured ``rate_mbit``), or None for a
        node event, when the link is down (a probe of a down link waits for nothing) or the
        probe failed (said, not fatal: the event itself was applied)."""
        if link is None or link in self._down:
            return None
        try:
            return probe_link(self.network.host(link), self.network.host(self.network.parent_of(link)), rate_mbit)
        except MeasurementError as error:
            self.say(f"events: the probe of {link}'s link failed: {error}")
            return None

    def _record(self, event: Event, due: float, applied: Optional[float], before: Optional[Probe],
                after: Optional[Probe], **extra: str) -> None:
        record = {**event.describe(), "due": round(due - self.start_at, 4),
                  "applied": None if applied is None else round(applied - self.start_at, 4),
                  "before": self._relative(before), "after": self._relative(after), **extra}
        with open(self.path, "a") as stream:
            stream.write(json.dumps(record) + "\n")
        self.say(f"event {event.index} at {record['due']:.1f} s: {_what(event)}{_measured(after)}")

    def _relative(self, probe: Optional[Probe]) -> Optional[dict]:
        return None if probe is None else {**probe.as_dict(), "at": round(probe.at - self.start_at, 4)}

    def _sleep_until(self, moment: float) -> bool:
        """Wait until ``moment``; False if the timeline was stopped first."""
        return not self._stopping.wait(max(0.0, moment - time.time()))


def _measured(probe: Optional[Probe]) -> str:
    """What the probe after an event measured, for the terminal."""
    if probe is None or probe.delay_ms is None:
        return ""
    rate = "" if probe.rate_mbit is None else f", rate {probe.rate_mbit:.2f} Mbit/s"
    return f"; measured delay {probe.delay_ms:.1f} ms{rate}"


def _what(event: Event) -> str:
    """The event in a few words: ``crash ps2``, ``down w1``, ``stop_sensor 3``, ``background w1 → root``."""
    if isinstance(event, SensorEvent):
        return f"{event.action}_sensor {event.sensor}"
    if isinstance(event, NodeEvent):
        return f"{event.action} {event.node}"
    return f"{event.name} {event.link}" if isinstance(event, LinkEvent) else f"background {event.sender} → {event.receiver}"
