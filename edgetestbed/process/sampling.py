"""What a spec's sensors send, and when: its stream definition and its schedule.

The stream and the clock themselves know no spec (:mod:`edgetestbed.data.streams`,
:mod:`edgetestbed.data.schedule`); these read them off the spec's ``data:``,
``sensors:`` and ``windows:`` sections, the same way in every process: a sensor to send
its samples, a worker to read them, the cloud baseline to regenerate them, and the
analysis to know the test set.
"""

from __future__ import annotations

from typing import Any, Iterator

from edgetestbed.data.schedule import Schedule
from edgetestbed.data.streams import StreamDefinition
from edgetestbed.spec.model import Spec


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
