"""Deterministic sample streams: what each sensor publishes, reproducible in any process.

A :class:`StreamDefinition` is the spec's ``data:`` section: a dataset, a partition that
says how samples are spread over the sensors, and the partition's parameters. Its
:meth:`~StreamDefinition.stream` gives sensor ``k`` of ``n`` an endless iterator of
``(x, y)`` samples. The same definition, sensor index, sensor count and seed give the
same samples in every process, so the cloud baseline regenerates every sensor's stream
locally instead of receiving it over the network.

Streams draw from training data only; :meth:`~StreamDefinition.evaluation_data` is the
held-out set in the same representation.

MNIST (``x``: float32 784-vector ``pixel / 256``, ``y``: int digit; a sensor sends the
8-bit pixels themselves, see :meth:`StreamDefinition.to_wire`). A sensor streams its
partition's rows in a fresh random order on every pass (so it repeats an image only
after streaming all others), or, when its partition gives it a mix of digits, draws a
digit from that mix and then takes the next image of that digit the same way.

AQI (Beijing PM2.5; ``x``: float32 features, ``y``: float PM2.5 in µg/m³ of that hour).
Training hours are 2010–2013, the held-out set is 2014. Features: dew point,
temperature, pressure, wind direction one-hot, wind speed, snow hours, rain hours
(the last three ``log1p``-compressed, all continuous ones standardized with 2010–2013
statistics) and the PM2.5 of the previous ``lags`` hours (default 3, standardized; a
missing reading is replaced by the last observed one, as a sensor would report).
Hours whose own PM2.5 is missing are never targets. A sensor streams its partition's
hours in time order and starts over at the end.

The partitions (``iid``, ``replicated``; MNIST: ``biased``, ``by_label``, ``mixed``; AQI:
``by_year``, ``by_season``) are plugins, one module each, documented there:
:mod:`edgetestbed.data.partitions`. Only ``iid`` AQI streams depend on the seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edgetestbed.data.datasets import Mnist, load_aqi, load_mnist
from edgetestbed.data.partitions import (DATASET_PARAMS, N_DIGITS, PARTITIONS, Candidates, Partition,
                                            params_model, partitions_of)
from edgetestbed.data.partitions.base import PER_SENSOR, REPLICATED
from edgetestbed.errors import UserError
from edgetestbed.params.fields import did_you_mean
from edgetestbed.params.plugins import parse_params, values

Sample = Tuple[np.ndarray, Union[int, float]]

PIXEL_SCALE = np.float32(256)  # MNIST features are pixel / 256: exact in float32, exactly invertible
AQI_TRAIN_YEARS = (2010, 2011, 2012, 2013)
AQI_TEST_YEAR = 2014
AQI_SKEWED = ("wind_speed", "snow_hours", "rain_hours")
AQI_ONE_HOT = ("wind_NE", "wind_NW", "wind_SE", "wind_calm")


# ---------------------------------------------------------------- MNIST

_CHUNK = 256  # indices converted to Python ints at a time


@functools.lru_cache(maxsize=1)
def _mnist_pixels() -> Mnist:
    """MNIST's uint8 pixels, loaded once per process: the cloud baseline holds one stream
    per sensor, and each loading its own copy of the labels cost 0.5 MB per sensor."""
    return load_mnist(pixels=True)


def _shuffled_passes(pool: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    """The indices of ``pool`` in a fresh random order on every pass, forever.

    A pass is converted to Python ints a chunk at a time: a whole pass as a list costs
    36 bytes per index, which the cloud baseline pays once per digit per sensor
    (over 200 MB at 100 sensors)."""
    while True:
        order = rng.permutation(pool)
        for start in range(0, len(order), _CHUNK):
            yield from order[start:start + _CHUNK].tolist()


def _indices(labels: np.ndarray, pool: np.ndarray, probabilities: Optional[np.ndarray],
             seed: np.random.SeedSequence) -> Iterator[int]:
    """Endless indices from ``pool`` whose digits follow ``probabilities`` (None: as in the pool)."""
    if probabilities is None:
        yield from _shuffled_passes(pool, np.random.default_rng(seed))
        return
    label_seed, *digit_seeds = seed.spawn(N_DIGITS + 1)
    label_rng = np.random.default_rng(label_seed)
    pool_labels = labels[pool]
    digit_pools = [pool[pool_labels == digit] for digit in range(N_DIGITS)]
    del pool_labels  # 8 bytes per sample for as long as the stream lives, once per sensor
    orders = [_shuffled_passes(digit_pool, np.random.default_rng(digit_seed))
              for digit_pool, digit_seed in zip(digit_pools, digit_seeds)]
    while True:
        for digit in label_rng.choice(N_DIGITS, size=1024, p=probabilities).tolist():
            yield next(orders[digit])


def _mnist_stream(pool: np.ndarray, probabilities: Optional[np.ndarray],
                  seed: np.random.SeedSequence) -> Iterator[Sample]:
    """Endless MNIST training samples (float32 ``pixel / 256``, digit) from ``pool``."""
    mnist = _mnist_pixels()
    for index in _indices(mnist.y_train, pool, probabilities, seed):
        yield mnist.x_train[index] / PIXEL_SCALE, int(mnist.y_train[index])


@functools.lru_cache(maxsize=1)
def _whole_training_set() -> np.ndarray:
    """Every MNIST training index, one read-only array shared by all streams of a process."""
    pool = np.arange(len(_mnist_pixels().y_train), dtype=np.int32)
    pool.setflags(write=False)
    return pool


# ---------------------------------------------------------------- AQI

def _years(timestamps: np.ndarray) -> np.ndarray:
    return timestamps.astype("datetime64[Y]").astype(int) + 1970


def _months(timestamps: np.ndarray) -> np.ndarray:
    return timestamps.astype("datetime64[M]").astype(int) % 12 + 1


def _forward_filled(values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last non-NaN value before it (NaN until the first one)."""
    last_seen = np.where(np.isnan(values), 0, np.arange(len(values)))
    return values[np.maximum.accumulate(last_seen)]


