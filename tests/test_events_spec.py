"""The spec's ``events``: resolved in order, refused with file, line and field, planned dynamic."""

import pytest
import yaml

from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.model import LinkChange, LinkEvent, NodeEvent, SensorEvent
from edgetestbed.spec.plan import plan_network
from tests.test_spec import HEAD, assert_problem

# Lines 4-18: userspace shaping, 10 windows of 3s, a root, a parameter server and two workers;
# w2 has no bw. Events start at line 18 (the first at 19).
TREE = HEAD + """\
network: {shaping: userspace}
windows: {interval: 3s, limit: 10}
nodes:
  - id: root
  - id: ps1
    parent: root
    link: {bw: 10Mbit}
  - id: w1
    parent: ps1
    sensors: [0]
    link: {bw: 5Mbit, delay: 5ms}
  - id: w2
    parent: ps1
    sensors: [1]
events:
"""
FIRST = 19   # the line of the first event


def with_events(*events: str, head: str = TREE) -> str:
    return head + "".join(f"  - {event}\n" for event in events)


def test_events_resolve_in_time_order():
    spec = load_spec_text(with_events("{window: 2, link: w1, set: {delay: 200ms, bw: 1Mbit, loss: 5%, jitter: 10ms}}",
                                      "{at: 1500ms, link: w2, down: true}",
                                      "{at: 6s, link: w2, up: true}",
                                      "{at: 0s, link: ps1, set: {loss: 1%}}"))
    assert spec.events == (
        LinkEvent(3, "ps1", 0.0, None, LinkChange(loss_pct=1.0), None),
        LinkEvent(1, "w2", 1.5, None, None, "down"),
        LinkEvent(0, "w1", None, 2, LinkChange(delay_ms=200.0, jitter_ms=10.0, loss_pct=5.0, bw_mbit=1.0), None),
        LinkEvent(2, "w2", 6.0, None, None, "up"))
    assert [event.offset(spec.windows.interval) for event in spec.events] == [0.0, 1.5, 6.0, 6.0]
    assert spec.events[2].describe() == {"index": 0, "link": "w1", "window": 2, "action": "set", "delay_ms": 200.0,
                                         "jitter_ms": 10.0, "loss_pct": 5.0, "bw_mbit": 1.0}
    assert spec.events[1].describe() == {"index": 1, "link": "w2", "at_s": 1.5, "action": "down",
                                         "state": "down"}


def test_no_events_by_default():
    spec = load_spec_text(TREE.removesuffix("events:\n"))
    assert spec.events == () and "events" not in spec.to_dict()
    assert not any(link.dynamic for link in plan_network(spec).shaped_links)


def test_auto_shaping_is_left_to_the_run():
    text = with_events("{at: 1s, link: w1, down: true}").replace("shaping: userspace", "shaping: auto")
    assert len(load_spec_text(text).events) == 1


def test_to_dict_round_trips_events():
    spec = load_spec_text(with_events("{at: 20s, link: w1, set: {delay: 200ms}}",
                                      "{window: 1, link: w2, down: true}",
                                      "{window: 3, link: w2, up: true}",
                                      "{at: 300ms, link: ps1, set: {bw: 500kbit, loss: 0.5%}}"))
    data = spec.to_dict()
    assert data["events"][0] == {"at": "20s", "link": "w1", "set": {"delay": "200ms"}}
    assert data["events"][1] == {"window": 1, "link": "w2", "down": True}
    again = load_spec_text(yaml.safe_dump(data))
    assert again == spec and again.to_dict() == data


def test_links_named_by_events_are_dynamic():
    spec = load_spec_text(with_events("{at: 1s, link: w2, set: {delay: 10ms}}", "{at: 2s, link: ps1, down: true}"))
    dynamic = {link.label: link.dynamic for link in plan_network(spec).shaped_links}
    assert dynamic == {"ps1-root": True, "w1-ps1": False, "sensor0-w1": False,
                       "w2-ps1": True, "sensor1-w2": False}


