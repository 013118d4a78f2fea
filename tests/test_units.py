"""Unit parsing: what a user may write, what it means, and what they are told when it is wrong."""

import pytest

from edgetestbed.params.units import (format_bandwidth, format_duration, format_percent, format_rate,
                                    format_size, parse_bandwidth, parse_duration, parse_percent,
                                    parse_rate, parse_size)


@pytest.mark.parametrize("text, mbit", [
    ("10Mbit", 10.0), ("500kbit", 0.5), ("1Gbit", 1000.0), ("2.5Mbit", 2.5), ("10mbit", 10.0),
    ("10 MBIT", 10.0), ("64000bit", 0.064), ("0", 0.0), (0, 0.0),
])
def test_bandwidth_in_mbit_per_second(text, mbit):
    assert parse_bandwidth(text) == mbit


def test_bandwidth_error_reads_as_in_the_design():
    with pytest.raises(ValueError, match=r"^'10MB' is not a bandwidth; expected bits per second "
                                         r"like 10Mbit \(MB would be bytes\)$"):
        parse_bandwidth("10MB")


@pytest.mark.parametrize("text, seconds", [
    ("20ms", 0.02), ("1.5s", 1.5), ("500us", 0.0005), ("500µs", 0.0005), ("3s", 3.0),
    ("2min", 120.0), ("1h", 3600.0), (0, 0.0),
])
def test_duration_in_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_duration_in_milliseconds_is_exact():
    assert parse_duration("70ms", unit="ms") == 70.0   # 0.07 * 1000 would be 70.00000000000001
    assert parse_duration("1.5s", unit="ms") == 1500.0


def test_percent_needs_the_sign():
    assert parse_percent("1%") == 1.0
    assert parse_percent("0.5%") == 0.5
    for bare in (1, "1"):
        with pytest.raises(ValueError, match=r"write 1%, not 1"):
            parse_percent(bare)
    for outside in ("-1%", "101%"):
        with pytest.raises(ValueError, match=r"is not a percentage from 0% to 100%"):
            parse_percent(outside)


@pytest.mark.parametrize("text, size", [
    ("256M", 256 * 2**20), ("256MB", 256 * 2**20), ("256MiB", 256 * 2**20), ("256m", 256 * 2**20),
    ("1G", 2**30), ("512K", 512 * 2**10), ("1.5G", 3 * 2**29), ("100B", 100),
])
def test_size_in_bytes_binary_like_docker(text, size):
    assert parse_size(text) == size
    assert isinstance(parse_size(text), int)


BANDWIDTH = "expected bits per second like 10Mbit"
DURATION = "expected a duration like 20ms or 1.5s"
SIZE = "expected bytes like 256M or 1G"


@pytest.mark.parametrize("parse, text, expected, hint", [
    (parse_bandwidth, "10MB", BANDWIDTH, "(MB would be bytes)"),
    (parse_bandwidth, "10MiB", BANDWIDTH, "would be bytes"),
    (parse_bandwidth, "10Mbps", BANDWIDTH, "ambiguous"),
    (parse_bandwidth, "10Mb", BANDWIDTH, "write Mbit"),
    (parse_bandwidth, "10", BANDWIDTH, "write 10Mbit, not 10"),
    (parse_bandwidth, 10, BANDWIDTH, "write 10Mbit, not 10"),
    (parse_bandwidth, "fast", BANDWIDTH, "is not a bandwidth"),
    (parse_bandwidth, "10 Mbit/s", BANDWIDTH, "is not a bandwidth"),
    (parse_bandwidth, True, BANDWIDTH, "is not a bandwidth"),
    (parse_bandwidth, [10], BANDWIDTH, "is not a bandwidth"),
    (parse_bandwidth, "1e999Mbit", BANDWIDTH, "is not a bandwidth"),
    (parse_duration, "20", DURATION, "write 20ms or 20s, not 20"),
    (parse_duration, "2m", DURATION, "m is ambiguous: write 2min or 20ms"),
    (parse_duration, "soon", DURATION, "is not a duration"),
    (parse_size, "256", SIZE, "write 256M, not 256"),
    (parse_size, "1Gbit", SIZE, "in bytes, not bits"),
    (parse_size, "0.3K", SIZE, "not a whole number of bytes"),
])
def test_errors_say_what_was_expected_with_an_example(parse, text, expected, hint):
    with pytest.raises(ValueError) as caught:
        parse(text)
    assert expected in str(caught.value)
    assert hint in str(caught.value)


def test_rate_per_second():
    assert parse_rate("40/s") == 40.0
    assert parse_rate("0.5/s") == 0.5
    assert parse_rate("120/min") == 2.0
    with pytest.raises(ValueError, match=r"expected a rate like 40/s or 120/min \(write 40/s, not 40\)"):
        parse_rate(40)


@pytest.mark.parametrize("fmt, value, text", [
    (format_bandwidth, 10.0, "10Mbit"), (format_bandwidth, 0.5, "500kbit"),
    (format_bandwidth, 1000.0, "1Gbit"), (format_bandwidth, 2.5, "2.5Mbit"),
    (format_duration, 0.02, "20ms"), (format_duration, 3.0, "3s"), (format_duration, 90.0, "1.5min"),
    (format_percent, 0.5, "0.5%"), (format_percent, 0.0, "0%"),
    (format_size, 256 * 2**20, "256M"), (format_size, 100, "100B"),
    (format_rate, 40.0, "40/s"), (format_rate, 0.5, "30/min"),
])
def test_formatting_reads_like_a_person_wrote_it(fmt, value, text):
    assert fmt(value) == text


@pytest.mark.parametrize("parse, fmt, values", [
    (parse_bandwidth, format_bandwidth, [0.0, 0.001, 0.1234567, 1 / 3, 7.25, 99999.9]),
    (parse_duration, format_duration, [0.0, 0.07, 1 / 3, 2.5e-5, 86400.0, 123.456]),
    (parse_percent, format_percent, [0.0, 0.01, 1 / 7, 99.9]),
    (parse_size, format_size, [1, 1023, 1025, 3 * 2**29, 2**40]),
    (parse_rate, format_rate, [0.001, 1 / 3, 40.0, 9999.5]),
])
def test_format_parses_back_to_exactly_the_value(parse, fmt, values):
    for value in values:
        assert parse(fmt(value)) == value, fmt(value)


def test_milliseconds_round_trip():
    for ms in (0.0, 0.5, 5.0, 70.0, 1500.0, 1 / 3):
        assert parse_duration(format_duration(ms, unit="ms"), unit="ms") == ms
