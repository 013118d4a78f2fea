"""The spec's ``churn``: nodes going down and up during a run, from an availability trace or
drawn at random, resolved into crash and restart events that join ``Spec.events``.

Exactly one of two forms::

    churn: {trace: availability.csv}
    churn: {mtbf: 20s, mttr: 3s, nodes: [w1, w2]}

A trace is a CSV file (its path relative to the spec file's directory; for a spec given as
text, to the current directory) with the header ``node,down_at,up_at`` and one down period a
row, its times with units like the spec's (``10s``, ``1500ms``). A row downs ``node`` (a
crash: its process SIGKILLed) at ``down_at`` and ups it (a restart) at ``up_at``. Problems in
it are placed at the file's line and column::

    availability.csv:3: up_at: '5' has no unit; expected a duration like 20ms or 1.5s (write 5ms or 5s, not 5)

Refused: a file that cannot be read, another header, a row without three cells, an unknown
node or the root, a time that is no time, ``down_at`` not before ``up_at``, an ``up_at`` at or
past the run's end (``windows.interval`` × ``windows.limit``), overlapping down periods of one
node.

``mtbf``/``mttr``: each listed node, independently, stays up for a time drawn from an
exponential distribution of mean ``mtbf``, then down for one of mean ``mttr``, and so on,
starting up at 0, over the run; the draws come from a numpy Generator seeded by the spec's
``seed`` and the node's id (``[seed, crc32(id)]``: the same spec, the same events). Times are
rounded to the millisecond; a down period that would not end before the run's end is dropped,
so that every crash is followed by its restart.

Either way the events are :class:`~edgetestbed.spec.model.NodeEvent` with ``source="churn"``,
numbered after the file's ``events``; :mod:`edgetestbed.spec.events` checks them together
with those (one event per node at an instant, no crash of a node crashed, no restart of one
running). Both forms need an emulated network, like ``events``.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError, model_validator

from edgetestbed.params.fields import did_you_mean, unit
from edgetestbed.params.units import format_duration, parse_duration, quote
from edgetestbed.spec.inputbase import EventTime, InputModel, NodeId
from edgetestbed.spec.model import ChurnSpec, NetworkSpec, NodeEvent, NodeSpec, WindowsSpec
from edgetestbed.spec.problems import Problems

HEADER = ("node", "down_at", "up_at")
FORMS = "{trace: availability.csv} or {mtbf: 20s, mttr: 3s, nodes: [w1, w2]}"
Period = unit(float, parse_duration, format_duration, 0, 7 * 86400, low_open=True)
TIME = TypeAdapter(EventTime)


class ChurnIn(InputModel):
    """``churn``: a ``trace`` file alone, or ``mtbf``, ``mttr`` and ``nodes``."""

    EXPECTED: ClassVar[str] = f"churn like {FORMS}"
    trace: str = Field(None, description="a CSV file's path like availability.csv")
    mtbf: Period = Field(None, description="a mean time between failures like 20s")
    mttr: Period = Field(None, description="a mean time to repair like 3s")
    nodes: list[NodeId] = Field(None, description="a list of node ids like [w1, w2]")

    @model_validator(mode="after")
    def _one_form(self) -> "ChurnIn":
        given = [key for key in ChurnIn.model_fields if key in self.model_fields_set]
        if ("trace" in given) == ("mtbf" in given) or ("trace" in given and len(given) > 1):
            found = f"{' and '.join(given)} together" if given else "none of trace, mtbf"
            raise ValueError(f"{found}; expected exactly one form: {FORMS}")
        missing = [key for key in ("mttr", "nodes") if "mtbf" in given and key not in given]
        if missing:
            raise ValueError(f"mtbf without {' and '.join(missing)}; expected {{mtbf: 20s, mttr: 3s, nodes: [w1, w2]}}")
        if "mtbf" in given and not self.nodes:
            raise ValueError("no nodes; expected the ids of the nodes that churn, like nodes: [w1, w2]")
        return self


@dataclass(frozen=True)
class Place:
    """Where a churn event came from, for its problems: a trace's line and column
    (``source`` the file), or the spec's ``churn.nodes`` entry (``source`` None)."""

    source: str | None
    line: int | None
    path: tuple
    cite: str            # how another problem names it: "availability.csv:3", "churn.nodes[0], line 12"