def _previous_hours(values: np.ndarray, lags: int) -> np.ndarray:
    """Column ``j`` holds the value ``j + 1`` hours earlier (NaN before the first hour)."""
    recent = np.full((len(values), lags), np.nan)
    for lag in range(1, lags + 1):
        recent[lag:, lag - 1] = values[:-lag]
    return recent


@dataclass(frozen=True)
class _AqiTable:
    """All hours as model-ready features and targets; ``usable`` marks complete samples."""

    x: np.ndarray
    y: np.ndarray
    years: np.ndarray
    months: np.ndarray
    usable: np.ndarray


@functools.lru_cache(maxsize=4)
def _aqi_table(lags: int) -> _AqiTable:
    """Build the AQI features (see the module docstring) for every hour 2010–2014."""
    aqi = load_aqi()
    weather = aqi.features.astype(np.float64)
    for name in AQI_SKEWED:
        column = aqi.feature_names.index(name)
        weather[:, column] = np.log1p(weather[:, column])
    recent = _previous_hours(_forward_filled(aqi.pm25.astype(np.float64)), lags)
    years = _years(aqi.timestamps)
    train = np.isin(years, AQI_TRAIN_YEARS)
    continuous = [i for i, name in enumerate(aqi.feature_names) if name not in AQI_ONE_HOT]
    mean, std = weather[train].mean(axis=0), weather[train].std(axis=0)
    weather[:, continuous] = (weather[:, continuous] - mean[continuous]) / std[continuous]
    pm_mean, pm_std = np.nanmean(aqi.pm25[train]), np.nanstd(aqi.pm25[train])
    x = np.hstack([weather, (recent - pm_mean) / pm_std]).astype(np.float32)
    usable = ~np.isnan(aqi.pm25) & ~np.isnan(x).any(axis=1)
    return _AqiTable(x, aqi.pm25, years, _months(aqi.timestamps), usable)


def _aqi_stream(rows: np.ndarray, table: _AqiTable) -> Iterator[Sample]:
    """The given rows in time order, forever."""
    x, y = table.x[rows], table.y[rows].tolist()
    while True:
        for i in range(len(rows)):
            yield x[i].copy(), y[i]


# ---------------------------------------------------------------- the public surface

def _aqi_candidates(table: _AqiTable) -> Candidates:
    """The AQI hours a partition may give a sensor: usable training hours, in time order."""
    rows = np.flatnonzero(np.isin(table.years, AQI_TRAIN_YEARS) & table.usable)
    return Candidates(rows, table.years, table.months)