@pytest.mark.parametrize("event, field, words", [
    ("{at: 1s, link: w11, down: true}", "link", ["unknown node 'w11'", "did you mean 'w1'?",
                                                "expected the id of a node other than the root: ps1, w1, w2"]),
    ("{at: 1s, link: root, down: true}", "link", ["the root has no link to a parent", "ps1, w1, w2"]),
    ("{at: 30s, link: w1, down: true}", "at", ["30s is past the run's end", "expected less than 30s",
                                               "10 × 3s"]),
    ("{window: 10, link: w1, down: true}", "window", ["10 is past the run's end",
                                                      "expected a window of 0 .. 9 (windows.limit is 10)"]),
    ("{at: 1s, link: w2, set: {bw: 1Mbit}}", "set.bw", ["w2's link has no bw in the spec",
                                                        "expected a bw on it (defaults.link)",
                                                        "the rate limiter is only installed on links that have one"]),
    ("{at: 1s, link: w1, up: true}", "up", ["w1's link is not down at 1s", "expected a down: true event"]),
    ("{at: 1s, link: w1, set: {queue: 10}}", "set.queue", ["unknown key 'queue'",
                                                          "expected one of delay, jitter, loss, bw"]),
    ("{at: 1s, link: w1, set: {}}", "set", ["no change; expected at least one of delay, jitter, loss, bw"]),
    ("{at: 1s, link: w1, set: {delay: 20}}", "set.delay", ["write 20ms or 20s, not 20"]),
    ("{at: 1s, link: w1, set: {loss: 100%}}", "set.loss", ["too large", "less than 100%"]),
    ("{at: 1s, link: w1, set: {bw: null}}", "set.bw", ["not a bandwidth"]),
    ("{at: 1s, link: w1, down: false}", "down", ["got false; expected true"]),
    ("{at: -1s, link: w1, down: true}", "at", ["too small", "at least 0"]),
    ("{window: -1, link: w1, down: true}", "window", ["too small", "at least 0"]),
    ("{link: w1, down: true}", "", ["none of at, window; expected exactly one of at: 20s"]),
    ("{at: 1s, window: 1, link: w1, down: true}", "", ["at and window together"]),
    ("{at: 1s, link: w1}", "", ["none of set, down, up; expected exactly one of set: {...}, down: true or up: true"]),
    ("{at: 1s, link: w1, down: true, up: true}", "", ["down and up together"]),
    ("{at: 1s, link: w1, kill: true}", ".kill", ["unknown key 'kill'", "expected one of at, window, link, set, "
                                                 "down, up, crash, restart, partition, heal"]),
    ("{at: 1s, down: true}", "", ["none of link, crash, restart, partition, heal, stop_sensor, start_sensor; "
                                  "expected exactly one of link: w4 with one of set: {...}, down: true or up: true; "
                                  "or one of crash, restart, partition or heal (a node id like ps2) alone; or one of "
                                  "stop_sensor or start_sensor (a sensor index like 3) alone"]),
    ("{at: 1s, link: w1, crash: w1}", "", ["link and crash together"]),
    ("{at: 1s, crash: w1, down: true}", "", ["crash with down; expected link: w4 with one of set"]),
    ("{at: 1s, crash: w1, restart: w1}", "", ["crash and restart together"]),
    ("{at: 1s, partition: 3}", "partition", ["a valid id"]),
    ("{at: 1s, crash: w11}", "crash", ["unknown node 'w11'", "did you mean 'w1'?", "ps1, w1, w2"]),
    ("{at: 1s, crash: root}", "crash", ["'root' is the root: the root cannot crash: the run ends with it"]),
    ("{at: 1s, restart: root}", "restart", ["the root cannot crash, so it cannot restart"]),
    ("{at: 1s, partition: root}", "partition", ["the root has no parent to be cut off from"]),
    ("{at: 1s, heal: rot}", "heal", ["unknown node 'rot'"]),
    ("{at: 1s, heal: w1}", "heal", ["w1's link is not down at 1s; expected a partition: w1 (or down: true) event"]),
    ("{at: 1s, restart: w1}", "restart", ["w1 is not crashed at 1s; expected a crash: w1 event before"]),
    ("{window: 10, crash: w1}", "window", ["10 is past the run's end"]),
    ("{window: 4, crash: w1}", "crash", ["crash: w1 at window 4 (12s) is never followed by restart: w1; the run "
                                         "would wait for w1 until its timeout", "expected a restart: w1 event"]),
    ("w1", "", ["got 'w1'; expected an event like {at: 20s, link: w4, set: {delay: 200ms}} or {at: 20s, crash: ps2}"]),
])
def test_a_bad_event_is_reported_at_its_line_and_field(tmp_path, event, field, words):
    path = f"events[0]{'.' + field if field and not field.startswith('.') else field}"
    assert_problem(tmp_path, with_events(event), FIRST, path, *words)


