"""Network dynamics without a network: the probe's reading of ping, the records of applied
events as metrics and as the report's table."""

from __future__ import annotations

import json
import subprocess

import pytest

from edgetestbed.analysis.netevents import network_events_report, network_events_section
from edgetestbed.dynamics.probe import parse_ping
from edgetestbed.dynamics.timeline import RECORDS
from edgetestbed.measure.hosttools import MeasurementError
from edgetestbed.spec.load import load_spec_text
from test_run import small_spec

NO_REPLY = """PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.

--- 10.0.0.1 ping statistics ---
8 packets transmitted, 0 received, 100% packet loss, time 150ms

"""


def test_the_probe_reads_the_minimum_round_trip_of_a_real_ping():
    output = subprocess.run(["ping", "-n", "-q", "-c", "3", "-i", "0.01", "-w", "2", "127.0.0.1"],
                            capture_output=True, text=True, check=True).stdout
    probe = parse_ping(output, at=12.0)
    assert (probe.at, probe.sent, probe.received) == (12.0, 3, 3)
    assert 0 < probe.rtt_min_ms < 5 and probe.delay_ms == probe.rtt_min_ms / 2
    assert probe.as_dict()["delay_ms"] == probe.delay_ms


def test_no_reply_is_no_delay_and_no_summary_is_an_error():
    probe = parse_ping(NO_REPLY, at=0.0)
    assert (probe.sent, probe.received, probe.rtt_min_ms, probe.delay_ms) == (8, 0, None, None)
    with pytest.raises(MeasurementError, match="no summary"):
        parse_ping("ping: connect: Network is unreachable\n", at=0.0)
