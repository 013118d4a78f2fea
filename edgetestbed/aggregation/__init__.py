"""Aggregations: when a parameter server merges its children's updates, and how.

The exchange policy (:mod:`edgetestbed.policies`) says when a node talks to its parent; the
aggregation says what a parameter server (or the root) does with what its children push.
Each is one class in one module of this package, registered by name
(``@AGGREGATIONS.register``): ``average`` (the default: merge when every live child has an
update or half a window has passed, sample-weighted), ``buffered`` (FedBuff: merge once ``k``
updates have arrived), ``async`` (FedAsync: merge every update on arrival, scaled down by its
staleness), ``sync`` (rounds: merge once every live child has an update, up to a timeout
for dead ones; workers wait for each round to open). The spec's ``aggregation: {type: NAME, ...}`` on a parameter server or the root,
or in ``defaults``, picks one; its other keys are the aggregation's ``Params``, checked by
``validate`` with file, line and field. A worker merges nothing: ``aggregation:`` on a worker
is refused, and ``defaults.aggregation`` does not apply to workers. ``type:
module.path:ClassName`` picks a researcher's own :class:`Aggregation` subclass. What an
aggregation decides: :mod:`edgetestbed.aggregation.base`.
"""

from __future__ import annotations

from typing import Mapping

from edgetestbed.aggregation.base import AGGREGATIONS, Aggregation, Queue

__all__ = ["AGGREGATIONS", "Aggregation", "DEFAULT", "Queue", "create_aggregation"]

DEFAULT = "average"


def create_aggregation(kind: str, params: Mapping[str, object]) -> Aggregation:
    """The aggregation a resolved spec's ``aggregation: {type: kind, **params}`` describes.

    ``params`` are the spec's resolved values, which loading the spec validated with the
    aggregation's own model; they are not checked again here.
    """
    cls = AGGREGATIONS.get(kind)
    return cls(cls.Params.model_construct(**params))
