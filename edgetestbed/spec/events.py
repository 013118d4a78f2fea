"""The spec's ``events``: link changes and node faults during a run, checked against the tree and the run, resolved.

Checked on the resolved nodes (a link's ``bw`` may come from ``defaults``), each problem
at the event's line and field::

    topo.yaml:31: events[2].link: 'root' is the root: the root has no link to a parent; expected the id of
        another node: ps1, w1, w2
    topo.yaml:33: events[3].window: 12 is past the run's end; expected a window of 0 .. 9 (windows.limit is 10)

What is refused: a link that is no node's, or the root's; a time at or past the run's end
(``windows.interval`` × ``windows.limit``); two events on one link at the same time;
``down`` on a link already down, ``up`` on one that is not; ``set: {bw: ...}`` on a link
without a ``bw`` (its rate limiter is only installed on links that have one); and any event
on the loopback backend (no link is emulated).

Node faults: ``partition: X`` and ``heal: X`` are ``down`` and ``up`` of X's link (a
:class:`~edgetestbed.spec.model.LinkEvent` named so), checked as those; ``crash: X`` and
``restart: X`` are :class:`~edgetestbed.spec.model.NodeEvent`. Refused besides: a fault of an
unknown node or of the root; a crash of a node already crashed, a restart of one not crashed;
a crash never followed by a restart (the run would wait for the node until its timeout); two
events on one node (or its link) at the same instant; any crash or restart in a centralized
run (``cloud: {mode: centralized}``), whose tree nodes run no process.

Sensors: ``stop_sensor: K`` and ``start_sensor: K`` (:class:`~edgetestbed.spec.model.SensorEvent`)
name a sensor index of the spec; a stop of a sensor already stopped, a start of one not
stopped, and two events on one sensor at once are refused. They change no link, so a spec
whose only events they are may run on the loopback backend.

Background flows (:class:`~edgetestbed.spec.model.FlowEvent`) carry their own times (``start``,
``stop``): refused besides are a flow from or to an unknown node, from a node to itself, and one
that does not stop after it starts, within the run.

Churn's events (:mod:`~edgetestbed.spec.churn`) are checked here with the file's, their
problems placed at their trace's line and column or at ``churn.nodes``.

The resolved events are ordered by time, then by their position in the file;
:func:`event_input` writes one back for ``Spec.to_dict``.
"""

from __future__ import annotations

from typing import Sequence

from edgetestbed.params.fields import did_you_mean
from edgetestbed.params.units import format_duration, quote
from edgetestbed.spec.churn import Churned, Place
from edgetestbed.spec.eventsin import NODE_FAULTS, SENSOR_ACTIONS, BackgroundIn, EventIn, LinkSetIn
from edgetestbed.spec.model import (FlowEvent, LinkChange, LinkEvent, NetworkSpec, NodeEvent, NodeSpec, SensorEvent,
                                    WindowsSpec)
from edgetestbed.spec.problems import Problems
from edgetestbed.spec.schema import SpecIn

Event = LinkEvent | NodeEvent | SensorEvent | FlowEvent

# input key -> LinkChange field
CHANGE_FIELDS = {"delay": "delay_ms", "jitter": "jitter_ms", "loss": "loss_pct", "bw": "bw_mbit"}
SAME_TIME = 6   # decimals of a second: offsets equal to a microsecond are the same instant


def resolve_events(model: SpecIn, nodes: Sequence[NodeSpec], windows: WindowsSpec, network: NetworkSpec,
                   problems: Problems, churned: Churned = ()) -> tuple[Event, ...]:
    """The events, the file's and ``churned`` (:mod:`~edgetestbed.spec.churn`'s, each with its place),
    ordered by offset then index, after adding every problem to ``problems``."""
    if not model.events and not churned:
        return ()
    # a sensor stopped or started changes no link: it needs no emulated network
    on_the_network = [given for given in model.events if all(getattr(given, key) is None for key in SENSOR_ACTIONS)]
    if on_the_network and not network.emulated:
        problems.add(("events",), "events on links and nodes need an emulated network; the loopback backend "
                     "emulates no link; expected network: {backend: mininet}, or only stop_sensor and "
                     "start_sensor events")
    report = _Report(problems, {event.index: place for event, place in churned})
    events = [_event(index, given) for index, given in enumerate(model.events)] + [event for event, _ in churned]
    by_id = {node.id: (position, node) for position, node in enumerate(nodes)}
    flows = [event for event in events if isinstance(event, FlowEvent)]
    for flow in flows:
        _check_flow(flow, by_id, windows, report)
    placed = [event for event in events if event not in flows   # churn's nodes and times are checked already
              and (event.index in report.places or (_check_node(event, by_id, model, report)
                                                    and _check_time(event, windows, report)))]
    _check_sequence(placed, windows.interval, report)
    _check_restarts(placed, windows, report)
    if model.cloud is not None and model.cloud.mode == "centralized":
        _check_centralized(events, report)
    return tuple(sorted(events, key=lambda event: (event.offset(windows.interval), event.index)))


