"""Compressed updates on the emulated network: the README's default run with codecs, its
bytes counted from the captures and set against the same run uncoded (the session's
``default_run``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text

pytestmark = pytest.mark.root

DEFAULT = Path(__file__).parent.parent / "examples" / "default.yaml"
WORKER_LINKS = ("w1-ps1", "w2-ps1", "w3-ps2", "w4-ps2")


def run_default(tmp_path: Path, name: str, defaults: dict | None = None, workers: dict | None = None) -> dict:
    """The default example with ``defaults`` merged into its defaults and ``workers`` into
    every worker, run; its metrics (checked: every process DONE, the spec's pace kept)."""
    spec = yaml.safe_load(DEFAULT.read_text())
    spec["name"] = name
    spec["defaults"].update(copy.deepcopy(defaults or {}))
    for node in spec["nodes"]:
        if node["id"].startswith("w"):
            node.update(copy.deepcopy(workers or {}))
    summary = run_experiment(load_spec_text(yaml.safe_dump(spec, sort_keys=False), f"{name}.yaml"), tmp_path,
                             say=lambda _: None)
    assert set(summary["finished"].values()) == {"DONE"}, summary["finished"]
    assert summary["pace"]["kept"], summary["pace"]
    return metrics_of(Path(summary["run_dir"]))


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def pushes_on_the_wire(metrics: dict) -> dict:
    """Per worker link, the bytes of update pushes the capture saw (child → parent)."""
    links = {item["link"]: item for item in metrics["compression"]["links"]}
    return {label: links[label]["push"]["wire_bytes"] for label in WORKER_LINKS}


def test_8_bit_quantization_cuts_the_pushes_on_the_wire_to_a_quarter_at_the_same_accuracy(tmp_path, default_run):
    baseline = metrics_of(default_run.run_dir)
    coded = run_default(tmp_path, "default-quantize8", defaults={"codec": {"type": "quantize", "bits": 8}})
    ratios = {link: coded_bytes / base for (link, coded_bytes), base
              in zip(pushes_on_the_wire(coded).items(), pushes_on_the_wire(baseline).values())}
    accuracy = coded["summary"]["final_root"], baseline["summary"]["final_root"]
    print("pushes on the wire, coded / uncoded:", ratios, "root accuracy coded, uncoded:", accuracy)
    assert all(ratio <= 0.30 for ratio in ratios.values()), ratios
    assert abs(accuracy[0] - accuracy[1]) <= 0.02
    for item in coded["compression"]["links"]:   # every node codes: the parameter servers too
        assert item["codec"] == ["quantize"] and item["push"]["ratio"] == pytest.approx(16194 / 64520)
        assert 1.0 < item["push"]["wire_per_logged"] < 1.1   # the nodes' count agrees with the capture
    nodes = coded["compression"]["nodes"]
    assert all(nodes[w]["codec_encodes"] >= 10 and nodes[w]["codec_encode_cpu"] > 0 for w in ("w1", "w2", "w3", "w4"))
    assert nodes["root"]["codec_decodes"] >= 20 and nodes["w4"]["comm_to_comp"] > nodes["w1"]["comm_to_comp"]


def test_top_1_percent_with_error_feedback_sends_a_tenth_of_the_bytes_and_still_learns(tmp_path, default_run):
    baseline = metrics_of(default_run.run_dir)
    coded = run_default(tmp_path, "default-topk1", workers={"codec": {"type": "topk", "fraction": 0.01,
                                                                      "min_entries": 1000}})
    ratios = {link: coded_bytes / base for (link, coded_bytes), base
              in zip(pushes_on_the_wire(coded).items(), pushes_on_the_wire(baseline).values())}
    print("pushes on the wire, coded / uncoded:", ratios, "root accuracy:", coded["summary"]["final_root"])
    assert all(ratio <= 0.12 for ratio in ratios.values()), ratios   # 0.088 measured; a resent push adds 0.009
    assert coded["summary"]["final_root"] >= 0.70
