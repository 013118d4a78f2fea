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
pool of training images in a fresh random order on every pass (so it repeats an image
only after streaming all others), or, for the label partitions, draws a digit from its
distribution over digits and then takes the next image of that digit the same way.

==============  =====================================================================
partition       sensor ``k`` of ``n`` streams
==============  =====================================================================
``iid``         its own share of the training set: the 60k images are split evenly
                at random (seeded) into ``n`` disjoint shares
``biased``      digit ``k mod 10`` with probability ``bias`` (default 0.64), each other
                digit with ``(1 - bias) / 9`` (the TreeNN simulator paper's setup)
``by_label``    only some digits, uniformly: ``labels`` is either a count ``m``
                (default 2; sensor ``k`` sees ``{m·k, …, m·k + m − 1} mod 10``, so sensor
                0 sees 0 and 1, sensor 1 sees 2 and 3, …) or a list of digit lists,
                sensor ``k`` seeing ``labels[k mod len(labels)]``
``replicated``  the whole training set, the same sequence for every sensor
``mixed``       a population of both: the first ``round(n · biased_fraction)`` sensors
                (default 0.5) are ``biased`` (with ``bias``); the others stream the
                whole training set with its natural digit frequencies, each in its own
                order
==============  =====================================================================

AQI (Beijing PM2.5; ``x``: float32 features, ``y``: float PM2.5 in µg/m³ of that hour).
Training hours are 2010–2013, the held-out set is 2014. Features: dew point,
temperature, pressure, wind direction one-hot, wind speed, snow hours, rain hours
(the last three ``log1p``-compressed, all continuous ones standardized with 2010–2013
statistics) and the PM2.5 of the previous ``lags`` hours (default 3, standardized; a
missing reading is replaced by the last observed one, as a sensor would report).
Hours whose own PM2.5 is missing are never targets. A sensor streams its slice's hours
in time order and starts over at the end.

==============  =====================================================================
``iid``         the training hours split evenly at random (seeded) into ``n`` disjoint
                shares; sensor ``k`` streams its share in time order
``by_year``     sensor ``k`` streams year ``2010 + (k mod 4)``
``by_season``   sensor ``k`` streams season ``k mod 4`` (winter Dec–Feb, spring, summer,
                autumn) of all training years, in time order
``replicated``  every sensor streams all training hours
==============  =====================================================================

Only ``iid`` AQI streams depend on the seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edgetestbed.errors import UserError
from edgetestbed.sensors.datasets import Mnist, load_aqi, load_mnist

Sample = Tuple[np.ndarray, Union[int, float]]

N_DIGITS = 10
PIXEL_SCALE = np.float32(256)  # MNIST features are pixel / 256: exact in float32, exactly invertible
AQI_TRAIN_YEARS = (2010, 2011, 2012, 2013)
AQI_TEST_YEAR = 2014
AQI_SKEWED = ("wind_speed", "snow_hours", "rain_hours")
AQI_ONE_HOT = ("wind_NE", "wind_NW", "wind_SE", "wind_calm")


# ---------------------------------------------------------------- parameter checks

def _fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UserError(f"data: {key} must be a number between 0 and 1, got {value!r}")
    return float(value)


def _count(low: int, high: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserError(f"data: {key} must be an integer from {low} to {high}, got {value!r}")
        return value
    return check


def _is_digit(label: Any) -> bool:
    return isinstance(label, int) and not isinstance(label, bool) and 0 <= label < N_DIGITS


def _labels(key: str, value: Any) -> Union[int, Tuple[Tuple[int, ...], ...]]:
    """A count of labels per sensor, or one list of digits per sensor (reused cyclically)."""
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(s, (list, tuple)) and s and all(map(_is_digit, s)) for s in value):
        return tuple(tuple(sorted(set(s))) for s in value)
    if isinstance(value, (list, tuple)):
        raise UserError(f"data: {key} must be a number of labels per sensor from 1 to {N_DIGITS}, or a "
                        f"list of non-empty lists of digits 0-9 (one per sensor), got {value!r}")
    return _count(1, N_DIGITS)(key, value)


_CHECKS: Dict[str, Callable[[str, Any], Any]] = {
    "bias": _fraction,
    "biased_fraction": _fraction,
    "labels": _labels,
    "lags": _count(0, 168),
}


def _resolve(partition: str, defaults: Mapping[str, Any], params: Mapping[str, Any]) -> Dict[str, Any]:
    """Defaults overridden by ``params``, each checked; unknown names are an error."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise UserError(f"data: partition {partition!r} takes no parameter {unknown[0]!r} "
                        f"(its parameters: {allowed})")
    merged = {**defaults, **params}
    return {key: _CHECKS[key](key, value) for key, value in merged.items()}


# ---------------------------------------------------------------- MNIST partitions

_CHUNK = 256  # indices converted to Python ints at a time


@functools.lru_cache(maxsize=1)
def _mnist_pixels() -> Mnist:
    """MNIST's uint8 pixels, loaded once per process: the cloud baseline holds one stream
    per sensor, and each loading its own copy of the labels cost 0.5 MB per sensor."""
    return load_mnist(pixels=True)


def _natural(options: Mapping[str, Any], k: int, n: int) -> Optional[np.ndarray]:
    """None: the training set's own digit frequencies."""
    return None


def _biased(options: Mapping[str, Any], k: int, n: int) -> np.ndarray:
    bias = options["bias"]
    probabilities = np.full(N_DIGITS, (1 - bias) / (N_DIGITS - 1))
    probabilities[k % N_DIGITS] = bias
    return probabilities


def _by_label(options: Mapping[str, Any], k: int, n: int) -> np.ndarray:
    if isinstance(options["labels"], tuple):
        labels = list(options["labels"][k % len(options["labels"])])
    else:
        m = options["labels"]
        labels = [(m * k + j) % N_DIGITS for j in range(m)]
    probabilities = np.zeros(N_DIGITS)
    probabilities[labels] = 1 / len(labels)
    return probabilities


def _mixed(options: Mapping[str, Any], k: int, n: int) -> Optional[np.ndarray]:
    n_biased = round(n * options["biased_fraction"])
    return _biased(options, k, n) if k < n_biased else None


_MNIST_PARTITIONS = {
    "iid": (_natural, {}),
    "replicated": (_natural, {}),
    "biased": (_biased, {"bias": 0.64}),
    "by_label": (_by_label, {"labels": 2}),
    "mixed": (_mixed, {"bias": 0.64, "biased_fraction": 0.5}),
}


def _shuffled_passes(pool: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    """The indices of ``pool`` in a fresh random order on every pass, forever.

    A pass is converted to Python ints a chunk at a time: a whole pass as a list costs
    36 bytes per index, which the cloud baseline pays once per digit per sensor
    (over 200 MB at 100 sensors)."""
    while True:
        order = rng.permutation(pool)
        for start in range(0, len(order), _CHUNK):
            yield from order[start:start + _CHUNK].tolist()


def _share(n_items: int, sensor_index: int, n_sensors: int, seed: int) -> np.ndarray:
    """Sensor ``sensor_index``'s part, in increasing order, of ``range(n_items)`` split evenly
    at random into ``n_sensors`` disjoint parts (the same split for every sensor)."""
    split = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT])).permutation(n_items)
    return np.sort(np.array_split(split, n_sensors)[sensor_index])


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


