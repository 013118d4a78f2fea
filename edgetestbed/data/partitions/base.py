"""What every data partition is: the training rows and digit mix it gives each sensor.

A partition sees a dataset's usable training rows as
:class:`~edgetestbed.data.datasets.base.Candidates` and picks sensor
``k`` of ``n``'s with :meth:`Partition.rows`; for a classification dataset it may also
give each sensor its own mix of labels (:meth:`Partition.label_distribution`).
:mod:`edgetestbed.data.streams` turns that into the sensor's stream, seeded so that
every process draws the same samples.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Optional

import numpy as np
from pydantic import BaseModel, create_model

from edgetestbed.data.datasets.base import DATASETS, Candidates
from edgetestbed.params.plugins import Plugin, PluginParams, Registry

N_DIGITS = 10   # MNIST's labels

# Seed words that keep the split, replicated and per-sensor seed sequences apart
# (SeedSequence pads short entropy with zeros, so [seed, 0] alone would equal [seed]).
SPLIT, PER_SENSOR, REPLICATED = 1, 2, 3


class Partition(Plugin):
    """How a dataset is spread over the sensors. ``datasets``: those it can split (empty:
    every dataset).

    Built from its validated ``Params`` (the spec's ``data:`` keys but ``dataset`` and
    ``partition``, defaults applied). By default a sensor gets every candidate row, in the
    dataset's natural label mix, in an order of its own.
    """

    datasets: ClassVar[tuple[str, ...]] = ()
    shared_order: ClassVar[bool] = False   # True: every sensor streams the same sequence

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    def rows(self, candidates: Candidates, k: int, n: int, seed: int) -> np.ndarray:
        """The rows sensor ``k`` of ``n`` streams from, in increasing order."""
        return candidates.rows

    def label_distribution(self, k: int, n: int) -> Optional[np.ndarray]:
        """The probability of each label in sensor ``k`` of ``n``'s stream (classification
        datasets); None: the candidates' own frequencies."""
        return None


PARTITIONS: Registry[Partition] = Registry("partition", Partition, "partition",
                                           "edgetestbed.data.partitions", classes=False)


def datasets_of(cls: type[Partition]) -> list[str]:
    """The datasets partition ``cls`` can split, in listing order."""
    return [name for name in DATASETS.names() if not cls.datasets or name in cls.datasets]


def partitions_of(dataset: str) -> list[str]:
    """The partitions that can split ``dataset``, in listing order."""
    return [cls.name for cls in PARTITIONS.plugins() if dataset in datasets_of(cls)]


def mismatch(cls: type[Partition], dataset: str) -> Optional[str]:
    """Why ``cls`` cannot split ``dataset`` ("...; expected ..."), or None if it can."""
    if dataset in datasets_of(cls):
        return None
    return (f"partition {cls.name!r} does not apply to {dataset!r}; expected dataset "
            f"{' or '.join(datasets_of(cls))}, or a partition of {dataset}: {', '.join(partitions_of(dataset))}")


@functools.cache
def params_model(cls: type[Partition], dataset: str) -> type[PluginParams]:
    """The ``data:`` section's parameters with partition ``cls`` on ``dataset``: the
    partition's own and the dataset's (``lags``)."""
    # A base twice, or before its own subclass, has no method resolution order.
    bases = tuple(base for base in (cls.Params, DATASETS.get(dataset).Params) if base is not PluginParams)
    return create_model(f"{cls.__name__}On{dataset.capitalize()}", __base__=bases or (PluginParams,))
