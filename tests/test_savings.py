"""What the triggers left out, in ``metrics.json`` (``savings``), ``compare`` and the report:
counts from the DONEs and logs of a hand-written run, and the saved bytes estimated from the
nodes' own messages."""

from __future__ import annotations

import json

import pytest

from edgetestbed.analysis.compare import CSV_FIELDS, compare_runs, format_comparison
from edgetestbed.analysis.costreport import savings_section
from edgetestbed.analysis.metrics import SCHEMA_VERSION, write_metrics
from test_metrics import T0, handmade_logs, message, write_handmade_run

NOT_MODIFIED_BYTES = 80


def trigger_logs() -> dict:
    """The hand-written run, w2 under a trigger: 3 pushes suppressed, 1 update discarded, and
    two of its pulls answered NOT_MODIFIED by the root (logged at both ends)."""
    logs = handmade_logs()
    ts, kind, payload = logs["w2"][-1]
    logs["w2"][-1] = (ts, kind, {**payload, "pushes_suppressed": 3, "updates_discarded": 1, "not_modified_received": 2})
    for seq in (40, 41):
        at = T0 + 3.0 + seq / 1000
        logs["w2"] += [(at, *message("sent", "root", "PULL", seq, 100)),
                       (at + 0.001, *message("received", "root", "NOT_MODIFIED", seq, NOT_MODIFIED_BYTES))]
        logs["root"] += [(at, *message("received", "w2", "PULL", seq, 100)),
                         (at + 0.001, *message("sent", "w2", "NOT_MODIFIED", seq, NOT_MODIFIED_BYTES))]
    for ident in ("w2", "root"):
        logs[ident].sort(key=lambda event: event[0])
    return logs


def test_a_reply_to_a_waiting_poll_saved_nothing(tmp_path):
    """A sync child's polls for its round to close: NOT_MODIFIED says the round is still open."""
    logs = trigger_logs()
    for ident, direction in (("w2", "sent"), ("root", "received")):
        logs[ident] = [(ts, kind, {**payload, "waiting": True}
                        if kind == "CONNECTION" and payload["kind"] == "PULL" and payload["seq"] == 41
                        and payload["direction"] == direction else payload) for ts, kind, payload in logs[ident]]
    metrics = json.loads(write_metrics(write_handmade_run(tmp_path / "waiting", logs)).read_text())
    w2 = next(item for item in metrics["savings"]["links"] if item["child"] == "w2")
    assert w2["pulls_not_modified"] == 1 and w2["saved_bytes"] == (3 + 1) * 1000 + 1000 - NOT_MODIFIED_BYTES


@pytest.fixture
def runs(tmp_path):
    return [write_handmade_run(tmp_path / "simple"), write_handmade_run(tmp_path / "trigger", trigger_logs())]


def test_savings_per_link_with_an_estimate_from_the_nodes_own_messages(runs):
    metrics = json.loads(write_metrics(runs[1]).read_text())
    assert metrics["schema_version"] == SCHEMA_VERSION
    savings = metrics["savings"]
    assert "estimate" in savings["note"]
    w2 = next(item for item in savings["links"] if item["child"] == "w2")
    assert (w2["pushes_suppressed"], w2["updates_discarded"], w2["pulls_not_modified"]) == (3, 1, 2)
    assert w2["push_bytes_mean"] == 1000 and w2["model_bytes_mean"] == 1000
    assert w2["saved_bytes"] == (3 + 1) * 1000 + 2 * 1000 - 2 * NOT_MODIFIED_BYTES
    w1 = next(item for item in savings["links"] if item["child"] == "w1")
    assert (w1["pushes_suppressed"], w1["pulls_not_modified"], w1["saved_bytes"]) == (0, 0, 0)
    summary = metrics["summary"]
    assert (summary["pushes_suppressed"], summary["updates_discarded"], summary["pulls_not_modified"],
            summary["saved_bytes"]) == (3, 1, 2, w2["saved_bytes"])


def test_compare_shows_what_was_left_out_and_the_staleness(runs):
    simple, trigger = compare_runs(runs)
    assert simple["saved_bytes"] == 0 and trigger["saved_bytes"] == 5840
    assert {"pushes_suppressed", "pulls_not_modified", "saved_bytes", "staleness_mean"} <= set(CSV_FIELDS)
    table = format_comparison([simple, trigger])
    assert "suppressed / discarded / not modified" in table and "staleness mean / max" in table
    assert "| 3 / 1 / 2 |" in table and "| 0 / 0 / 0 |" in table


def test_the_report_has_a_section_only_when_something_was_left_out(runs):
    simple, trigger = (json.loads(write_metrics(run).read_text()) for run in runs)
    assert savings_section(simple) == [] and savings_section({"summary": {}}) == []
    text = json.dumps(savings_section(trigger), default=str)
    assert "Exchanges left out" in text and "estimate" in text and "w2" in text and "w1" not in text
