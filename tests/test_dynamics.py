"""Network dynamics without a network: the probe's reading of ping, the records of applied
events as metrics and as the report's table."""

from __future__ import annotations

import json
import subprocess

import matplotlib.pyplot as plt
import pytest

from edgetestbed.analysis.netevents import event_cost, event_latency, event_traffic, network_events_report, \
    network_events_section
from edgetestbed.analysis.runlogs import Event, RunLogs
from edgetestbed.analysis.plots import mark_events
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


NODES = """\
  - {id: root}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1], link: {bw: 10Mbit, delay: 20ms}}
events:
  - {at: 1s, link: w1, set: {delay: 40ms}}
  - {at: 2s, link: w1, set: {loss: 1%}}
  - {window: 3, link: w2, down: true}
"""


def probe(at: float, rtt: float | None) -> dict:
    return {"at": at, "sent": 8, "received": 0 if rtt is None else 8, "rtt_min_ms": rtt,
            "delay_ms": None if rtt is None else rtt / 2}


def test_metrics_set_each_measured_delay_beside_the_configured_one_and_the_report_tabulates_them(tmp_path):
    spec = load_spec_text(small_spec(NODES), "events.yaml")
    records = [{**event.describe(), "due": event.offset(1.0), "applied": event.offset(1.0) + 0.01,
                "before": probe(0.5, 10.3), "after": probe(1.02, rtt)}
               for event, rtt in zip(spec.events, (80.4, 80.5, None))]
    records[2]["after"] = None
    (tmp_path / RECORDS).write_text("".join(json.dumps(record) + "\n" for record in records))
    root = {"t": [0.9, 1.9, 2.9, 3.9], "value": [0.5, 0.4, 0.6, 0.7]}
    sends = [("w1", "root", 0.5, 100), ("root", "w1", 1.5, 700), ("w2", "w1", 1.6, 9), ("w1", "sensor0", 1.7, 9)]
    logs = {ident: [Event(ident, "CONNECTION", {"direction": "sent", "peer": peer, "bytes": size}, 1000 + t)
                    for sender, peer, t, size in sends if sender == ident] for ident in ("root", "w1", "w2")}
    run = RunLogs(tmp_path, spec, {}, logs, start_at=1000.0, origin=1000.0)
    windows = [(0.5, 0.2), (0.95, 0.6), (2.1, 0.3)]   # back at 0.7, 1.55 and 2.4
    events = network_events_section(run, root, "accuracy", windows)["events"]
    # window interval 1 s: 100 bytes in the second before the first event, 700 + 9 after (not the sensor's)
    assert [(e["tree_bytes_before"], e["tree_bytes_after"], e["tree_extra_bytes"]) for e in events[:2]] == [
        (100, 709, 609), (709, 0, -709)]
    # at 1 s window 1 is travelling (0.6 s); at 2 s, window 2 finishes within the interval after (0.3 s)
    assert [(e["latency_before_s"], e["latency_after_s"], e["extra_latency_s"]) for e in events[:2]] == [
        (0.2, 0.6, pytest.approx(0.4)), (0.6, 0.3, pytest.approx(-0.3))]
    assert [(e["configured_before_ms"], e["configured_after_ms"]) for e in events] == [(5, 40), (40, 40), (20, 20)]
    assert events[0]["after"]["delay_ms"] == pytest.approx(40.2)
    blocks = network_events_report({"network_events": {"events": events}})
    rows = blocks[-1].content[1:]
    assert [row[:3] for row in rows] == [["0", "w1", "delay 40 ms"], ["1", "w1", "loss 1 %"], ["2", "w2", "down"]]
    assert rows[0][6:] == ["40 ms / 40.2 ms", "10.0 points", "1.89 s", "+609 B", "0.20 → 0.60 s"]
    assert rows[2][6] == "20 ms / not probed"
    assert [(e["root_score_before"], e["root_dip"], e["root_recovery_s"]) for e in events] == [
        (0.5, pytest.approx(0.1), pytest.approx(1.89)), (0.4, 0.0, pytest.approx(0.89)), (0.6, 0.0, pytest.approx(0.89))]
    assert network_events_report({"network_events": {"events": []}}) == []
    elsewhere = RunLogs(tmp_path / "elsewhere", spec, {}, {})
    assert network_events_section(elsewhere, root, "accuracy", windows) == {"events": []}


def test_a_change_of_rate_sets_the_measured_rate_beside_the_configured_one(tmp_path):
    spec = load_spec_text(small_spec(NODES + "  - {at: 2500ms, link: w2, set: {bw: 2Mbit}}\n"), "events.yaml")
    (change,) = [event for event in spec.events if event.index == 3]
    record = {**change.describe(), "due": 2.5, "applied": 2.51, "before": {**probe(1.5, 40.2), "rate_mbit": 9.93},
              "after": {**probe(2.6, 40.2), "rate_mbit": 1.98}}
    (tmp_path / RECORDS).write_text(json.dumps(record) + "\n")
    run = RunLogs(tmp_path, spec, {}, {}, start_at=1000.0, origin=1000.0)
    (event,) = network_events_section(run, {"t": [], "value": []}, "accuracy", [])["events"]
    assert (event["configured_rate_before_mbit"], event["configured_rate_after_mbit"]) == (10, 2)
    (row,) = network_events_report({"network_events": {"events": [event]}})[-1].content[1:]
    assert row[2] == "rate 2 Mbit/s"
    assert row[5:7] == ["20 ms / 20.1 ms; 10 / 9.93 Mbit/s", "20 ms / 20.1 ms; 2 / 1.98 Mbit/s"]


def test_an_event_not_applied_or_without_windows_around_it_costs_nothing_known():
    assert event_traffic([(1.0, 5)], None, 2.0) == {"bytes_before": None, "bytes_after": None, "extra_bytes": None}
    assert event_latency([(1.5, 0.5)], 1.0, 1.0) == {"latency_before_s": None, "latency_after_s": 0.5,
                                                     "extra_latency_s": None}
    assert event_latency([(3.0, 0.5)], 1.0, 1.0)["latency_after_s"] is None   # finished too late to tell
    assert event_latency([], None, 1.0)["latency_before_s"] is None


@pytest.mark.parametrize("applied, lower_is_better, expected", [
    (0.5, False, (None, None, None)),           # before the first evaluation: nothing to compare with
    (1.5, False, (0.8, 0.3, 2.5)),              # 0.8, then 0.5 and 0.7, back to 0.8 at 4.0
    (4.5, False, (0.8, 0.1, None)),             # 0.8, then only 0.7: never recovered
    (1.5, True, (0.8, 0.0, 0.5)),               # RMSE: 0.5 is better at once
])
def test_an_events_cost_is_the_models_dip_and_its_time_to_recover(applied, lower_is_better, expected):
    curve = {"t": [1.0, 2.0, 3.0, 4.0, 5.0], "value": [0.8, 0.5, 0.7, 0.8, 0.7]}
    cost = event_cost(curve, applied, lower_is_better)
    assert (cost["score_before"], cost["dip"], cost["recovery_s"]) == tuple(
        None if value is None else pytest.approx(value) for value in expected)


def test_the_time_plots_mark_every_applied_event():
    events = [{"index": 0, "applied": 2.0}, {"index": 1, "applied": None}, {"index": 2, "applied": 5.5}]
    figure, axes = plt.subplots()
    assert mark_events(axes, {"network_events": {"events": events}}) == 2
    assert [line.get_xdata()[0] for line in axes.lines] == [2.0, 5.5]
    assert mark_events(axes, {}) == 0
    plt.close(figure)
