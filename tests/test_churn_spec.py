"""The spec's ``churn``: a trace file or mtbf/mttr resolved into crash and restart events,
checked with the file's events, refused with file, line and field (or CSV line and column)."""

from pathlib import Path

import pytest
import yaml

from edgetestbed.errors import SpecError
from edgetestbed.spec.churn import down_periods
from edgetestbed.spec.load import load_spec, load_spec_text
from edgetestbed.spec.model import ChurnSpec, NodeEvent
from tests.test_events_spec import TREE
from tests.test_spec import assert_problem

BASE = TREE.removesuffix("events:\n")   # lines 1-17; churn at line 18
CHURN = 18
HERE = Path(__file__).parent


def with_churn(churn: str, *events: str) -> str:
    text = BASE + f"churn: {churn}\n"
    return text + ("events:\n" + "".join(f"  - {event}\n" for event in events) if events else "")


def trace(tmp_path: Path, *rows: str, header: str = "node,down_at,up_at") -> Path:
    path = tmp_path / "availability.csv"
    path.write_text("\n".join((header, *rows)) + "\n")
    return path


def crash(index, node, at):
    return NodeEvent(index, node, at, None, "crash", "churn")


def restart(index, node, at):
    return NodeEvent(index, node, at, None, "restart", "churn")


def test_a_trace_resolves_into_crash_and_restart_events(tmp_path):
    trace(tmp_path, "w1,2s,5s", "ps1,4500ms,7s", "", "w1,10s,12s")
    (tmp_path / "topo.yaml").write_text(with_churn("{trace: availability.csv}"))
    spec = load_spec(tmp_path / "topo.yaml")   # relative to the spec's directory
    assert spec.events == (crash(0, "w1", 2.0), crash(2, "ps1", 4.5), restart(1, "w1", 5.0),
                           restart(3, "ps1", 7.0), crash(4, "w1", 10.0), restart(5, "w1", 12.0))
    assert spec.churn == ChurnSpec(trace=str((tmp_path / "availability.csv").absolute()))
    assert spec.events[0].describe() == {"index": 0, "node": "w1", "at_s": 2.0, "action": "crash",
                                         "source": "churn"}


def test_a_text_spec_reads_its_trace_from_the_current_directory(monkeypatch):
    monkeypatch.chdir(HERE)
    spec = load_spec_text(with_churn("{trace: churn_availability.csv}"))
    assert [(event.node, event.action, event.at_s) for event in spec.events] == [
        ("w1", "crash", 2.0), ("ps1", "crash", 4.5), ("w1", "restart", 5.0), ("ps1", "restart", 7.0),
        ("w1", "crash", 10.0), ("w1", "restart", 12.0)]


def test_churn_is_numbered_after_the_events_and_ordered_with_them(tmp_path):
    path = trace(tmp_path, "w1,2s,5s")
    spec = load_spec_text(with_churn(f"{{trace: {path}}}", "{at: 3s, crash: ps1}", "{window: 2, restart: ps1}",
                                     "{at: 1s, link: w2, down: true}", "{at: 5s, link: w2, up: true}"))
    assert [(event.index, getattr(event, "source", "link")) for event in spec.events] == [
        (2, "link"), (4, "churn"), (0, "events"), (3, "link"), (5, "churn"), (1, "events")]


def test_to_dict_writes_churn_as_given_and_round_trips(tmp_path):
    path = trace(tmp_path, "w1,2s,5s")
    spec = load_spec_text(with_churn(f"{{trace: {path}}}", "{at: 3s, crash: ps1}", "{at: 4s, restart: ps1}"))
    data = spec.to_dict()
    assert data["churn"] == {"trace": str(path)} and len(data["events"]) == 2
    again = load_spec_text(yaml.safe_dump(data))
    assert again == spec and again.to_dict() == data
    spec = load_spec_text(with_churn("{mtbf: 20s, mttr: 1500ms, nodes: [w1, ps1]}"))
    data = spec.to_dict()
    assert data["churn"] == {"mtbf": "20s", "mttr": "1.5s", "nodes": ["w1", "ps1"]} and "events" not in data
    again = load_spec_text(yaml.safe_dump(data))
    assert again == spec and again.to_dict() == data


