"""The CLI as a user meets it: clear errors with exit status 2, machine-readable output, linkcheck."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgetestbed.spec.load import load_spec
from edgetestbed.spec.plan import plan_network

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))


def distinct_networks(paths: list[Path]) -> list[Path]:
    """The examples whose links (kind, ends, shape) differ from every earlier one's. linkcheck
    measures links as built, so an example that adds only events or policies to another's
    network (``dynamics.yaml`` to ``default.yaml``) would measure the same links again (2 min)."""
    seen, distinct = set(), []
    for path in paths:
        links = tuple((link.kind, link.ends, link.spec) for link in plan_network(load_spec(path)).shaped_links)
        if links not in seen:
            seen.add(links)
            distinct.append(path)
    return distinct


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetestbed", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_subcommand():
    out = cli("--help").stdout
    for name in ("validate", "check", "linkcheck", "clean", "data"):
        assert f"    {name}" in out


@pytest.mark.parametrize("text, expected", [
    ("name: x\napplication: {name: mnist_mlp}\ndata: {dataset: mnist, partition: iid}\n"
     "nodes:\n  - id: r\n  - {id: w, parent: r, sensors: [0], link: {bw: 10MB}}\n",
     "bad.yaml:6: nodes[1].link.bw"),
    ("name: x\nnodes: [\n", "bad.yaml:3: not valid YAML"),
    ("", "bad.yaml"),
])
def test_bad_input_is_one_clear_error_with_status_2(tmp_path, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = cli("validate", str(bad))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_file_and_bad_arguments(tmp_path):
    result = cli("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr and "Traceback" not in result.stderr
    assert cli("frobnicate").returncode == 2


@pytest.mark.parametrize("topo", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(topo):
    result = cli("validate", str(topo))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.root
def test_check_reports_a_possible_run_as_json():
    result = cli("check", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["run_possible"]
    assert {"netem", "ovs_kernel", "ovs_user", "linux_bridge", "nfqueue", "cgroups"} <= set(report)


def test_linkcheck_skips_only_examples_whose_links_another_example_has():
    assert [p.name for p in EXAMPLES if p not in distinct_networks(EXAMPLES)] == ["dynamics.yaml"]


def test_one_link_of_each_kind_and_shape_stands_for_the_others():
    from edgetestbed.linkcheck import links_to_measure
    shaped = plan_network(load_spec(EXAMPLES[0].parent / "default.yaml")).shaped_links
    measured, same_shape_as = links_to_measure(shaped, one_per_shape=True)
    assert [link.label for link in measured] == ["ps1-root", "sensor0-w1", "w4-ps2", "cloud-root"]
    assert same_shape_as["sensor7-w4"] == "sensor0-w1" and same_shape_as["w3-ps2"] == "ps1-root"
    assert len(same_shape_as) == 11 and links_to_measure(shaped, one_per_shape=False) == (list(shaped), {})
    assert links_to_measure(shaped, False, only=["w4-ps2"]) == ([shaped[11]], {})


def test_a_link_missed_while_the_cpu_was_stolen_waits_for_a_quiet_second(monkeypatch):
    from edgetestbed import linkcheck
    readings = iter([(0, 0), (10, 100), (10, 100), (15, 200), (15, 200), (15.5, 300)])  # 10 %, 5 %, 0.5 %
    monkeypatch.setattr(linkcheck, "cpu_steal", lambda: next(readings))
    monkeypatch.setattr(linkcheck.time, "sleep", lambda seconds: None)
    said = []
    linkcheck.wait_for_the_cpu(said.append)
    assert said == ["  waiting for the CPU: the hypervisor took 10.0% of it in the last second",
                    "  waiting for the CPU: the hypervisor took 5.0% of it in the last second"]
    assert next(readings, None) is None


def test_linkcheck_refuses_a_link_the_spec_does_not_have_before_building():
    result = cli("linkcheck", str(EXAMPLES[0].parent / "default.yaml"), "--link", "w9-root")
    assert result.returncode == 2 and "--link w9-root: no such link" in result.stderr
    assert "w4-ps2" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.root
@pytest.mark.parametrize("topo", distinct_networks(EXAMPLES), ids=lambda p: p.name)
def test_linkcheck_passes_on_every_example(topo, tmp_path):
    """The proof of fidelity: every kind and shape of link of every example within
    tolerance, both directions.

    One link of each kind and shape (``--one-per-shape``): the default example's 15 links
    are 4 shapes, the four examples' 54 links 18, which saves about 5 minutes. CPU limits
    are measured on the smallest example only (they are per host, not per topology, and
    cost ~2 s each).
    """
    cpu = [] if topo.name == "seeds-1ps-3w.yaml" else ["--no-cpu"]
    result = cli("linkcheck", str(topo), "--json", "--one-per-shape", "--runs-dir", str(tmp_path), *cpu,
                 timeout=600)
    links = json.loads(result.stdout)
    failed = [link for link in links if not link["ok"]]
    assert result.returncode == 0 and not failed, json.dumps(failed, indent=1) + result.stderr
    for link in links:
        assert set(link["configured"]) >= {"delay_ms", "jitter_ms", "bw_mbit", "loss_pct"}
        assert set(link["measured"]) >= {"rtt_ms_median", "rtt_ms_p95", "bw_mbit", "loss_pct"}
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "manifest.json").read_text())["teardown_leftovers"] == []
    shaped = plan_network(load_spec(topo)).shaped_links
    measured, same_shape_as = [tuple(link["link"]) for link in links], \
        json.loads((run / "linkcheck.json").read_text())["same_shape_as"]
    assert sorted(measured + [tuple(label.split("-")) for label in same_shape_as]) == sorted(l.ends for l in shaped)
    shapes = {(l.kind, l.spec, l.dynamic) for l in shaped}
    assert len(measured) == len(shapes)