def _by_year(table: _AqiTable, k: int) -> np.ndarray:
    return table.years == AQI_TRAIN_YEARS[k % len(AQI_TRAIN_YEARS)]


def _by_season(table: _AqiTable, k: int) -> np.ndarray:
    season = table.months % 12 // 3  # 0: Dec-Feb, 1: Mar-May, 2: Jun-Aug, 3: Sep-Nov
    return np.isin(table.years, AQI_TRAIN_YEARS) & (season == k % 4)


def _all_training(table: _AqiTable, k: int) -> np.ndarray:
    return np.isin(table.years, AQI_TRAIN_YEARS)


_AQI_PARTITIONS = {"iid": _all_training, "by_year": _by_year, "by_season": _by_season,
                   "replicated": _all_training}
_AQI_DEFAULTS = {"lags": 3}


def _aqi_stream(rows: np.ndarray, table: _AqiTable) -> Iterator[Sample]:
    """The given rows in time order, forever."""
    x, y = table.x[rows], table.y[rows].tolist()
    while True:
        for i in range(len(rows)):
            yield x[i].copy(), y[i]


# ---------------------------------------------------------------- the public surface

# Seed words that keep the split, replicated and per-sensor seed sequences apart
# (SeedSequence pads short entropy with zeros, so [seed, 0] alone would equal [seed]).
_SPLIT, _PER_SENSOR, _REPLICATED = 1, 2, 3
_PARTITIONS = {"mnist": tuple(_MNIST_PARTITIONS), "aqi": tuple(_AQI_PARTITIONS)}


@dataclass(frozen=True)
class StreamDefinition:
    """Dataset + partition + parameters: the spec's ``data:`` section, validated on creation.

    Raises :class:`UserError` for an unknown dataset or partition, an unknown parameter,
    or a parameter out of range. ``params`` after creation holds every parameter with
    defaults applied.
    """

    dataset: str
    partition: str = "iid"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dataset not in _PARTITIONS:
            raise UserError(f"data: unknown dataset {self.dataset!r} (known: {', '.join(_PARTITIONS)})")
        if self.partition not in _PARTITIONS[self.dataset]:
            raise UserError(f"data: dataset {self.dataset!r} has no partition {self.partition!r} "
                            f"(it has: {', '.join(_PARTITIONS[self.dataset])})")
        defaults = _MNIST_PARTITIONS[self.partition][1] if self.dataset == "mnist" else _AQI_DEFAULTS
        object.__setattr__(self, "params", _resolve(self.partition, defaults, dict(self.params)))

    def stream(self, sensor_index: int, n_sensors: int, seed: int) -> Iterator[Sample]:
        """Sensor ``sensor_index`` (0-based) of ``n_sensors``: endless ``(x, y)`` samples."""
        if not 0 <= sensor_index < n_sensors:
            raise ValueError(f"sensor index {sensor_index} not in 0..{n_sensors - 1}")
        if self.dataset == "aqi":
            table = _aqi_table(self.params["lags"])
            pool = np.flatnonzero(_AQI_PARTITIONS[self.partition](table, sensor_index) & table.usable)
        else:
            pool = _whole_training_set()
        if self.partition == "iid":
            pool = pool[_share(len(pool), sensor_index, n_sensors, seed)]
        if not len(pool):
            raise UserError(f"data: with {n_sensors} sensors, sensor {sensor_index} gets no samples")
        if self.dataset == "aqi":
            return _aqi_stream(pool, table)
        entropy = [seed, _REPLICATED] if self.partition == "replicated" else [seed, _PER_SENSOR, sensor_index]
        return _mnist_stream(pool, self.label_distribution(sensor_index, n_sensors),
                             np.random.SeedSequence(entropy))

    def label_distribution(self, sensor_index: int, n_sensors: int) -> Optional[np.ndarray]:
        """MNIST: the probability of each digit in this sensor's stream; None means the
        training set's natural frequencies (and always None for a regression dataset).
        Digits above 1/10 are the sensor's "own" digits for per-class analysis."""
        if self.dataset != "mnist":
            return None
        function = _MNIST_PARTITIONS[self.partition][0]
        return function(self.params, sensor_index, n_sensors)

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