def test_bw_on_a_node_link_without_one_names_the_node(tmp_path):
    text = with_events("{at: 1s, link: w2, set: {bw: 1Mbit}}").replace(
        "    sensors: [1]\n", "    sensors: [1]\n    link: {delay: 1ms}\n")
    assert_problem(tmp_path, text, FIRST + 1, "events[0].set.bw", "expected a bw on it (nodes[3].link)")


@pytest.mark.parametrize("events, line, field, words", [
    (["{at: 6s, link: w1, set: {delay: 1ms}}", "{window: 2, link: w1, down: true}"], FIRST + 1, "events[1].window",
     ["w1's link has another event at window 2 (6s) (events[0], line 19)", "expected one event per link at a time"]),
    (["{at: 6s, link: w1, down: true}", "{at: 6000ms, link: w1, up: true}"], FIRST + 1, "events[1].at",
     ["another event at 6s"]),
    (["{at: 1s, link: w1, down: true}", "{at: 2s, link: w1, set: {delay: 1ms}}", "{at: 3s, link: w1, down: true}"],
     FIRST + 2, "events[2].down", ["w1's link is already down at 3s (since events[0], line 19)",
                                  "expected up: true before downing it again"]),
    (["{window: 3, link: w1, up: true}", "{at: 1s, link: w1, down: true}", "{window: 4, link: w1, up: true}"],
     FIRST + 2, "events[2].up", ["w1's link is not down at window 4 (12s)"]),
])
def test_contradictory_events_are_refused(tmp_path, events, line, field, words):
    assert_problem(tmp_path, with_events(*events), line, field, *words)


def test_events_at_the_same_time_on_different_links_are_fine():
    spec = load_spec_text(with_events("{at: 3s, link: w1, down: true}", "{window: 1, link: w2, down: true}",
                                      "{at: 6s, link: w1, up: true}", "{at: 6s, link: w2, up: true}"))
    assert [(event.index, event.link) for event in spec.events] == [(0, "w1"), (1, "w2"), (2, "w1"), (3, "w2")]


def test_events_need_an_emulated_network(tmp_path):
    text = with_events("{at: 1s, link: w1, down: true}").replace("network: {shaping: userspace}",
                                                                  "network: {backend: loopback}")
    assert_problem(tmp_path, text, FIRST - 1, "events", "events on links and nodes need an emulated network; "
                   "the loopback backend emulates no link", "or only stop_sensor and start_sensor events")


def test_every_shaping_backend_takes_link_events():
    for shaping in ("userspace", "netem", "auto"):
        text = with_events("{at: 1s, link: w1, set: {delay: 40ms}}").replace("shaping: userspace", f"shaping: {shaping}")
        assert [event.link for event in load_spec_text(text).events] == ["w1"]


def test_every_event_problem_is_reported_at_once(tmp_path):
    text = with_events("{at: 1s, link: w9, down: true}", "{window: 12, link: w1, down: true}",
                       "{at: 1s, link: w2, set: {bw: 1Mbit}}")
    for line, field in ((FIRST, "events[0].link"), (FIRST + 1, "events[1].window"), (FIRST + 2, "events[2].set.bw")):
        assert_problem(tmp_path, text, line, field)


def test_validate_lists_the_events(tmp_path, capsys):
    from edgetestbed.cli import main
    topo = tmp_path / "topo.yaml"
    topo.write_text(with_events("{window: 2, link: w1, set: {delay: 200ms, loss: 5%}}",
                                "{at: 1.5s, link: w2, down: true}"))
    assert main(["validate", str(topo)]) == 0
    out = capsys.readouterr().out
    assert "  event at 1.5s: w2's link down\n  event at window 2: w1's link set delay 200ms, loss 5%\n" in out


