"""Deterministic sample streams: what each sensor publishes, reproducible in any process.

A :class:`StreamDefinition` is the spec's ``data:`` section: a dataset, a partition that
says how samples are spread over the sensors, and the partition's parameters. Its
:meth:`~StreamDefinition.stream` gives sensor ``k`` of ``n`` an endless iterator of
``(x, y)`` samples. The same definition, sensor index, sensor count and seed give the
same samples in every process, so the cloud baseline regenerates every sensor's stream
locally instead of receiving it over the network.

Streams draw from training data only; :meth:`~StreamDefinition.evaluation_data` is the
held-out set in the same representation.

The datasets (``mnist``, ``aqi``) are plugins, one module each, documented there:
:mod:`edgetestbed.data.datasets`.

The partitions (``iid``, ``replicated``; MNIST: ``biased``, ``by_label``, ``mixed``; AQI:
``by_year``, ``by_season``) are plugins, one module each, documented there:
:mod:`edgetestbed.data.partitions`. Only ``iid`` AQI streams depend on the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple

import numpy as np

from edgetestbed.data.datasets import DATASETS, Dataset, Sample
from edgetestbed.data.partitions import PARTITIONS, Partition, params_model, partitions_of
from edgetestbed.data.partitions.base import PER_SENSOR, REPLICATED
from edgetestbed.errors import UserError
from edgetestbed.params.fields import did_you_mean
from edgetestbed.params.plugins import parse_params, values


@dataclass(frozen=True)
class StreamDefinition:
    """Dataset + partition + parameters: the spec's ``data:`` section, validated on creation.

    Raises :class:`UserError` for an unknown dataset or partition, and for parameters the
    partition's (and the dataset's) ``Params`` refuse, in ``validate``'s words.
    ``params`` after creation holds every parameter with defaults applied; ``plugin`` is
    the partition and ``source`` the dataset, both built from them.
    """

    dataset: str
    partition: str = "iid"
    params: Mapping[str, Any] = field(default_factory=dict)
    plugin: Partition = field(init=False, repr=False, compare=False)
    source: Dataset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not DATASETS.accepts(self.dataset):
            raise UserError(f"data: {DATASETS.unknown(self.dataset)}")
        if self.partition not in partitions_of(self.dataset):
            raise UserError(f"data: dataset {self.dataset!r} has no partition {self.partition!r}"
                            f"{did_you_mean(self.partition, partitions_of(self.dataset))} "
                            f"(it has: {', '.join(partitions_of(self.dataset))})")
        cls = PARTITIONS.get(self.partition)
        params = parse_params(params_model(cls, self.dataset), self.params, "data", PARTITIONS.kind)
        object.__setattr__(self, "params", values(params))
        object.__setattr__(self, "plugin", cls(params))
        object.__setattr__(self, "source", DATASETS.get(self.dataset)(params))

    def stream(self, sensor_index: int, n_sensors: int, seed: int) -> Iterator[Sample]:
        """Sensor ``sensor_index`` (0-based) of ``n_sensors``: endless ``(x, y)`` samples."""
        if not 0 <= sensor_index < n_sensors:
            raise ValueError(f"sensor index {sensor_index} not in 0..{n_sensors - 1}")
        pool = self.plugin.rows(self.source.candidates(), sensor_index, n_sensors, seed)
        if not len(pool):
            raise UserError(f"data: with {n_sensors} sensors, sensor {sensor_index} gets no samples")
        entropy = [seed, REPLICATED] if self.plugin.shared_order else [seed, PER_SENSOR, sensor_index]
        return self.source.stream(pool, self.label_distribution(sensor_index, n_sensors),
                                  np.random.SeedSequence(entropy))

    def label_distribution(self, sensor_index: int, n_sensors: int) -> Optional[np.ndarray]:
        """Classification: the probability of each label in this sensor's stream; None means
        the training set's natural frequencies (and always None for a regression dataset).
        Labels above 1/(number of labels) are the sensor's "own" for per-class analysis."""
        if self.source.task != "classification":
            return None
        return self.plugin.label_distribution(sensor_index, n_sensors)

    @property
    def wire_dtype(self) -> str:
        """The dtype a sensor sends features in (MNIST: its 8-bit pixels)."""
        return self.source.wire_dtype

    def to_wire(self, x: np.ndarray) -> np.ndarray:
        """One sample's (or a stack's) features as a sensor sends them; exact."""
        return self.source.to_wire(x)

    def from_wire(self, x: np.ndarray) -> np.ndarray:
        """Features received from sensors back as the float32 the stream yields; exact."""
        return self.source.from_wire(x)

    def evaluation_data(self) -> Tuple[np.ndarray, np.ndarray]:
        """The held-out test set as ``(x, y)`` arrays in the streams' representation."""
        return self.source.evaluation_data()


def take(stream: Iterator[Sample], n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The next ``n`` samples of ``stream`` stacked into ``(x, y)`` arrays."""
    return take_each([stream], n)


def take_each(streams: Sequence[Iterator[Sample]], n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The next ``n`` samples of each stream in turn, stacked into one ``(x, y)`` pair.

    Samples are written straight into arrays sized for all of them, so a window of
    many sensors' samples is held once, not also as a list of per-sample arrays."""
    x: Optional[np.ndarray] = None
    y: list = []
    for s, stream in enumerate(streams):
        for i in range(n):
            features, label = next(stream)
            if x is None:
                x = np.empty((len(streams) * n, *np.shape(features)), dtype=np.float32)
            x[s * n + i] = features
            y.append(label)
    if x is None:
        return np.empty((0,), dtype=np.float32), np.array([])
    return x, np.array(y)
