"""The spec's ``events``: link changes during a run, checked against the tree and the run, resolved.

Checked on the resolved nodes (a link's ``bw`` may come from ``defaults``), each problem
at the event's line and field::

    topo.yaml:31: events[2].link: 'root' is the root: the root has no link to a parent; expected the id of
        another node: ps1, w1, w2
    topo.yaml:33: events[3].window: 12 is past the run's end; expected a window of 0 .. 9 (windows.limit is 10)

What is refused: a link that is no node's, or the root's; a time at or past the run's end
(``windows.interval`` × ``windows.limit``); two events on one link at the same time;
``down`` on a link already down, ``up`` on one that is not; ``set: {bw: ...}`` on a link
without a ``bw`` (its rate limiter is only installed on links that have one); and any event
on the loopback backend (no link is emulated) or with ``shaping: netem`` (only the user-space
shaper is changed during a run, for now). ``shaping: auto`` is left to the run.

The resolved :class:`~edgetestbed.spec.model.LinkEvent` are ordered by time, then by their
position in the file; :func:`event_input` writes one back for ``Spec.to_dict``.
"""

from __future__ import annotations

from typing import Sequence

from edgetestbed.params.fields import did_you_mean
from edgetestbed.params.units import format_duration, quote
from edgetestbed.spec.model import LinkChange, LinkEvent, NetworkSpec, NodeSpec, WindowsSpec
from edgetestbed.spec.problems import Problems
from edgetestbed.spec.schema import EventIn, LinkSetIn, SpecIn

# input key -> LinkChange field
CHANGE_FIELDS = {"delay": "delay_ms", "jitter": "jitter_ms", "loss": "loss_pct", "bw": "bw_mbit"}
SAME_TIME = 6   # decimals of a second: offsets equal to a microsecond are the same instant


def resolve_events(model: SpecIn, nodes: Sequence[NodeSpec], windows: WindowsSpec, network: NetworkSpec,
                   problems: Problems) -> tuple[LinkEvent, ...]:
    """The events, ordered by offset then position, after adding every problem to ``problems``."""
    if not model.events:
        return ()
    if not network.emulated:
        problems.add(("events",), "events need an emulated network; the loopback backend emulates no link; "
                     "expected network: {backend: mininet}, or no events")
    elif network.shaping == "netem":
        problems.add(("events",), "changing links during a run needs the userspace shaping backend for "
                     "now; expected network: {shaping: userspace} (or auto), or no events")
    events = [_event(index, given) for index, given in enumerate(model.events)]
    by_id = {node.id: (position, node) for position, node in enumerate(nodes)}
    placed = [event for event in events
              if _check_link(event, by_id, model, problems) and _check_time(event, windows, problems)]
    _check_sequence(placed, windows.interval, problems)
    return tuple(sorted(events, key=lambda event: (event.offset(windows.interval), event.index)))


def _event(index: int, given: EventIn) -> LinkEvent:
    change = None
    if given.set is not None:
        change = LinkChange(**{CHANGE_FIELDS[key]: getattr(given.set, key) for key in given.set.model_fields_set})
    state = "down" if given.down else "up" if given.up else None
    return LinkEvent(index, given.link, given.at, given.window, change, state)


def _check_link(event: LinkEvent, by_id: dict[str, tuple[int, NodeSpec]], model: SpecIn,
                problems: Problems) -> bool:
    """True when the event names a node with a link to its parent (and a bw if it sets one)."""
    others = [node.id for _, node in by_id.values() if not node.is_root]
    expected = f"expected the id of a node other than the root: {', '.join(others)}"
    if event.link not in by_id:
        problems.add(("events", event.index, "link"), f"unknown node {quote(event.link)}"
                     f"{did_you_mean(event.link, others)}; {expected}")
        return False
    position, node = by_id[event.link]
    if node.is_root:
        problems.add(("events", event.index, "link"), f"{quote(event.link)} is the root: the root has no "
                     f"link to a parent; {expected}")
        return False
    if event.change is not None and event.change.bw_mbit is not None and node.link.bw_mbit is None:
        where = f"nodes[{position}].link" if model.nodes[position].link is not None else "defaults.link"
        problems.add(("events", event.index, "set", "bw"), f"{event.link}'s link has no bw in the spec; "
                     f"expected a bw on it ({where}) to change it during a run, because the rate limiter "
                     "is only installed on links that have one")
    return True


def _check_time(event: LinkEvent, windows: WindowsSpec, problems: Problems) -> bool:
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


def _check_sequence(events: list[LinkEvent], interval: float, problems: Problems) -> None:
    """No two events on a link at once; ``down`` only on a link that is up, ``up`` on one down."""
    last: dict[str, LinkEvent] = {}     # link -> its previous event
    downed: dict[str, LinkEvent] = {}   # link -> the event that downed it, while down
    for event in sorted(events, key=lambda event: (round(event.offset(interval), SAME_TIME), event.index)):
        previous, when = last.get(event.link), _when(event, interval)
        last[event.link] = event
        if previous is not None and round(previous.offset(interval), SAME_TIME) == round(
                event.offset(interval), SAME_TIME):
            problems.add(_time_key(event), f"{event.link}'s link has another event at {when} "
                         f"({_cite(previous, problems)}); expected one event per link at a time")
            continue
        if event.state == "down":
            if event.link in downed:
                problems.add(("events", event.index, "down"), f"{event.link}'s link is already down at {when} "
                             f"(since {_cite(downed[event.link], problems)}); expected up: true before "
                             "downing it again")
            downed.setdefault(event.link, event)
        elif event.state == "up":
            if event.link not in downed:
                problems.add(("events", event.index, "up"), f"{event.link}'s link is not down at {when}; "
                             "expected a down: true event on it before")
            downed.pop(event.link, None)


def _when(event: LinkEvent, interval: float) -> str:
    if event.at_s is not None:
        return format_duration(event.at_s)
    return f"window {event.window} ({format_duration(event.offset(interval))})"


def _time_key(event: LinkEvent) -> tuple:
    return ("events", event.index, "at" if event.at_s is not None else "window")


def _cite(event: LinkEvent, problems: Problems) -> str:
    return f"events[{event.index}], line {problems.line(('events', event.index))}"


def event_input(event: LinkEvent) -> EventIn:
    """The resolved event as (unvalidated) input, for ``Spec.to_dict``."""
    fields: dict = {"link": event.link}
    fields.update({"at": event.at_s} if event.at_s is not None else {"window": event.window})
    if event.change is not None:
        names = {name: key for key, name in CHANGE_FIELDS.items()}
        fields["set"] = LinkSetIn.model_construct(**{names[name]: value
                                                     for name, value in event.change.fields().items()})
    else:
        fields[event.state] = True
    return EventIn.model_construct(**fields)
