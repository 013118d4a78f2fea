"""What a spec's sensors send, and when: its stream definition, its schedule, and the samples
a stopped sensor withholds.

The stream and the clock themselves know no spec (:mod:`edgetestbed.data.streams`,
:mod:`edgetestbed.data.schedule`); these read them off the spec's ``data:``,
``sensors:`` and ``windows:`` sections, the same way in every process: a sensor to send
its samples, a worker to read them, the cloud baseline to regenerate them, and the
analysis to know the test set.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

from edgetestbed.data.schedule import Schedule
from edgetestbed.data.streams import StreamDefinition
from edgetestbed.spec.model import SensorEvent, Spec


def stream_definition(spec: Spec) -> StreamDefinition:
    """The spec's ``data:`` section as a stream definition."""
    return StreamDefinition(spec.data.dataset, spec.data.partition, dict(spec.data.params))


def sensor_stream(spec: Spec, index: int) -> Iterator[Any]:
    """Sensor ``index``'s samples. Indices need not be contiguous: a stream is defined for
    sensor ``index`` of ``max index + 1``, so a sensor's data does not depend on the others."""
    return stream_definition(spec).stream(index, max(spec.sensor_ids) + 1, spec.seed)


def schedule_of(spec: Spec, start_at: float) -> Schedule:
    """The spec's sensors' :class:`~edgetestbed.data.schedule.Schedule` from window 0's
    start ``start_at``."""
    return Schedule(start_at, spec.sensors.rate, spec.windows.interval, spec.windows.limit)


def stopped_spans(spec: Spec, index: int) -> list[tuple[float, float]]:
    """When sensor ``index`` is stopped, as ``[start, end)`` offsets in seconds from window 0's
    start (``end`` infinite for a stop never followed by a start); the spec's ``stop_sensor``
    and ``start_sensor`` events, checked to alternate."""
    spans: list[tuple[float, float]] = []
    interval = spec.windows.interval
    for event in spec.events:
        if isinstance(event, SensorEvent) and event.sensor == index:
            if event.action == "stop":
                spans.append((event.offset(interval), math.inf))
            else:
                spans[-1] = (spans[-1][0], event.offset(interval))
    return spans


def withheld(spec: Spec, index: int) -> Callable[[int], bool]:
    """Whether sensor ``index`` withholds sample ``n`` (stopped when it was due): the sensor
    does not send it, the cloud baseline does not train on it, and a centralized cloud does not
    expect it. Its stream still moves past it, as a device's time passes while it is off."""
    spans, rate = stopped_spans(spec, index), spec.sensors.rate
    return lambda n: any(start <= round(n / rate, 9) < end for start, end in spans)


def sent_mask(withheld_by_sensor: Sequence[Callable[[int], bool]], due: Sequence[int]) -> list[bool]:
    """Whether each sensor in turn sent each of the samples ``due`` in a window (the
    :func:`withheld` of every sensor, and a window's sample numbers): sensor by sensor, the order
    :func:`~edgetestbed.data.streams.take_each` stacks their samples in. One definition, so that
    the cloud baseline trains on exactly the samples a centralized cloud expects to arrive."""
    return [not is_withheld(n) for is_withheld in withheld_by_sensor for n in due]
