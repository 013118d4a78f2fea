"""The spec's background flows (``events: [{background: {...}}]``): resolved, refused with file,
line and field, written back."""

import pytest
import yaml

from edgetestbed.cli import main
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.model import FlowEvent, LinkEvent
from tests.test_events_spec import FIRST, with_events
from tests.test_spec import assert_problem

FLOW = "{background: {from: w1, to: root, rate: 5Mbit, start: 2s, stop: 8s}}"


def test_a_flow_resolves_with_its_own_times_among_the_other_events():
    spec = load_spec_text(with_events("{at: 3s, link: w2, down: true}", FLOW))
    assert spec.events == (FlowEvent(1, "w1", "root", 5.0, 2.0, 8.0), LinkEvent(0, "w2", 3.0, None, None, "down"))
    assert spec.events[0].offset(spec.windows.interval) == 2.0
    assert spec.events[0].describe() == {"index": 1, "from": "w1", "to": "root", "rate_mbit": 5.0,
                                         "at_s": 2.0, "stop_s": 8.0, "action": "background"}


def test_to_dict_writes_a_flow_back_as_given():
    spec = load_spec_text(with_events(FLOW))
    data = spec.to_dict()
    assert data["events"] == [{"background": {"from": "w1", "to": "root", "rate": "5Mbit", "start": "2s",
                                               "stop": "8s"}}]
    assert load_spec_text(yaml.safe_dump(data)) == spec


def test_validate_lists_a_flow(tmp_path, capsys):
    topo = tmp_path / "topo.yaml"
    topo.write_text(with_events(FLOW))
    assert main(["validate", str(topo)]) == 0
    assert "  event at 2s: background 5 Mbit/s from w1 to root until 8s\n" in capsys.readouterr().out


@pytest.mark.parametrize("flow, field, words", [
    ("{from: w9, to: root, rate: 5Mbit, start: 2s, stop: 8s}", "background.from", ["unknown node 'w9'", "root, ps1"]),
    ("{from: w1, to: w1, rate: 5Mbit, start: 2s, stop: 8s}", "background.to", ["w1 is also the flow's from"]),
    ("{from: w1, to: root, rate: 5Mbit, start: 8s, stop: 8s}", "background.stop", ["8s is not after start (8s)"]),
    ("{from: w1, to: root, rate: 5Mbit, start: 2s, stop: 31s}", "background.stop", ["31s is past the run's end",
                                                                                     "at most 30s"]),
    ("{from: w1, to: root, rate: 5, start: 2s, stop: 8s}", "background.rate", ["5 has no unit", "expected bits per second like 10Mbit"]),
    ("{from: w1, to: root, start: 2s, stop: 8s}", "background.rate", ["missing; expected the flow's rate, like 5Mbit"]),
])
def test_a_bad_flow_is_reported_at_its_line_and_field(tmp_path, flow, field, words):
    assert_problem(tmp_path, with_events(f"{{background: {flow}}}"), FIRST, f"events[0].{field}", *words)


def test_a_flow_takes_no_at_or_window(tmp_path):
    assert_problem(tmp_path, with_events("{at: 1s, background: {from: w1, to: root, rate: 5Mbit, start: 2s, "
                                         "stop: 8s}}"), FIRST, "events[0]", "background with at",
                   "start and stop are its times")