def test_node_faults_resolve_mixed_with_link_events_in_time_order():
    spec = load_spec_text(with_events("{at: 9s, restart: ps1}", "{window: 1, partition: w2}",
                                      "{at: 1s, crash: ps1}", "{at: 1s, link: w1, down: true}",
                                      "{window: 4, heal: w2}", "{at: 2s, link: w1, up: true}"))
    assert spec.events == (
        NodeEvent(2, "ps1", 1.0, None, "crash"),
        LinkEvent(3, "w1", 1.0, None, None, "down"),
        LinkEvent(5, "w1", 2.0, None, None, "up"),
        LinkEvent(1, "w2", None, 1, None, "down", "partition"),
        NodeEvent(0, "ps1", 9.0, None, "restart"),
        LinkEvent(4, "w2", None, 4, None, "up", "heal"))
    assert spec.events[3] != LinkEvent(1, "w2", None, 1, None, "down") and spec.events[1].name == "down"
    assert spec.events[0].describe() == {"index": 2, "node": "ps1", "at_s": 1.0, "action": "crash"}
    assert spec.events[3].describe() == {"index": 1, "link": "w2", "window": 1, "action": "partition",
                                         "state": "down"}
    assert spec.events[4].offset(3.0) == 9.0 and spec.events[5].offset(3.0) == 12.0
    data = spec.to_dict()
    assert data["events"][:3] == [{"at": "9s", "restart": "ps1"}, {"window": 1, "partition": "w2"},
                                  {"at": "1s", "crash": "ps1"}]
    assert data["events"][4] == {"window": 4, "heal": "w2"}
    again = load_spec_text(yaml.safe_dump(data))
    assert again == spec and again.to_dict() == data


def test_a_partitioned_link_is_dynamic_a_crashed_node_is_not():
    spec = load_spec_text(with_events("{at: 1s, partition: w2}", "{at: 2s, heal: w2}",
                                      "{at: 1s, crash: w1}", "{at: 5s, restart: w1}"))
    dynamic = {link.label: link.dynamic for link in plan_network(spec).shaped_links}
    assert dynamic["w2-ps1"] and not dynamic["w1-ps1"] and not dynamic["ps1-root"]


@pytest.mark.parametrize("events, line, field, words", [
    (["{at: 1s, crash: w1}", "{at: 2s, crash: w1}", "{at: 3s, restart: w1}"], FIRST + 1, "events[1].crash",
     ["w1 is already crashed at 2s (since events[0], line 19)", "expected restart: w1 before crashing it again"]),
    (["{at: 3s, crash: w1}", "{window: 1, restart: w1}"], FIRST + 1, "events[1].window",
     ["w1 has another event at window 1 (3s) (events[0], line 19)", "expected one event per node at a time"]),
    (["{at: 3s, crash: w1}", "{window: 1, partition: w1}", "{at: 4s, restart: w1}"], FIRST + 1, "events[1].window",
     ["w1 has another event at window 1 (3s)", "one event per node"]),
    (["{at: 1s, link: w1, down: true}", "{at: 2s, partition: w1}"], FIRST + 1, "events[1].partition",
     ["w1's link is already down at 2s (since events[0], line 19)",
      "expected heal: w1 (or up: true) before partitioning it again"]),
    (["{at: 1s, partition: w1}", "{at: 2s, link: w1, up: true}", "{at: 3s, link: w1, up: true}"], FIRST + 2,
     "events[2].up", ["w1's link is not down at 3s"]),
    (["{at: 1s, crash: w1}", "{at: 2s, restart: w1}", "{at: 3s, crash: w1}"], FIRST + 2, "events[2].crash",
     ["crash: w1 at 3s is never followed by restart: w1", "before the run's end (30s)"]),
])
def test_contradictory_node_faults_are_refused(tmp_path, events, line, field, words):
    assert_problem(tmp_path, with_events(*events), line, field, *words)


def test_validate_lists_node_faults(tmp_path, capsys):
    from edgetestbed.cli import main
    topo = tmp_path / "topo.yaml"
    topo.write_text(with_events("{at: 10s, crash: ps1}", "{window: 4, restart: ps1}", "{at: 1s, partition: w2}",
                                "{at: 2s, heal: w2}"))
    assert main(["validate", str(topo)]) == 0
    out = capsys.readouterr().out
    assert ("  event at 1s: partition w2 (its link down)\n  event at 2s: heal w2 (its link up)\n"
            "  event at 10s: crash ps1\n  event at window 4: restart ps1\n") in out


