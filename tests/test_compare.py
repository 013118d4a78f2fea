"""Comparing runs: rows from each run's metrics, the Markdown and CSV tables, the cost-vs-accuracy plot."""

from __future__ import annotations

import csv
import json

import pytest

from edgetestbed.analysis.compare import compare_main, compare_runs, format_comparison, write_comparison
from edgetestbed.errors import UserError
from test_metrics import SPEC, T0, handmade_logs, write_handmade_run


def heavier_logs() -> dict:
    """The hand-written run with pushes twice as large and a root 10 points better at the end."""
    logs = handmade_logs()
    for events in logs.values():
        for _, kind, payload in events:
            if kind == "CONNECTION" and payload["kind"] == "PUSH":
                payload["bytes"] *= 2
    logs["root"][-1] = (T0 + 3.8, "DONE", {"accuracy": 0.705, "cpu_total": 2.5})
    return logs


@pytest.fixture
def runs(tmp_path):
    light = write_handmade_run(tmp_path / "light")
    heavy = write_handmade_run(tmp_path / "heavy", heavier_logs())
    cut = handmade_logs()
    cut["w2"] = cut["w2"][:6]
    return [light, heavy, write_handmade_run(tmp_path / "cut", cut)]


def test_one_row_per_run_with_its_summary(runs):
    light, heavy, cut = compare_runs(runs)
    assert (light["run"], light["workers"], light["levels"], light["policies"]) == ("light", 2, 2, "simple")
    assert light["final_root"] == 0.605 and heavy["final_root"] == 0.705
    assert heavy["total_bytes"] - light["total_bytes"] == 2 * 2 * 1000
    assert heavy["top_level_bytes"] - light["top_level_bytes"] == 2 * 2 * 1000
    assert light["complete"] and not cut["complete"] and not cut["latency_complete"]
    assert json.loads((runs[0] / "metrics.json").read_text())["summary"]["final_root"] == 0.605


def test_tables_and_the_plot_are_written(runs, tmp_path):
    rows = compare_runs(runs)
    paths = write_comparison(rows, tmp_path / "out")
    assert {path.name for path in paths.values()} == {"comparison.md", "comparison.csv", "cost_vs_accuracy.png"}
    table = format_comparison(rows)
    assert ("| light | 2 | 2 | simple | none | tree | 60.5 % | 70.0 % | +9.5 points | 2.50 s | 1.20 s | 129 kB "
            "| 8.82 kB | 0 B | – | 8.50 s | 0 / 0 / 0 | 0 B | – | yes |") in table
    assert "(incomplete)" in table.splitlines()[-1] and table.splitlines()[-1].endswith("| NO |")
    with open(paths["csv"], newline="") as stream:
        written = list(csv.DictReader(stream))
    assert [row["run"] for row in written] == ["light", "heavy", "cut"]
    assert float(written[1]["final_root"]) == 0.705 and int(written[0]["total_bytes"]) == rows[0]["total_bytes"]
    assert paths["png"].stat().st_size > 10_000


def test_runs_of_different_tasks_or_no_run_are_refused(runs, tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        compare_runs([runs[0], tmp_path / "nothing"])
    aqi = write_handmade_run(tmp_path / "aqi")
    (aqi / "spec.yaml").write_text(SPEC.replace("{name: mnist_mlp}", "{name: aqi}").replace(
        "{dataset: mnist, partition: biased}", "{dataset: aqi, partition: by_year}"))
    logs = aqi / "logs" / "root.jsonl"
    logs.write_text(logs.read_text().replace('"accuracy"', '"rmse"'))
    with pytest.raises(UserError, match="measure different things"):
        compare_runs([runs[0], aqi])


def test_compare_main_prints_the_table_and_writes_the_files(runs, tmp_path):
    said = []
    assert compare_main(runs[:2], tmp_path / "out", say=said.append) == 0
    assert said[0].startswith("| run | workers |") and str(tmp_path / "out" / "comparison.csv") in said[0]
