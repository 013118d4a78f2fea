"""The ``accuracy`` trigger's pull side in real node processes on the loopback backend (no
root needed): a worker whose threshold no model can pass gets ``NOT_MODIFIED`` for nearly
every pull, both ends count them alike, and the run still ends with every node holding the
complete model (the final synchronisation is never answered ``NOT_MODIFIED``)."""

from __future__ import annotations

from typing import Dict, List

import pytest

from edgetestbed.analysis.metrics import compute_metrics
from test_nodes import LoopbackRun, assert_all_done, finished_run

LIMIT = 5
NODES = """\
  - {id: root}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1], policy: {type: accuracy, threshold: 0.9, sample: 200, max_wait: 3}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return finished_run(tmp_path_factory.mktemp("notmodified"), NODES, LIMIT, 25)


def done(run: LoopbackRun, ident: str) -> Dict:
    return run.events(ident, "DONE")[0]["payload"]


def messages(run: LoopbackRun, ident: str, direction: str, kind: str) -> List[Dict]:
    return [e["payload"] for e in run.events(ident, "CONNECTION")
            if e["payload"]["direction"] == direction and e["payload"]["kind"] == kind]


def test_the_run_completes_with_the_final_model_everywhere(run):
    assert_all_done(run, run.codes)
    assert done(run, "root")["coverage"] == {"w1": LIMIT - 1, "w2": LIMIT - 1}
    assert done(run, "w2")["complete"] and done(run, "w1")["complete"]
    pulls = sorted(run.events("w2", "MODEL_RECEIVED") + run.events("w2", "KEPT_MODEL"), key=lambda e: e["ts"])
    assert pulls[-1]["type"] == "MODEL_RECEIVED" and pulls[-1]["payload"]["complete"], \
        "the complete model came as a MODEL"


def test_not_modified_replies_are_counted_in_both_logs(run):
    sent = [m for m in messages(run, "root", "sent", "NOT_MODIFIED") if m["peer"] == "w2"]
    received = messages(run, "w2", "received", "NOT_MODIFIED")
    logged = run.events("w2", "KEPT_MODEL")
    assert len(sent) >= 2, "most of w2's pulls found nothing worth sending"
    assert done(run, "root")["pulls_not_modified"] == len(sent) == len(received) == len(logged)
    assert done(run, "w2")["not_modified_received"] == len(sent)
    assert all(m["bytes"] < 400 for m in received), "no weights"
    pulls = [e["type"] for e in sorted(run.events("w2", "MODEL_RECEIVED") + logged, key=lambda e: e["ts"])]
    assert "KEPT_MODEL " * 3 not in " ".join(pulls) + " ", "max_wait 3: a model after two NOT_MODIFIED in a row"


def test_a_simple_sibling_always_gets_the_model(run):
    assert not [m for m in messages(run, "root", "sent", "NOT_MODIFIED") if m["peer"] == "w1"]
    assert "not_modified_received" not in done(run, "w1")
    pulls = messages(run, "w1", "sent", "PULL")
    assert len(messages(run, "w1", "received", "MODEL")) >= len({p["seq"] for p in pulls})


def test_the_accuracy_worker_pulls_fewer_model_bytes(run):
    model_bytes = {w: sum(m["bytes"] for m in messages(run, w, "received", "MODEL")) for w in ("w1", "w2")}
    assert model_bytes["w2"] < model_bytes["w1"], model_bytes


def test_metrics_count_the_replies_and_estimate_the_bytes_they_saved(run):
    savings = compute_metrics(run.dir)["savings"]
    w2 = next(item for item in savings["links"] if item["child"] == "w2")
    assert w2["pulls_not_modified"] == done(run, "root")["pulls_not_modified"] == savings["pulls_not_modified"]
    assert w2["pushes_suppressed"] == done(run, "w2")["pushes_suppressed"]
    assert w2["saved_bytes"] > w2["pulls_not_modified"] * w2["model_bytes_mean"] / 2