Churned = list[tuple[NodeEvent, Place]]


def resolve_churn(given: ChurnIn | None, base: Path, seed: int, first: int, nodes: Sequence[NodeSpec],
                  windows: WindowsSpec, network: NetworkSpec,
                  problems: Problems) -> tuple[ChurnSpec | None, Churned]:
    """The churn as given and its events (numbered from ``first``), after adding every problem
    of its own to ``problems``; the checks with the file's events are :mod:`~edgetestbed.spec.events`'s."""
    if given is None:
        return None, []
    if not network.emulated:
        problems.add(("churn",), "churn needs an emulated network; the loopback backend runs no node that "
                     "can crash; expected network: {backend: mininet}, or no churn")
    by_id = {node.id: node for node in nodes}
    end = windows.interval * windows.limit
    if given.trace is not None:
        path = Path(base, given.trace)
        spec = ChurnSpec(trace=str(path.absolute()))
        return spec, _trace_events(path, str(path), first, by_id, end, problems)
    spec = ChurnSpec(mtbf_s=given.mtbf, mttr_s=given.mttr, nodes=tuple(given.nodes))
    return spec, _random_events(spec, seed, first, by_id, end, problems)


def churn_input(churn: ChurnSpec) -> ChurnIn:
    """The churn as (unvalidated) input, for ``Spec.to_dict``: the trace's resolved path, or mtbf's form."""
    if churn.trace is not None:
        return ChurnIn.model_construct(trace=churn.trace)
    return ChurnIn.model_construct(mtbf=churn.mtbf_s, mttr=churn.mttr_s, nodes=list(churn.nodes))


def _node_problem(node_id: str, by_id: dict[str, NodeSpec]) -> str | None:
    others = [node for node in by_id if not by_id[node].is_root]
    expected = f"expected the id of a node other than the root: {', '.join(others)}"
    if node_id not in by_id:
        return f"unknown node {quote(node_id)}{did_you_mean(node_id, others)}; {expected}"
    if by_id[node_id].is_root:
        return f"{quote(node_id)} is the root: the root cannot crash, the run ends with it; {expected}"
    return None


# --- a trace file -----------------------------------------------------------------------------

def _read_rows(path: Path, name: str, problems: Problems) -> list[tuple[int, list[str]]] | None:
    """The CSV's rows with their line numbers, or None after adding why it cannot be read."""
    expected = f"expected a CSV file with the header {','.join(HEADER)}, relative to the spec's directory"
    try:
        with open(path, newline="", encoding="utf-8") as file:
            reader = csv.reader(file)
            return [(reader.line_num, [cell.strip() for cell in row]) for row in reader]
    except OSError as error:
        problems.add(("churn", "trace"), f"cannot read {name}: {error.strerror or error}; {expected}")
    except UnicodeDecodeError:
        problems.add(("churn", "trace"), f"{name} is not UTF-8 text; {expected}")
    except csv.Error as error:
        problems.add(("churn", "trace"), f"{name} is not CSV: {error}; {expected}")
    return None