def test_mtbf_churn_is_deterministic_and_ends_before_the_run_does():
    text = with_churn("{mtbf: 4s, mttr: 1s, nodes: [w1, w2, ps1]}").replace("limit: 10}", "limit: 40}")
    spec = load_spec_text(text)
    assert spec.events and spec.events == load_spec_text(text).events
    assert all(isinstance(event, NodeEvent) and event.source == "churn" for event in spec.events)
    assert {event.node for event in spec.events} == {"w1", "w2", "ps1"}
    other = load_spec_text(text.replace("name: t\n", "name: t\nseed: 7\n"))
    assert other.events != spec.events
    end = 3.0 * 40
    for node in ("w1", "w2", "ps1"):
        times = [(event.action, event.at_s) for event in spec.events if event.node == node]
        assert [action for action, _ in times] == ["crash", "restart"] * (len(times) // 2)
        assert all(a < b for (_, a), (_, b) in zip(times, times[1:])) and times[-1][1] < end
    assert down_periods(4.0, 1.0, end, 0, "w1") == down_periods(4.0, 1.0, end, 0, "w1")
    assert down_periods(4.0, 1.0, end, 0, "w1") != down_periods(4.0, 1.0, end, 0, "w2")
    assert all(up < end for _, up in down_periods(5.0, 50.0, end, 3, "w1"))


@pytest.mark.parametrize("rows, header, line, column, words", [
    (["w1,2s,5"], "node,down_at,up_at", 2, "up_at", ["'5' has no unit", "expected a duration"]),
    (["w1,2s,5s", "w9,1s,2s"], "node,down_at,up_at", 3, "node", ["unknown node 'w9'", "expected the id of a node other than the root: ps1, w1, w2"]),
    (["root,1s,2s"], "node,down_at,up_at", 2, "node", ["'root' is the root"]),
    (["w1,5s,5s"], "node,down_at,up_at", 2, "up_at", ["5s is not after down_at 5s"]),
    (["w1,5s,30s"], "node,down_at,up_at", 2, "up_at", ["30s is past the run's end; expected less than 30s"]),
    (["w1,1s,9s", "w1,5s,12s"], "node,down_at,up_at", 3, "down_at",
     ["w1 is already down at 5s (from 1s to 9s, line 2)", "do not overlap"]),
    (["w1,1s"], "node,down_at,up_at", 2, "", ["2 cells; expected 3: node,down_at,up_at"]),
    (["w1,abc,2s"], "node,down_at,up_at", 2, "down_at", ["'abc' is not a duration"]),
    ([], "node,down,up", 1, "", ["the header is 'node,down,up'; expected node,down_at,up_at"]),
])
def test_a_bad_trace_row_is_reported_at_its_line_and_column(tmp_path, rows, header, line, column, words):
    path = trace(tmp_path, *rows, header=header)
    message = _problems(tmp_path, with_churn(f"{{trace: {path}}}"))
    prefix = f"{path}:{line}: {column + ': ' if column else ''}"
    matching = [entry for entry in message.splitlines() if entry.startswith(prefix)]
    assert matching, f"no line starting {prefix!r} in:\n{message}"
    for word in words:
        assert any(word in entry for entry in matching), f"{word!r} not in {matching}"


def _problems(tmp_path: Path, text: str) -> str:
    (tmp_path / "topo.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "topo.yaml")
    return str(caught.value)


def test_an_empty_or_missing_trace_is_refused(tmp_path):
    assert_problem(tmp_path, with_churn("{trace: nowhere.csv}"), CHURN, "churn.trace",
                   f"cannot read {tmp_path / 'nowhere.csv'}", "expected a CSV file with the header node,down_at,up_at")
    (tmp_path / "availability.csv").write_text("")
    assert f"{tmp_path / 'availability.csv'}:1: the file is empty" in _problems(
        tmp_path, with_churn("{trace: availability.csv}"))


@pytest.mark.parametrize("churn, field, words", [
    ("{trace: a.csv, mtbf: 2s}", "churn", ["trace and mtbf together; expected exactly one form"]),
    ("{}", "churn", ["none of trace, mtbf"]),
    ("{mtbf: 2s, nodes: [w1]}", "churn", ["mtbf without mttr"]),
    ("{mtbf: 2s, mttr: 1s, nodes: []}", "churn", ["no nodes"]),
    ("{mtbf: 0s, mttr: 1s, nodes: [w1]}", "churn.mtbf", ["too small"]),
    ("{mtbf: 2, mttr: 1s, nodes: [w1]}", "churn.mtbf", ["2 has no unit"]),
    ("{mtbf: 2s, mttr: 1s, nodes: [w1, wx]}", "churn.nodes[1]", ["unknown node 'wx'"]),
    ("{mtbf: 2s, mttr: 1s, nodes: [root]}", "churn.nodes[0]", ["'root' is the root"]),
    ("{mtbf: 2s, mttr: 1s, nodes: [w1, w1]}", "churn.nodes[1]", ["w1 is listed twice"]),
    ("{mtbf: 2s, mttr: 1s, nodes: [w1], extra: 1}", "churn.extra", ["unknown key 'extra'"]),
])
def test_a_bad_churn_is_reported_at_its_line_and_field(tmp_path, churn, field, words):
    assert_problem(tmp_path, with_churn(churn), CHURN, field, *words)


def test_churn_is_checked_with_the_events(tmp_path):
    path = trace(tmp_path, "w1,3s,6s", "ps1,2s,4s")
    message = _problems(tmp_path, with_churn(f"{{trace: {path}}}", "{at: 1s, crash: ps1}", "{at: 9s, restart: ps1}",
                                             "{at: 6s, link: w1, down: true}", "{at: 7s, link: w1, up: true}"))
    assert f"{path}:3: down_at: ps1 is already crashed at 2s (since events[0], line 20)" in message
    assert f"{path}:2: up_at: w1 has another event at 6s (events[2], line 21)" not in message   # link events
    assert f"{path}:3: up_at: ps1 is not crashed at 4s" not in message   # still crashed by events[0]
    path = trace(tmp_path, "w1,3s,6s")
    message = _problems(tmp_path, with_churn(f"{{trace: {path}}}", "{at: 6s, crash: w1}", "{at: 8s, restart: w1}"))
    assert f"{path}:2: up_at: w1 has another event at 6s (events[0], line 20)" in message
    message = _problems(tmp_path, with_churn(f"{{trace: {path}}}", "{at: 1s, crash: w1}", "{at: 5s, restart: w1}"))
    assert f"{path}:2: down_at: w1 is already crashed at 3s (since events[0], line 20)" in message


def test_churn_needs_an_emulated_network(tmp_path):
    text = with_churn("{mtbf: 2s, mttr: 1s, nodes: [w1]}").replace(
        "network: {shaping: userspace}", "network: {backend: loopback}")
    assert_problem(tmp_path, text, CHURN, "churn", "churn needs an emulated network")


def test_validate_marks_churn_events(tmp_path, capsys):
    from edgetestbed.cli import main
    trace(tmp_path, "w1,1500ms,5s")
    topo = tmp_path / "topo.yaml"
    topo.write_text(with_churn("{trace: availability.csv}", "{at: 2s, crash: ps1}", "{at: 3s, restart: ps1}"))
    assert main(["validate", str(topo)]) == 0
    out = capsys.readouterr().out
    assert ("  event at 1.5s: crash w1 (churn)\n  event at 2s: crash ps1\n  event at 3s: restart ps1\n"
            "  event at 5s: restart w1 (churn)\n") in out