class _Report:
    """``problems``, with a churn event's problems placed where it came from: its trace's line
    and column (``down_at`` for a crash, ``up_at`` for a restart) or the spec's ``churn.nodes`` entry."""

    def __init__(self, problems: Problems, places: dict[int, Place]) -> None:
        self.problems, self.places = problems, places

    def add(self, path: tuple, message: str) -> None:
        place = self.places.get(path[1]) if len(path) > 1 and path[0] == "events" else None
        if place is None:
            self.problems.add(path, message)
        else:
            self.problems.add(place.path, message, place.line, place.source)

    def cite(self, event: Event) -> str:
        """How another problem names ``event``: ``events[2], line 21``, ``churn availability.csv:3``."""
        if event.index in self.places:
            return f"churn {self.places[event.index].cite}"
        return f"events[{event.index}], line {self.problems.line(('events', event.index))}"


def _event(index: int, given: EventIn) -> Event:
    if (flow := given.background) is not None:
        return FlowEvent(index, flow.sender, flow.to, flow.rate, flow.start, flow.stop)
    if (sensor := next((key for key in SENSOR_ACTIONS if getattr(given, key) is not None), None)) is not None:
        return SensorEvent(index, getattr(given, sensor), given.at, given.window, sensor.removesuffix("_sensor"))
    fault = next((key for key in NODE_FAULTS if getattr(given, key) is not None), None)
    if fault in ("crash", "restart"):
        return NodeEvent(index, getattr(given, fault), given.at, given.window, fault)
    if fault is not None:   # partition, heal: the node's link to its parent down, up
        return LinkEvent(index, getattr(given, fault), given.at, given.window, None,
                         "down" if fault == "partition" else "up", fault)
    change = None
    if given.set is not None:
        change = LinkChange(**{CHANGE_FIELDS[key]: getattr(given.set, key) for key in given.set.model_fields_set})
    state = "down" if given.down else "up" if given.up else None
    return LinkEvent(index, given.link, given.at, given.window, change, state)


def _subject(event: Event) -> str:
    if isinstance(event, SensorEvent):
        return event.ident
    return event.node if isinstance(event, NodeEvent) else event.link


def _key(event: Event) -> str:
    """The event's field naming its node or sensor: ``link``, ``crash``, ``restart``, ``partition``,
    ``heal``, ``stop_sensor`` or ``start_sensor``."""
    if isinstance(event, SensorEvent):
        return f"{event.action}_sensor"
    if isinstance(event, NodeEvent):
        return event.action
    return event.name if event.name in NODE_FAULTS else "link"


ROOT_REASONS = {"link": "the root has no link to a parent",
                "partition": "the root has no parent to be cut off from",
                "heal": "the root has no parent to be cut off from",
                "crash": "the root cannot crash: the run ends with it",
                "restart": "the root cannot crash, so it cannot restart: the run ends with it"}


def _check_sensor(event: SensorEvent, by_id: dict[str, tuple[int, NodeSpec]], problems: _Report) -> bool:
    """True when the event names a sensor of the spec."""
    sensors = sorted(index for _, node in by_id.values() for index in node.sensors)
    if event.sensor in sensors:
        return True
    problems.add(("events", event.index, _key(event)), f"no sensor {event.sensor} in the spec; expected the index "
                 f"of a sensor that a worker lists: {', '.join(map(str, sensors))}")
    return False


def _check_node(event: Event, by_id: dict[str, tuple[int, NodeSpec]], model: SpecIn, problems: _Report) -> bool:
    """True when the event names a node other than the root (with a bw if it sets one); for a
    sensor's event, a sensor of the spec."""
    if isinstance(event, SensorEvent):
        return _check_sensor(event, by_id, problems)
    others = [node.id for _, node in by_id.values() if not node.is_root]
    expected = f"expected the id of a node other than the root: {', '.join(others)}"
    subject, key = _subject(event), _key(event)
    if subject not in by_id:
        problems.add(("events", event.index, key), f"unknown node {quote(subject)}"
                     f"{did_you_mean(subject, others)}; {expected}")
        return False
    position, node = by_id[subject]
    if node.is_root:
        problems.add(("events", event.index, key), f"{quote(subject)} is the root: {ROOT_REASONS[key]}; {expected}")
        return False
    if isinstance(event, LinkEvent) and event.change is not None and event.change.bw_mbit is not None \
            and node.link.bw_mbit is None:
        where = f"nodes[{position}].link" if model.nodes[position].link is not None else "defaults.link"
        problems.add(("events", event.index, "set", "bw"), f"{event.link}'s link has no bw in the spec; "
                     f"expected a bw on it ({where}) to change it during a run, because the rate limiter "
                     "is only installed on links that have one")
    return True


