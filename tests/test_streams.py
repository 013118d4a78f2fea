"""Sensor streams on the real datasets: reproducible, drawn from training data, partitioned as documented."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetestbed.data import sources
from edgetestbed.data.datasets import aqi as aqi_dataset
from edgetestbed.data.partitions.by_season import BySeason
from edgetestbed.data.partitions.iid import share
from edgetestbed.data.streams import StreamDefinition, take, take_each
from edgetestbed.errors import UserError


@pytest.fixture(scope="module", autouse=True)
def fetched():
    sources.fetch_all(quiet=True)


def stream_for(dataset, partition, params, sensor_index, n_sensors, seed):
    return StreamDefinition(dataset, partition, params or {}).stream(sensor_index, n_sensors, seed)


def _digest(dataset, partition, sensor, n_sensors, seed, n=300):
    x, y = take(stream_for(dataset, partition, None, sensor, n_sensors, seed), n)
    return hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()


def test_same_inputs_give_the_same_samples_in_another_process():
    code = ("from tests.test_streams import _digest; "
            "print(_digest('mnist', 'biased', 3, 10, 7), _digest('aqi', 'by_season', 2, 4, 7))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1])
    here = f"{_digest('mnist', 'biased', 3, 10, 7)} {_digest('aqi', 'by_season', 2, 4, 7)}"
    assert other.stdout.strip() == here


def test_sensors_and_seeds_get_different_streams_except_replicated():
    assert _digest("mnist", "iid", 0, 4, 1) != _digest("mnist", "iid", 1, 4, 1)
    assert _digest("mnist", "iid", 0, 4, 1) != _digest("mnist", "iid", 0, 4, 2)
    assert _digest("mnist", "replicated", 0, 4, 1) == _digest("mnist", "replicated", 3, 4, 1)
    assert _digest("mnist", "replicated", 0, 4, 1) != _digest("mnist", "iid", 0, 4, 1)


def test_iid_sensors_stream_disjoint_shares_of_the_training_set():
    shares = [share(60000, k, 7, 5) for k in range(7)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(60000))
    assert {len(share) for share in shares} == {8571, 8572}
    first, second = (take(stream_for("mnist", "iid", None, k, 7, 5), 300)[0] for k in (0, 1))
    assert not {row.tobytes() for row in first} & {row.tobytes() for row in second}


def test_aqi_iid_share_is_in_time_order():
    _, y = take(stream_for("aqi", "iid", None, 2, 3, 0), 100)
    table = aqi_dataset._aqi_table(3)
    training = aqi_dataset._aqi_candidates(table).rows
    rows = training[share(len(training), 2, 3, 0)]
    np.testing.assert_array_equal(y, table.y[rows[:100]])
    assert np.all(np.diff(rows) > 0)


def test_mnist_samples_come_from_the_training_set():
    mnist = sources.load_mnist()
    train_rows = {row.tobytes() for row in mnist.x_train}
    x, y = take(stream_for("mnist", "iid", None, 0, 1, 0), 200)
    assert x.dtype == np.float32 and x.shape == (200, 784)
    assert all(row.tobytes() in train_rows for row in x)


@pytest.mark.parametrize("bias", [0.64, 0.9])
def test_biased_stream_has_its_own_digit_with_probability_bias(bias):
    n = 5000
    for sensor in (3, 12):
        _, y = take(stream_for("mnist", "biased", {"bias": bias}, sensor, 20, 0), n)
        counts = np.bincount(y, minlength=10) / n
        assert abs(counts[sensor % 10] - bias) < 0.03  # about 4 standard deviations
        others = np.delete(counts, sensor % 10)
        assert np.all(abs(others - (1 - bias) / 9) < 0.02)


def test_by_label_default_and_explicit_labels():
    _, y = take(stream_for("mnist", "by_label", None, 1, 5, 0), 500)
    assert set(y.tolist()) == {2, 3}
    _, y = take(stream_for("mnist", "by_label", {"labels": [[0], [4, 9]]}, 3, 4, 0), 500)
    assert set(y.tolist()) == {4, 9}
    _, y = take(stream_for("mnist", "by_label", {"labels": 3}, 1, 4, 0), 500)
    assert set(y.tolist()) == {3, 4, 5}


def test_a_digit_repeats_only_after_all_its_images_were_streamed():
    fives = int(np.sum(sources.load_mnist().y_train == 5))
    x, _ = take(stream_for("mnist", "by_label", {"labels": [[5]]}, 0, 1, 0), fives + 1)
    assert len({row.tobytes() for row in x[:fives]}) == fives
    assert x[fives].tobytes() in {row.tobytes() for row in x[:fives]}


def test_mixed_makes_the_first_sensors_biased_and_the_rest_iid():
    definition = StreamDefinition("mnist", "mixed", {"biased_fraction": 0.75})
    biased = [definition.label_distribution(k, 8) is not None for k in range(8)]
    assert biased == [True] * 6 + [False] * 2
    assert definition.label_distribution(4, 8)[4] == pytest.approx(0.64)


def test_label_distribution_names_the_own_digits():
    distribution = StreamDefinition("mnist", "biased").label_distribution(13, 20)
    assert distribution.sum() == pytest.approx(1.0)
    assert np.flatnonzero(distribution > 0.1).tolist() == [3]
    assert StreamDefinition("mnist", "iid").label_distribution(0, 1) is None


def test_mnist_evaluation_data_is_the_test_set():
    x, y = StreamDefinition("mnist", "biased").evaluation_data()
    assert x.shape == (10000, 784) and np.bincount(y)[1] == 1135


def test_aqi_year_stream_is_that_year_in_time_order_and_loops():
    aqi = sources.load_aqi()
    years = aqi.timestamps.astype("datetime64[Y]").astype(int) + 1970
    pm25_2013 = aqi.pm25[(years == 2013) & ~np.isnan(aqi.pm25)]
    x, y = take(stream_for("aqi", "by_year", None, 3, 4, 0), len(pm25_2013) + 10)
    assert x.shape[1] == len(aqi.feature_names) + 3
    np.testing.assert_array_equal(y[: len(pm25_2013)], pm25_2013)
    np.testing.assert_array_equal(y[len(pm25_2013):], pm25_2013[:10])


def test_aqi_seasons_split_the_training_hours():
    table = aqi_dataset._aqi_table(3)
    candidates = aqi_dataset._aqi_candidates(table)
    seasons = [_mask(BySeason(None).rows(candidates, k, 4, 0), len(table.y)) for k in range(4)]
    everything = _mask(candidates.rows, len(table.y))
    np.testing.assert_array_equal(sum(s.astype(int) for s in seasons), everything.astype(int))
    assert set(table.months[seasons[0]].tolist()) == {12, 1, 2}


def _mask(rows, size):
    mask = np.zeros(size, dtype=bool)
    mask[rows] = True
    return mask


def test_aqi_evaluation_data_is_2014_without_missing_values():
    aqi = sources.load_aqi()
    in_2014 = aqi.timestamps >= np.datetime64("2014-01-01T00")
    x, y = StreamDefinition("aqi", "by_year", {"lags": 6}).evaluation_data()
    assert len(y) == int(np.sum(in_2014 & ~np.isnan(aqi.pm25)))
    assert x.shape[1] == len(aqi.feature_names) + 6 and not np.isnan(x).any()


def test_forward_fill_and_previous_hours():
    values = np.array([np.nan, 1.0, np.nan, np.nan, 4.0])
    np.testing.assert_array_equal(aqi_dataset._forward_filled(values), [np.nan, 1, 1, 1, 4])
    np.testing.assert_array_equal(aqi_dataset._previous_hours(np.array([1.0, 2, 3]), 2),
                                  [[np.nan, np.nan], [1, np.nan], [2, 1]])


@pytest.mark.parametrize("dataset, partition, params, message", [
    ("cifar", "iid", {}, "'cifar' is not a known dataset"),
    ("mnist", "by_year", {}, "no partition 'by_year'"),
    # parameters in validate's words: the spec and the streams check them with one model
    ("mnist", "iid", {"bias": 0.5}, "data.bias: unknown key 'bias'"),
    ("mnist", "biased", {"bias": 1.5}, "data.bias: 1.5 is too large; expected at least 0 and at most 1"),
    ("mnist", "biased", {"bias": True}, "data.bias: true is not a number"),
    ("mnist", "by_label", {"labels": [[1, 12]]}, "data.labels: .* is not a list of lists of digits"),
    ("mnist", "by_label", {"labels": 0}, "data.labels: 0 is too small"),
    ("mnist", "by_label", {"labels": []}, "data.labels: .* is not a list of lists of digits"),
    ("aqi", "by_season", {"lags": -1}, "data.lags: -1 is too small"),
])
def test_bad_definitions_are_user_errors(dataset, partition, params, message):
    with pytest.raises(UserError, match=message):
        StreamDefinition(dataset, partition, params)


def test_take_each_stacks_each_streams_next_samples_in_turn():
    definition = StreamDefinition("mnist", "biased")
    together = take_each([definition.stream(k, 3, 1) for k in range(3)], 50)
    one_by_one = [take(definition.stream(k, 3, 1), 50) for k in range(3)]
    np.testing.assert_array_equal(together[0], np.concatenate([x for x, _ in one_by_one]))
    np.testing.assert_array_equal(together[1], np.concatenate([y for _, y in one_by_one]))
    assert together[0].dtype == np.float32 and together[0].shape == (150, 784)


@pytest.mark.parametrize("dataset, partition, wire_dtype, wire_bytes", [
    ("mnist", "biased", "uint8", 784), ("aqi", "by_year", "float32", None)])
def test_sensors_send_features_in_their_native_dtype_and_workers_get_them_back_exactly(
        dataset, partition, wire_dtype, wire_bytes):
    definition = StreamDefinition(dataset, partition)
    x, _ = take(definition.stream(1, 4, 3), 50)
    on_wire = np.stack([definition.to_wire(sample) for sample in x])
    assert on_wire.dtype == np.dtype(wire_dtype) and definition.wire_dtype == wire_dtype
    assert wire_bytes is None or on_wire[0].nbytes == wire_bytes   # MNIST: the 8-bit pixels, not float32's 3136
    back = definition.from_wire(on_wire)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, x)