def _trace_events(path: Path, name: str, first: int, by_id: dict[str, NodeSpec], end: float,
                  problems: Problems) -> Churned:
    read = _read_rows(path, name, problems)
    if read is None:
        return []
    rows = [(line, row) for line, row in read if any(row)]
    if not rows:
        problems.add((), f"the file is empty; expected the header {','.join(HEADER)}, then a row per down "
                     "period", 1, name)
        return []
    (line, header), periods = rows[0], []
    if tuple(header) != HEADER:
        problems.add((), f"the header is {quote(','.join(header))}; expected {','.join(HEADER)}", line, name)
        return []
    for line, row in rows[1:]:
        period = _period(line, row, name, by_id, end, problems)
        if period is not None:
            periods.append(period)
    since: dict[str, tuple] = {}
    for period in sorted(periods, key=lambda period: (period[1], period[2], period[0])):
        line, node, down, up = period
        if node in since and down < since[node][3]:
            _, _, was_down, was_up = since[node]
            problems.add(("down_at",), f"{node} is already down at {format_duration(down)} (from "
                         f"{format_duration(was_down)} to {format_duration(was_up)}, line {since[node][0]}); "
                         "expected down periods of a node that do not overlap", line, name)
            periods.remove(period)
            continue
        since[node] = period
    events: Churned = []
    for line, node, down, up in periods:
        for column, at, action in (("down_at", down, "crash"), ("up_at", up, "restart")):
            events.append((NodeEvent(first + len(events), node, at, None, action, "churn"),
                           Place(name, line, (column,), f"{name}:{line}")))
    return events


def _period(line: int, row: list[str], name: str, by_id: dict[str, NodeSpec], end: float,
            problems: Problems) -> tuple[int, str, float, float] | None:
    """One row as (line, node, down_at, up_at), or None after adding its problems."""
    if len(row) != len(HEADER):
        problems.add((), f"{len(row)} cells; expected {len(HEADER)}: {','.join(HEADER)}", line, name)
        return None
    node, ok = row[0], True
    message = _node_problem(node, by_id)
    if message is not None:
        problems.add(("node",), message, line, name)
        ok = False
    times = []
    for column, cell in zip(HEADER[1:], row[1:]):
        try:
            times.append(TIME.validate_python(cell))
        except ValidationError as error:
            details = error.errors()[0]
            problems.add((column,), str((details.get("ctx") or {}).get("error", details["msg"])), line, name)
            ok = False
    if not ok:
        return None
    down, up = times
    if down >= up:
        problems.add(("up_at",), f"{format_duration(up)} is not after down_at {format_duration(down)}; "
                     "expected the time the node is up again, after it went down", line, name)
        return None
    if up >= end:
        problems.add(("up_at",), f"{format_duration(up)} is past the run's end; expected less than "
                     f"{format_duration(end)} (windows.interval × windows.limit), so that the node is up "
                     "again before the run ends", line, name)
        return None
    return line, node, down, up


# --- mtbf and mttr ----------------------------------------------------------------------------

def _random_events(churn: ChurnSpec, seed: int, first: int, by_id: dict[str, NodeSpec], end: float,
                   problems: Problems) -> Churned:
    events: Churned = []
    for position, node in enumerate(churn.nodes):
        where = ("churn", "nodes", position)
        message = _node_problem(node, by_id)
        if message is None and node in churn.nodes[:position]:
            message = f"{node} is listed twice; expected each node once"
        if message is not None:
            problems.add(where, message)
            continue
        place = Place(None, None, where, f"churn.nodes[{position}], line {problems.line(where)}")
        for down, up in down_periods(churn.mtbf_s, churn.mttr_s, end, seed, node):
            for at, action in ((down, "crash"), (up, "restart")):
                events.append((NodeEvent(first + len(events), node, at, None, action, "churn"), place))
    return events


def down_periods(mtbf: float, mttr: float, end: float, seed: int, node: str) -> list[tuple[float, float]]:
    """``node``'s down periods (down_at, up_at) in seconds, rounded to the millisecond: up for
    Exp(``mtbf``), down for Exp(``mttr``), from up at 0; each ends before ``end``."""
    rng = np.random.default_rng([seed, zlib.crc32(node.encode())])
    periods: list[tuple[float, float]] = []
    now, last_up = 0.0, 0.0
    while True:
        down = now + rng.exponential(mtbf)
        now = down + rng.exponential(mttr)
        if now >= end:
            return periods
        down_at, up_at = round(down, 3), round(now, 3)
        if last_up < down_at < up_at < end:   # a period shorter than a millisecond is none
            periods.append((down_at, up_at))
            last_up = up_at