def _check_centralized(events: Sequence[Event], problems: _Report) -> None:
    """A centralized run starts no process on the tree's nodes: none can crash or restart."""
    for event in events:
        if isinstance(event, NodeEvent):
            problems.add(("events", event.index, event.action), f"{event.action}: {event.node} in a centralized "
                         f"run, where the tree's nodes run no process; expected no {event.action} events (nor churn), "
                         "or cloud: {mode: baseline}")


def _check_flow(flow: FlowEvent, by_id: dict[str, tuple[int, NodeSpec]], windows: WindowsSpec,
                problems: _Report) -> None:
    """A flow joins two different nodes and runs a while within the run."""
    path, nodes = ("events", flow.index, "background"), list(by_id)
    for key, node in (("from", flow.sender), ("to", flow.receiver)):
        if node not in by_id:
            problems.add((*path, key), f"unknown node {quote(node)}{did_you_mean(node, nodes)}; expected the id "
                         f"of a node: {', '.join(nodes)}")
    if flow.sender == flow.receiver:
        problems.add((*path, "to"), f"{flow.receiver} is also the flow's from; expected another node")
    end = windows.interval * windows.limit
    if flow.at_s >= end or flow.stop_s > end:
        key, value = ("start", flow.at_s) if flow.at_s >= end else ("stop", flow.stop_s)
        problems.add((*path, key), f"{format_duration(value)} is past the run's end; expected at most "
                     f"{format_duration(end)} (windows.interval × windows.limit)")
    elif flow.stop_s <= flow.at_s:
        problems.add((*path, "stop"), f"{format_duration(flow.stop_s)} is not after start "
                     f"({format_duration(flow.at_s)}); expected a later time")


def _check_time(event: LinkEvent, windows: WindowsSpec, problems: _Report) -> bool:
    """True when the event falls within the run."""
    end = windows.interval * windows.limit
    if event.window is not None and event.window >= windows.limit:
        problems.add(("events", event.index, "window"), f"{event.window} is past the run's end; expected a "
                     f"window of 0 .. {windows.limit - 1} (windows.limit is {windows.limit})")
        return False
    if event.at_s is not None and event.at_s >= end:
        problems.add(("events", event.index, "at"), f"{format_duration(event.at_s)} is past the run's end; "
                     f"expected less than {format_duration(end)} (windows.interval × windows.limit: "
                     f"{windows.limit} × {format_duration(windows.interval)})")
        return False
    return True


def _check_sequence(events: list[Event], interval: float, problems: _Report) -> None:
    """No two events on a node (or its link) at once; ``down`` (``partition``) only on a link
    that is up, ``up`` (``heal``) on one down; ``crash`` only of a node running, ``restart`` of one crashed."""
    last: dict[str, Event] = {}       # node -> its previous event
    downed: dict[str, LinkEvent] = {}   # link -> the event that downed it, while down
    crashed: dict[str, NodeEvent] = {}  # node -> the event that crashed it, while crashed
    stopped: dict[str, SensorEvent] = {}  # sensor -> the event that stopped it, while stopped
    for event in sorted(events, key=lambda event: (round(event.offset(interval), SAME_TIME), event.index)):
        subject = _subject(event)
        previous, when = last.get(subject), _when(event, interval)
        last[subject] = event
        if previous is not None and round(previous.offset(interval), SAME_TIME) == round(
                event.offset(interval), SAME_TIME):
            links = isinstance(event, LinkEvent) and isinstance(previous, LinkEvent)
            what, per = (f"{subject}'s link", "link") if links else (subject, "node")
            problems.add(_time_key(event), f"{what} has another event at {when} ({_cite(previous, problems)}); "
                         f"expected one event per {per} at a time")
            continue
        if isinstance(event, SensorEvent):
            _check_stop(event, when, stopped, problems)
        elif isinstance(event, NodeEvent):
            _check_crash(event, when, crashed, problems)
        elif event.state == "down":
            if event.link in downed:
                again = ("up: true before downing it again" if event.name == "down"
                         else f"heal: {event.link} (or up: true) before partitioning it again")
                problems.add(("events", event.index, event.name), f"{event.link}'s link is already down at "
                             f"{when} (since {_cite(downed[event.link], problems)}); expected {again}")
            downed.setdefault(event.link, event)
        elif event.state == "up":
            if event.link not in downed:
                before = ("a down: true event on it before" if event.name == "up"
                          else f"a partition: {event.link} (or down: true) event before")
                problems.add(("events", event.index, event.name), f"{event.link}'s link is not down at {when}; "
                             f"expected {before}")
            downed.pop(event.link, None)


