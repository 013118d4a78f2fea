"""The report: Markdown and self-contained HTML from hand-written and real run directories;
headless Chromium opens the HTML with every plot (when Chromium is installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edgetestbed.analysis.report import (answer_lines, heading, items, report_main, table, to_html, to_markdown,
                                         write_report)
from test_metrics import SPEC, fake_netcost, handmade_logs, loopback_run, write_handmade_run
from test_netcost import protocol_actions, write_run

ALL_PLOTS = {"topology", "accuracy", "lag", "own_vs_other", "link_bytes", "resources"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO = Path(__file__).resolve().parent.parent


def embedded_images(page: str) -> list:
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)


def test_the_document_renders_alike_in_markdown_and_html(tmp_path):
    blocks = [heading("Answer"), items(["a < b"], "answer"), table(["x", "y"], [[1, None], ["a|b", 2]])]
    assert to_markdown(blocks) == "## Answer\n\n- a < b\n\n| x | y |\n|---|---|\n| 1 | – |\n| a\\|b | 2 |\n"
    page = to_html(blocks, tmp_path, "t")
    assert '<ul class="answer"><li>a &lt; b</li></ul>' in page and "<td>–</td>" in page


def test_a_report_of_a_whole_run_embeds_every_plot(tmp_path):
    run_dir = write_handmade_run(tmp_path / "run")
    page = write_report(run_dir).read_text()
    assert {path.stem for path in (run_dir / "plots").glob("*.png")} == ALL_PLOTS
    assert len(embedded_images(page)) == len(ALL_PLOTS)
    assert not re.search(r'(src|href)="(?!data:)', page), "the page must not load anything"
    markdown = (run_dir / "report.md").read_text()
    assert {f"(plots/{name}.png)" for name in ALL_PLOTS} <= set(re.findall(r"\(plots/\w+\.png\)", markdown))
    assert "- final root accuracy: 60.5 % (cloud baseline: 70.0 %)" in markdown
    assert "- propagation latency: 1.20 s (worker w1, window 1)" in markdown
    assert "Missing from this run" not in markdown and json.loads((run_dir / "metrics.json").read_text())


def test_a_run_cut_short_gets_a_report_that_says_so(tmp_path):
    logs = handmade_logs()
    logs["w2"] = logs["w2"][:6]
    del logs["cloud"]
    run_dir = write_handmade_run(tmp_path / "run", logs)
    markdown = (write_report(run_dir).parent / "report.md").read_text()
    assert "## Missing from this run" in markdown and "- w2: its log ends without DONE" in markdown
    assert "INCOMPLETE RUN" in markdown and "no cloud baseline evaluations: no lag" in markdown
    assert not (run_dir / "plots" / "lag.png").exists()


def test_the_fidelity_check_and_verdicts_come_from_linkcheck_json(tmp_path):
    run_dir = write_handmade_run(tmp_path / "run")
    measured = {"rtt_ms_median": 10.4, "bw_mbit": 9.6, "loss_pct": 0.0}
    linkcheck = {"ok": False, "links": [
        {"link": ["w1", "root"], "configured": {"bw_mbit": 10.0, "delay_ms": 5.0}, "measured": measured,
         "checks": {"rtt": True, "bw": True, "loss": True}, "ok": True},
        {"link": ["w2", "root"], "configured": {}, "measured": measured, "checks": {"rtt": False}, "ok": False},
        {"link": ["s0", "w1"], "configured": {}, "measured": None, "checks": {"measured": False}, "ok": False,
         "error": "ping s0 -> w1: too few replies\nPING 10.0.0.1 ..."}],
        "cpu": [{"host": "w1", "configured_cores": 0.5, "measured_share": 0.49, "ok": True}]}
    (run_dir / "linkcheck.json").write_text(json.dumps(linkcheck))
    markdown = (write_report(run_dir).parent / "report.md").read_text()
    assert "| w1-root | 10Mbit 5ms | 10.40 ms | 9.60 Mbit/s | 0.00 % | rtt ok, bw ok, loss ok | ok |" in markdown
    assert "| w2-root | unshaped | 10.40 ms | 9.60 Mbit/s | 0.00 % | rtt FAIL | FAIL |" in markdown
    assert "| s0-w1 | unshaped | not measured: ping s0 -> w1: too few replies | - | - | measured FAIL | FAIL |" \
        in markdown
    assert "| w1 | 0.5 | 0.490 | ok |" in markdown and "SOME FAILED" in markdown


def test_a_regression_run_is_reported_in_rmse(tmp_path):
    logs = handmade_logs()
    for events in logs.values():
        for _, _, payload in events:
            for evaluation in (payload, payload.get("before", {})):
                if "accuracy" in evaluation:
                    evaluation["rmse"] = 100 * (1 - evaluation.pop("accuracy"))
                    evaluation.pop("per_class")
    spec = SPEC.replace("{name: mnist_mlp}", "{name: aqi}").replace("{dataset: mnist, partition: biased}",
                                                                    "{dataset: aqi, partition: by_year}")
    run_dir = write_handmade_run(tmp_path / "run", logs)
    (run_dir / "spec.yaml").write_text(spec)
    metrics = json.loads((write_report(run_dir).parent / "metrics.json").read_text())
    assert metrics["run"]["metric"] == "rmse" and metrics["convergence"]["tolerance"] == pytest.approx(0.395)
    assert metrics["lag"]["nodes"]["root"]["value"][-1] == pytest.approx(39.5 - 30.0)
    assert answer_lines(metrics)[0] == "final root rmse: 39.50 µg/m³ (cloud baseline: 30.00 µg/m³)"
    assert {path.stem for path in (run_dir / "plots").glob("*.png")} == ALL_PLOTS - {"own_vs_other"}


@pytest.fixture(scope="module")
def real_report(tmp_path_factory) -> Path:
    """The report of a real run of node processes on loopback."""
    return write_report(loopback_run(tmp_path_factory.mktemp("report")))


def test_the_report_of_a_real_run(real_report):
    page = real_report.read_text()
    assert len(embedded_images(page)) == len(ALL_PLOTS)
    markdown = (real_report.parent / "report.md").read_text()
    assert "Missing from this run" not in markdown and "(from node logs)" in markdown


def assert_opens_in_chromium(report: Path, profile: Path) -> None:
    """Headless Chromium renders ``report`` offline and every image in it decodes
    (``naturalWidth > 0``); a screenshot of the page is not blank."""
    probe = report.parent / "probe.html"
    probe.write_text(report.read_text().replace(
        "</body>", "<script>window.onload = () => { document.body.dataset.loaded = [...document.images]"
                   ".map(i => i.naturalWidth > 0 ? 'ok' : 'broken').join(' '); };</script></body>"))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               "--virtual-time-budget=5000"]
    try:
        dom = subprocess.run([*command, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                             timeout=120).stdout
    finally:
        probe.unlink()
    loaded = re.search(r'data-loaded="([a-z ]*)"', dom)
    assert loaded, dom[-2000:]
    images = re.findall(r"<img ", dom)
    assert loaded.group(1).split() == ["ok"] * len(images) and len(images) == len(ALL_PLOTS)
    screenshot = profile / "report.png"
    subprocess.run([*command, f"--screenshot={screenshot}", "--window-size=1200,2000", report.as_uri()],
                   capture_output=True, timeout=120)
    assert screenshot.stat().st_size > 10_000


def report_without_root(run_dir: Path, scratch: Path) -> Path:
    """``write_report`` run as user nobody on a copy of ``run_dir``: the report needs no root.
    The copy is made under ``scratch``, which must be reachable by nobody (pytest's
    ``tmp_path`` is not: its parents are private to root)."""
    copy = scratch / run_dir.name
    shutil.copytree(run_dir, copy)
    for path in [scratch, copy, *copy.rglob("*")]:
        shutil.chown(path, "nobody")
    code = f"from edgetestbed.analysis.report import write_report; print(write_report({str(copy)!r}))"
    result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                             code], capture_output=True, text=True, timeout=120, cwd=REPO,
                            env={**os.environ, "HOME": str(copy), "MPLCONFIGDIR": str(copy / ".matplotlib"),
                                 "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    return Path(result.stdout.strip())


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install -y chromium)")
def test_headless_chromium_opens_the_report_with_every_plot(real_report, tmp_path):
    assert_opens_in_chromium(real_report, tmp_path)


@pytest.mark.root
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install -y chromium)")
def test_the_report_of_a_run_over_the_emulated_network(tmp_path):
    """``run`` over a real emulated network (root), then the report as user nobody, opened in Chromium."""
    from edgetestbed.runner import run_experiment
    from edgetestbed.spec.load import load_spec_text
    from test_run import small_spec
    tree = ("  - {id: root, cpu: 0.3}\n  - {id: w1, parent: root, sensors: [0]}\n"
            "  - {id: w2, parent: root, sensors: [1]}\n")
    summary = run_experiment(load_spec_text(small_spec(tree, limit=3) + "cloud: {cpu: 0.3}\n"), tmp_path / "runs",
                             say=lambda _: None)
    assert summary["completed"], summary
    with tempfile.TemporaryDirectory(prefix="etb-report-") as scratch:
        report = report_without_root(Path(summary["run_dir"]), Path(scratch))
        metrics = json.loads((report.parent / "metrics.json").read_text())
        assert metrics["completeness"]["complete"] and metrics["run"]["backends"]["switch"]
        logged = summary["tree_bytes_sent"]   # equal from the logs; TCP/IP headers on top from captures
        assert logged <= metrics["summary"]["tree_bytes"] <= 1.15 * logged
        assert_opens_in_chromium(report, tmp_path / "chromium")


def test_measured_links_show_agreement_and_the_cost_model(tmp_path, monkeypatch):
    direction = {"payload": {"message_bytes": 2000}}
    item = {"link": "w1-root", "kind": "tree", "ends": ["w1", "root"], "params": {"bw_mbit": 10.0, "delay_ms": 5.0},
            "bytes": 2200, "up_bytes": 1000, "down_bytes": 1200, "wire_bytes": 2200, "by_class": {"model pull": 2200},
            "up": direction, "down": direction, "flags": [],
            "total": {"pcap": {"bytes": 2200, "counter_interval_bytes": 2190}, "counters": {"bytes": 2190},
                      "openflow": None, "disagreement": 0.0},
            "cost_model": {"windows": 2, "joins": 1, "steps": 2, "final_sync_pulls": 3, "transfers": 8,
                           "captured_transfers": 8, "simulator_estimate": 1800, "expected_bytes": 2000,
                           "measured_bytes": 2200, "ratio": 1.1, "within_tolerance": True}}
    fake_netcost(monkeypatch, {"source": "packet captures", "note": "IP bytes", "items": [item], "tolerance": 0.02,
                               "min_bytes": 100_000, "max_disagreement": 0.0, "flagged": []})
    run_dir = write_handmade_run(tmp_path / "run")
    (run_dir / "net").mkdir()
    markdown = (write_report(run_dir).parent / "report.md").read_text()
    assert "Source: packet captures — IP bytes" in markdown
    assert "| w1-root | 2.2 kB | 2.19 kB | 2.19 kB | – | 4 kB | 0.0 % | 0.550 | ok |" in markdown
    assert "| w1-root | 2 | 2 | 8 (1 + 2 × 2 + 3) | 8 | 1.8 kB | 2 kB | 2.2 kB | 1.100 | ok |" in markdown


def test_a_linux_bridge_run_names_only_its_sources_and_models_every_transfer(tmp_path):
    """No OpenFlow in a run whose switches are Linux bridges; the final synchronisation's pulls
    are in the model, so a correct run is within its tolerance."""
    write_run(tmp_path / "run", actions=protocol_actions(3, 2), windows=3, switch="lxbr")
    markdown = (write_report(tmp_path / "run").parent / "report.md").read_text()
    (source,) = [line for line in markdown.splitlines() if line.startswith("Source: ")]
    assert source.endswith("parent-side switch port, checked against interface counters"), source
    (row,) = [line for line in markdown.splitlines() if line.startswith("| w1-root | 3 | ")]
    assert row.startswith("| w1-root | 3 | 3 | 9 (1 + 2 × 3 + 2) | 9 |") and row.endswith("| ok |"), row


def test_report_main_prints_the_answer_and_where_the_report_is(tmp_path):
    run_dir = write_handmade_run(tmp_path / "run")
    said = []
    assert report_main(run_dir, say=said.append) == 0
    assert said[0].startswith("final root accuracy: 60.5 %") and f"report: {run_dir / 'report.html'}" in said[0]
