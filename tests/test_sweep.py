"""Sweeps: validation with file:line: field errors, the grid, and end to end (resume after SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgetestbed.errors import SpecError
from edgetestbed.sweep import expand, load_sweep, load_sweep_text
from edgetestbed.sweeppoints import apply_overrides, point_name
from edgetestbed.sweeprun import run_sweep

REPO = Path(__file__).resolve().parent.parent
TINY = """name: tiny
seed: 3
application: {name: mnist_mlp, hidden: [10]}
data: {dataset: mnist, partition: biased}
windows: {interval: 1s, limit: 2, epochs: 1}
defaults: {cpu: 0.2, memory: 256M, link: {bw: 10Mbit, delay: 5ms}}
sensors: {rate: 60/s, cpu: 0.05, memory: 128M}
nodes:
  - {id: root, cpu: 0.3}
  - {id: w1, parent: root, sensors: [0, 1]}
  - {id: w2, parent: root, sensors: [2, 3]}
"""


def write_base(directory: Path) -> Path:
    (directory / "tiny.yaml").write_text(TINY)
    return directory / "tiny.yaml"


def sweep_text(grid: str, extra: str = "") -> str:
    return f"name: test\nbase: tiny.yaml\n{extra}grid:\n{grid}"


def errors(tmp_path: Path, text: str) -> str:
    write_base(tmp_path)
    with pytest.raises(SpecError) as raised:
        load_sweep_text(text, "s.yaml", tmp_path)
    return str(raised.value)


# --- validation ----------------------------------------------------------------------------------

def test_unknown_and_missing_keys_name_line_and_field(tmp_path):
    message = errors(tmp_path, "name: test\nbase: tiny.yaml\ngird:\n  workers: [2]\n")
    assert "s.yaml:3: gird: unknown key 'gird' (did you mean 'grid'?)" in message
    assert "s.yaml:1: grid: missing" in message


def test_bad_override_keys_and_values(tmp_path):
    message = errors(tmp_path, sweep_text("  window.limit: [2]\n  workers: 3\n  levels: [2, 1]\n"
                                          "  servers: [0]\n  total_rate: [fast]\n  seed: [1, 1]\n"))
    assert "s.yaml:4: grid.window.limit: unknown key 'window.limit'" in message
    assert "s.yaml:5: grid.workers: got 3; expected a non-empty list" in message
    assert "s.yaml:6: grid.levels: 1 is not a number of levels" in message
    assert "s.yaml:7: grid.servers: 0 is not a count" in message
    assert "s.yaml:8: grid.total_rate:" in message
    assert "s.yaml:9: grid.seed: a value is listed twice" in message


def test_an_invalid_point_is_blamed_on_its_override(tmp_path):
    message = errors(tmp_path, sweep_text("  windows.limit: [2, 0]\n  delay: [5ms, 20s]\n"))
    assert "s.yaml:4: grid.windows.limit: point windows.limit-0_delay-5ms: windows.limit: 0 is too small" in message
    assert "s.yaml:5: grid.delay: point windows.limit-2_delay-20s: nodes[1].link.delay: '20s' is too large" in message
    assert "windows.limit-2_delay-5ms" not in message
    message = errors(tmp_path, sweep_text("  seed: [1]\n", extra="set:\n  nodes.w9.cpu: 0.1\n"))
    assert "s.yaml:4: set.nodes.w9.cpu: point seed-1: nodes.w9.cpu: no item 'w9'" in message


def test_yaml_problems_and_a_missing_base(tmp_path):
    assert errors(tmp_path, "").startswith("s.yaml:1: the file is empty; expected a sweep like")
    assert "the top level is a list" in errors(tmp_path, "- 1\n")
    assert "s.yaml:4: grid: duplicate key 'grid'" in errors(tmp_path, "name: t\nbase: tiny.yaml\ngrid: {}\ngrid: {}\n")
    assert "s.yaml:2: base:" in errors(tmp_path, "name: t\nbase: nowhere.yaml\ngrid: {}\n")


# --- the grid ------------------------------------------------------------------------------------

def test_the_grid_is_every_combination_in_file_order():
    points = list(expand({"workers": [3, 5], "delay": ["5ms", "50ms"]}))
    assert [(p["workers"], p["delay"]) for p in points] == [(3, "5ms"), (3, "50ms"), (5, "5ms"), (5, "50ms")]
    assert list(expand({})) == [{}]


def test_point_names_are_deterministic_and_safe():
    assert point_name({"workers": 3, "policy": {"type": "time", "push": "2s"}}) == "workers-3_policy-time-push2s"
    assert point_name({}) == "base"
    long = point_name({f"application.key{i}": "x" * 10 for i in range(5)})
    assert len(long) == 64 and long == point_name({f"application.key{i}": "x" * 10 for i in range(5)})


def test_workers_and_levels_regenerate_the_tree_at_a_fixed_total_rate(tmp_path):
    write_base(tmp_path)
    sweep = load_sweep_text(sweep_text("  levels: [2, 3]\n", extra="set: {workers: 6, total_rate: 240/s}\n"),
                            "s.yaml", tmp_path)
    flat, deep = (point.spec for point in sweep.points)
    assert [n.parent for n in flat.workers] == ["root"] * 6 and not flat.parameter_servers
    assert [n.parent for n in deep.workers] == ["ps1"] * 3 + ["ps2"] * 3
    assert deep.sensor_ids == tuple(range(12))            # two sensors per worker, like the base's first
    assert flat.sensors.rate == deep.sensors.rate == 20.0  # 240/s over 12 sensors
    assert all(n.link.bw_mbit == 10 and n.cpu == 0.2 for n in deep.workers)


def test_levels_beyond_three_stack_parameter_server_levels_of_servers_each(tmp_path):
    write_base(tmp_path)
    sweep = load_sweep_text(sweep_text("  levels: [5]\n", extra="set: {workers: 4, servers: 2}\n"), "s.yaml", tmp_path)
    (spec,) = (point.spec for point in sweep.points)
    parents = {node.id: node.parent for node in spec.nodes}
    assert parents == {"root": None, "ps1": "root", "ps2": "root", "ps3": "ps1", "ps4": "ps2",
                       "ps5": "ps3", "ps6": "ps4", "w1": "ps5", "w2": "ps5", "w3": "ps6", "w4": "ps6"}
    assert max(node.level for node in spec.nodes) == 4   # five levels: root is level 0
    with pytest.raises(SpecError, match="expected 2 .* or more, up to 8"):
        load_sweep_text(sweep_text("  levels: [9]\n"), "s.yaml", tmp_path)


def test_delay_policy_seed_and_dotted_paths():
    base = {"seed": 1, "nodes": [{"id": "root"}, {"id": "w1", "parent": "root", "link": {"bw": "2Mbit"},
                                                  "sensors": [0]}]}
    document = apply_overrides(base, {"delay": "50ms", "policy": {"type": "window", "every": 2}, "seed": 7,
                                      "windows.limit": 3, "nodes.w1.cpu": 0.1, "nodes.0.memory": "64M"})
    assert document["nodes"][1]["link"] == {"bw": "2Mbit", "delay": "50ms"}
    assert "link" not in document["nodes"][0]
    assert all(node["policy"] == {"type": "window", "every": 2} for node in document["nodes"])
    assert (document["seed"], document["windows"], document["nodes"][1]["cpu"]) == (7, {"limit": 3}, 0.1)
    assert document["nodes"][0]["memory"] == "64M" and base["seed"] == 1   # the base is left alone


def test_every_example_sweep_is_valid():
    for path in sorted((REPO / "examples" / "experiments").glob("*.yaml")):
        if path.name != "base.yaml":
            assert load_sweep(path).points, path


# --- end to end over the emulated network ----------------------------------------------------------

def two_point_sweep(tmp_path: Path) -> Path:
    write_base(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(sweep_text("  delay: [5ms, 20ms]\n"))
    return path


@pytest.mark.root
def test_a_sweep_runs_every_point_and_compares_them(tmp_path):
    result = run_sweep(load_sweep(two_point_sweep(tmp_path)), tmp_path / "runs", say=lambda _: None)
    assert result.complete and list(result.runs) == ["delay-5ms", "delay-20ms"]
    for name, run_dir in result.runs.items():
        assert run_dir.parent == result.directory / name
        assert json.loads((run_dir / "summary.json").read_text())["completed"]
    table = (result.directory / "comparison.md").read_text()
    assert "| delay-5ms |" in table and "| delay-20ms |" in table
    assert (result.directory / "comparison.csv").is_file()


@pytest.mark.root
def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    command = [sys.executable, "-m", "edgetestbed", "sweep", str(two_point_sweep(tmp_path)),
               "--runs-dir", str(tmp_path / "runs")]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in first.stdout:   # SIGTERM once the first point is done and the second begun
        if "point 2 of 2" in line:
            break
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == 130, output
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "point 1 of 2: delay-5ms: completed before" in again.stdout
    assert "point 2 of 2: delay-20ms: running" in again.stdout
    sweep_dir = tmp_path / "runs" / "sweep-test"
    assert len(list((sweep_dir / "delay-5ms").iterdir())) == 1
    assert "| delay-20ms |" in (sweep_dir / "comparison.md").read_text()


def test_the_cli_lists_points_and_refuses_a_bad_sweep_with_status_2(tmp_path):
    command = [sys.executable, "-m", "edgetestbed", "sweep"]
    listed = subprocess.run([*command, str(REPO / "examples/experiments/workers.yaml"), "--list"],
                            cwd=REPO, capture_output=True, text=True)
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].startswith("workers-3_seed-1: ")
    bad = two_point_sweep(tmp_path)
    bad.write_text(bad.read_text().replace("delay", "dealy"))
    refused = subprocess.run([*command, str(bad)], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2
    assert f"{bad}:4: grid.dealy: unknown key 'dealy' (did you mean 'delay'?)" in refused.stderr