def _check_crash(event: NodeEvent, when: str, crashed: dict[str, NodeEvent], problems: _Report) -> None:
    if event.action == "crash":
        if event.node in crashed:
            problems.add(("events", event.index, "crash"), f"{event.node} is already crashed at {when} (since "
                         f"{_cite(crashed[event.node], problems)}); expected restart: {event.node} before "
                         "crashing it again")
        crashed.setdefault(event.node, event)
    else:
        if event.node not in crashed:
            problems.add(("events", event.index, "restart"), f"{event.node} is not crashed at {when}; "
                         f"expected a crash: {event.node} event before")
        crashed.pop(event.node, None)


def _check_stop(event: SensorEvent, when: str, stopped: dict[str, SensorEvent], problems: _Report) -> None:
    """``stop_sensor`` only of a sensor sending, ``start_sensor`` of one stopped (a stop needs no
    start: the sensor may stay off to the run's end)."""
    key, sensor = _key(event), event.sensor
    if event.action == "stop" and event.ident in stopped:
        problems.add(("events", event.index, key), f"sensor {sensor} is already stopped at {when} (since "
                     f"{_cite(stopped[event.ident], problems)}); expected start_sensor: {sensor} before stopping it again")
    elif event.action == "start" and event.ident not in stopped:
        problems.add(("events", event.index, key), f"sensor {sensor} is not stopped at {when}; expected a "
                     f"stop_sensor: {sensor} event before")
    if event.action == "stop":
        stopped.setdefault(event.ident, event)
    else:
        stopped.pop(event.ident, None)


def _check_restarts(events: list[Event], windows: WindowsSpec, problems: _Report) -> None:
    """Every crash is followed by a restart of its node: a node down at the run's end would
    keep its parent waiting for it until the run's timeout."""
    crashed: dict[str, NodeEvent] = {}
    for event in sorted(events, key=lambda event: (round(event.offset(windows.interval), SAME_TIME), event.index)):
        if isinstance(event, NodeEvent):
            if event.action == "crash":
                crashed.setdefault(event.node, event)
            else:
                crashed.pop(event.node, None)
    for node, event in crashed.items():
        end = format_duration(windows.interval * windows.limit)
        problems.add(("events", event.index, "crash"), f"crash: {node} at {_when(event, windows.interval)} is "
                     f"never followed by restart: {node}; the run would wait for {node} until its timeout; "
                     f"expected a restart: {node} event after it, before the run's end ({end})")


def _when(event: Event, interval: float) -> str:
    if event.at_s is not None:
        return format_duration(event.at_s)
    return f"window {event.window} ({format_duration(event.offset(interval))})"


def _time_key(event: Event) -> tuple:
    return ("events", event.index, "at" if event.at_s is not None else "window")


def _cite(event: Event, problems: _Report) -> str:
    return problems.cite(event)


def event_input(event: Event) -> EventIn:
    """The resolved event as (unvalidated) input, for ``Spec.to_dict``."""
    if isinstance(event, FlowEvent):
        return EventIn.model_construct(background=BackgroundIn.model_construct(
            sender=event.sender, to=event.receiver, rate=event.rate_mbit, start=event.at_s, stop=event.stop_s))
    fields: dict = {"at": event.at_s} if event.at_s is not None else {"window": event.window}
    if isinstance(event, SensorEvent):
        fields[_key(event)] = event.sensor
    elif isinstance(event, NodeEvent):
        fields[event.action] = event.node
    elif event.name in NODE_FAULTS:
        fields[event.name] = event.link
    elif event.change is not None:
        names = {name: key for key, name in CHANGE_FIELDS.items()}
        fields.update(link=event.link, set=LinkSetIn.model_construct(
            **{names[name]: value for name, value in event.change.fields().items()}))
    else:
        fields.update(link=event.link, **{event.state: True})
    return EventIn.model_construct(**fields)
