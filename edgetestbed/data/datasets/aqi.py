"""AQI: Beijing PM2.5, one row an hour 2010–2014, regression of the hour's PM2.5.

``x``: float32 features; ``y``: float PM2.5 in µg/m³ of that hour. Training hours are
2010–2013, the held-out set is 2014. Features: dew point, temperature, pressure, wind
direction one-hot, wind speed, snow hours, rain hours (the last three ``log1p``-compressed,
all continuous ones standardized with 2010–2013 statistics) and the PM2.5 of the previous
``lags`` hours (default 3, standardized; a missing reading is replaced by the last
observed one, as a sensor would report). Hours whose own PM2.5 is missing are never
targets. A sensor streams its partition's hours in time order and starts over at the end.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import numpy as np
from pydantic import Field

from edgetestbed.data.datasets.base import DATASETS, Candidates, Dataset, Sample
from edgetestbed.data.sources import load_aqi
from edgetestbed.params.fields import count
from edgetestbed.params.plugins import PluginParams

AQI_TRAIN_YEARS = (2010, 2011, 2012, 2013)
AQI_TEST_YEAR = 2014
AQI_SKEWED = ("wind_speed", "snow_hours", "rain_hours")
AQI_ONE_HOT = ("wind_NE", "wind_NW", "wind_SE", "wind_calm")

Lags = count(0, 168, "a number of hours like 3")


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


def _aqi_candidates(table: _AqiTable) -> Candidates:
    """The AQI hours a partition may give a sensor: usable training hours, in time order."""
    rows = np.flatnonzero(np.isin(table.years, AQI_TRAIN_YEARS) & table.usable)
    return Candidates(rows, table.years, table.months)


@DATASETS.register
class Aqi(Dataset):
    """Beijing PM2.5 (Liang et al.), hourly, regression of the hour's PM2.5."""

    name = "aqi"
    rank = 2
    task = "regression"

    class Params(PluginParams):
        """The AQI dataset's own parameter, next to its partition's in the spec's ``data:``."""

        lags: Lags = Field(3, description="a number of hours like 3 (of past PM2.5 among the features)")

    def candidates(self) -> Candidates:
        return _aqi_candidates(_aqi_table(self.params.lags))

    def stream(self, rows: np.ndarray, label_distribution: Optional[np.ndarray],
               seed: np.random.SeedSequence) -> Iterator[Sample]:
        """In time order: no label mix, no seed."""
        return _aqi_stream(rows, _aqi_table(self.params.lags))

    def evaluation_data(self) -> Tuple[np.ndarray, np.ndarray]:
        table = _aqi_table(self.params.lags)
        rows = (table.years == AQI_TEST_YEAR) & table.usable
        return table.x[rows], table.y[rows]