@dataclass(frozen=True)
class StreamDefinition:
    """Dataset + partition + parameters: the spec's ``data:`` section, validated on creation.

    Raises :class:`UserError` for an unknown dataset or partition, and for parameters the
    partition's (and the dataset's) ``Params`` refuse, in ``validate``'s words.
    ``params`` after creation holds every parameter with defaults applied.
    """

    dataset: str
    partition: str = "iid"
    params: Mapping[str, Any] = field(default_factory=dict)
    plugin: Partition = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_PARAMS:
            raise UserError(f"data: unknown dataset {self.dataset!r} (known: {', '.join(DATASET_PARAMS)})")
        if self.partition not in partitions_of(self.dataset):
            raise UserError(f"data: dataset {self.dataset!r} has no partition {self.partition!r}"
                            f"{did_you_mean(self.partition, partitions_of(self.dataset))} "
                            f"(it has: {', '.join(partitions_of(self.dataset))})")
        cls = PARTITIONS.get(self.partition)
        params = parse_params(params_model(cls, self.dataset), self.params, "data", PARTITIONS.kind)
        object.__setattr__(self, "params", values(params))
        object.__setattr__(self, "plugin", cls(params))

    def stream(self, sensor_index: int, n_sensors: int, seed: int) -> Iterator[Sample]:
        """Sensor ``sensor_index`` (0-based) of ``n_sensors``: endless ``(x, y)`` samples."""
        if not 0 <= sensor_index < n_sensors:
            raise ValueError(f"sensor index {sensor_index} not in 0..{n_sensors - 1}")
        if self.dataset == "aqi":
            table = _aqi_table(self.params["lags"])
            candidates = _aqi_candidates(table)
        else:
            candidates = Candidates(_whole_training_set())
        pool = self.plugin.rows(candidates, sensor_index, n_sensors, seed)
        if not len(pool):
            raise UserError(f"data: with {n_sensors} sensors, sensor {sensor_index} gets no samples")
        if self.dataset == "aqi":
            return _aqi_stream(pool, table)
        entropy = [seed, REPLICATED] if self.plugin.shared_order else [seed, PER_SENSOR, sensor_index]
        return _mnist_stream(pool, self.label_distribution(sensor_index, n_sensors),
                             np.random.SeedSequence(entropy))

    def label_distribution(self, sensor_index: int, n_sensors: int) -> Optional[np.ndarray]:
        """MNIST: the probability of each digit in this sensor's stream; None means the
        training set's natural frequencies (and always None for a regression dataset).
        Digits above 1/10 are the sensor's "own" digits for per-class analysis."""
        if self.dataset != "mnist":
            return None
        return self.plugin.label_distribution(sensor_index, n_sensors)

    @property
    def wire_dtype(self) -> str:
        """The dtype a sensor sends features in: MNIST's 8-bit pixels, as a camera would
        (a quarter of float32's bytes and packets), AQI's features as float32."""
        return "uint8" if self.dataset == "mnist" else "float32"

    def to_wire(self, x: np.ndarray) -> np.ndarray:
        """One sample's (or a stack's) features as a sensor sends them; exact."""
        if self.dataset == "mnist":
            return (np.asarray(x) * PIXEL_SCALE).astype(np.uint8)
        return np.asarray(x, dtype=np.float32)

    def from_wire(self, x: np.ndarray) -> np.ndarray:
        """Features received from sensors back as the float32 the stream yields; exact."""
        if self.dataset == "mnist":
            return np.asarray(x, dtype=np.uint8) / PIXEL_SCALE
        return np.asarray(x, dtype=np.float32)

    def evaluation_data(self) -> Tuple[np.ndarray, np.ndarray]:
        """The held-out test set as ``(x, y)`` arrays in the streams' representation.

        MNIST's test images are converted from the memory-mapped uint8 pixels alone
        (``pixel / 256``, exactly the float values): converting the 60k training images
        too would cost 190 MB in every node and break a 256 MB memory limit.
        """
        if self.dataset == "aqi":
            table = _aqi_table(self.params["lags"])
            rows = (table.years == AQI_TEST_YEAR) & table.usable
            return table.x[rows], table.y[rows]
        mnist = _mnist_pixels()
        return mnist.x_test / PIXEL_SCALE, mnist.y_test


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