def test_sensor_events_resolve_read_back_and_need_no_emulated_network(tmp_path, capsys):
    from edgetestbed.cli import main
    from edgetestbed.process.sampling import stopped_spans, withheld
    events = ("{window: 1, stop_sensor: 0}", "{at: 4500ms, start_sensor: 0}", "{at: 9s, stop_sensor: 1}")
    for network in ("{shaping: userspace}", "{shaping: netem}", "{backend: loopback}"):
        spec = load_spec_text(with_events(*events).replace("network: {shaping: userspace}", f"network: {network}"))
        assert spec.events == (SensorEvent(0, 0, None, 1, "stop"), SensorEvent(1, 0, 4.5, None, "start"),
                               SensorEvent(2, 1, 9.0, None, "stop"))
    assert spec.events[0].describe() == {"index": 0, "node": "sensor0", "window": 1, "action": "stop_sensor"}
    data = spec.to_dict()
    assert data["events"][:2] == [{"window": 1, "stop_sensor": 0}, {"at": "4.5s", "start_sensor": 0}]
    assert load_spec_text(yaml.safe_dump(data)) == spec
    assert stopped_spans(spec, 0) == [(3.0, 4.5)] and stopped_spans(spec, 1) == [(9.0, float("inf"))]
    rate, is_withheld = spec.sensors.rate, withheld(spec, 0)
    assert [is_withheld(round(t * rate) + step) for t in (3, 4.5) for step in (-1, 0)] == [False, True, True, False]
    topo = tmp_path / "topo.yaml"
    topo.write_text(with_events(*events))
    assert main(["validate", str(topo)]) == 0
    assert "  event at window 1: stop sensor 0\n  event at 4.5s: start sensor 0\n" in capsys.readouterr().out


def test_sent_mask_leaves_out_what_a_stopped_sensor_withheld_sensor_by_sensor():
    from edgetestbed.process.sampling import schedule_of, sent_mask, withheld
    spec = load_spec_text(with_events("{at: 4500ms, stop_sensor: 1}"))
    due = schedule_of(spec, 0.0).samples_in(1)   # window 1, [3s, 6s): sensor 1 stops half-way
    mask = sent_mask([withheld(spec, index) for index in spec.sensor_ids], due)
    stopped_at = round(4.5 * spec.sensors.rate) - due.start
    assert mask == [True] * len(due) + [True] * stopped_at + [False] * (len(due) - stopped_at)
    assert sent_mask([withheld(spec, 0)], due) == [True] * len(due) and sent_mask([], due) == []


@pytest.mark.parametrize("events, line, field, words", [
    (["{at: 1s, stop_sensor: 7}"], FIRST, "events[0].stop_sensor",
     ["no sensor 7 in the spec; expected the index of a sensor that a worker lists: 0, 1"]),
    (["{at: 1s, start_sensor: 0}"], FIRST, "events[0].start_sensor",
     ["sensor 0 is not stopped at 1s; expected a stop_sensor: 0 event before"]),
    (["{at: 1s, stop_sensor: 0}", "{window: 1, stop_sensor: 0}"], FIRST + 1, "events[1].stop_sensor",
     ["sensor 0 is already stopped at window 1 (3s) (since events[0], line 19)",
      "expected start_sensor: 0 before stopping it again"]),
    (["{at: 3s, stop_sensor: 0}", "{window: 1, start_sensor: 0}"], FIRST + 1, "events[1].window",
     ["sensor0 has another event at window 1 (3s)"]),
    (["{at: 1s, stop_sensor: 0, crash: w1}"], FIRST, "events[0]", ["crash and stop_sensor together"]),
    (["{at: 31s, stop_sensor: 0}"], FIRST, "events[0].at", ["31s is past the run's end"]),
])
def test_contradictory_sensor_events_are_refused(tmp_path, events, line, field, words):
    assert_problem(tmp_path, with_events(*events), line, field, *words)

