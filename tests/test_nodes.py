"""Node and sensor processes on loopback: real processes, real ZeroMQ sockets, real MNIST.

Each run goes through a run's own lifecycle on the loopback backend: `open_testbed` makes
its run directory and wiring on free 127.0.0.1 ports, `Experiment` launches the processes
group by group and opens the start barrier once all are ready, and stops them by PID
(SIGTERM, then SIGKILL) whatever happens. Tests read the JSON-lines logs afterwards.
Windows are 1 s, so a run takes about ten seconds. Their pure logic: test_node_logic.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import zmq

from edgetestbed.applications import create_application
from edgetestbed.process import protocol
from edgetestbed.process.protocol import Message, Schema
from edgetestbed.process.start import write_start
from edgetestbed.process.wiring import Wiring
from edgetestbed.runner import Experiment
from edgetestbed.spec.load import load_spec_text
from edgetestbed.testbed import open_testbed

LIMIT = 4


class LoopbackRun:
    """A run on the loopback backend and its processes (an `Experiment`)."""

    def __init__(self, runs_dir: Path, spec_text: str) -> None:
        self._stack = contextlib.ExitStack()
        self.spec = load_spec_text(spec_text + "network: {backend: loopback}\n", "spec.yaml")
        run, network = self._stack.enter_context(open_testbed(self.spec, runs_dir, "test"))
        self.dir: Path = run.path
        self.experiment = Experiment(self.spec, run, network, progress=lambda _: None)
        self.experiment.wire()
        self.wiring = Wiring.load(self.dir / "wiring.json")
        self.idents = list(self.experiment.commands)

    @property
    def start_at(self) -> float:
        return self.experiment.start_at

    @property
    def processes(self) -> Dict[str, subprocess.Popen]:
        return {ident: process for ident, (process, _entry) in self.experiment.processes.items()}

    def start_all(self) -> None:
        """Launch every process; returns once window 0's start is published."""
        self._stack.enter_context(self.experiment)

    def start(self, ident: str) -> None:
        self.experiment.start_process(ident)

    def at(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the start time."""
        time.sleep(max(0.0, self.start_at + seconds - time.time()))

    def kill(self, ident: str) -> None:
        process = self.processes[ident]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def wait(self, timeout: float) -> Dict[str, Optional[int]]:
        deadline = time.time() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        return {ident: process.poll() for ident, process in self.processes.items()}

    def stop(self) -> None:
        """Stop whatever still runs, and the run's (loopback) network."""
        self.experiment.stop()
        self._stack.close()

    def events(self, ident: str, type_: Optional[str] = None) -> List[dict]:
        path = self.dir / "logs" / f"{ident}.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in lines if type_ is None or e["type"] == type_]

    def output(self, ident: str) -> str:
        return (self.dir / "logs" / f"{ident}.out").read_text()


def run_spec(nodes: str, cloud: bool = False, limit: int = LIMIT, rate: str = "200/s") -> str:
    return (f"name: loopback\nseed: 1\napplication: {{name: mnist_mlp}}\n"
            f"data: {{dataset: mnist, partition: biased}}\n"
            f"windows: {{interval: 1s, limit: {limit}, epochs: 1}}\n"
            f"sensors: {{rate: {rate}}}\nnodes:\n{nodes}" + ("cloud: {}\n" if cloud else ""))


def finished_run(directory: Path, nodes: str, limit: int, extra_time: float) -> "LoopbackRun":
    """A run of ``nodes`` (``limit`` windows of 1 s, sensors at 100/s) started, waited for
    ``limit + extra_time`` seconds and stopped: a module's shared run, read by its tests."""
    run = LoopbackRun(directory, run_spec(nodes, limit=limit, rate="100/s"))
    try:
        run.start_all()
        run.codes = run.wait(limit + extra_time)
    finally:
        run.stop()
    return run


@pytest.fixture
def loopback(tmp_path):
    """A factory of loopback runs, every process of which is stopped at the end."""
    runs: List[LoopbackRun] = []

    def make(spec_text: str, name: str = "run") -> LoopbackRun:
        runs.append(LoopbackRun(tmp_path / name, spec_text))
        return runs[-1]
    yield make
    for run in runs:
        run.stop()


def assert_all_done(run: LoopbackRun, codes: Dict[str, Optional[int]]) -> None:
    failed = {ident: code for ident, code in codes.items() if code != 0}
    assert not failed, {ident: run.output(ident)[-2000:] for ident in failed}
    for ident in run.idents:
        assert run.events(ident)[-1]["type"] == "DONE", ident


# ---------------------------------------------------------------- a tree on loopback

TREE = """\
  - {id: root}
  - {id: w1, parent: root, sensors: [0]}
  - {id: w2, parent: root, sensors: [1]}
  - {id: w3, parent: root, sensors: [2]}
"""


def _inject_malformed(run: LoopbackRun) -> Message:
    """Send the root bad messages, then a good PULL; the root's reply to it."""
    weights = create_application("mnist_mlp", seed=1).get_weights()
    good = protocol.encode(Message(protocol.PUSH, "w1", seq=1, arrays=tuple(weights)))
    header = json.loads(bytes(good[0]))
    return send_to_root(run, [
        [b"{not json"],
        [json.dumps({**header, "arrays": header["arrays"][::-1]}).encode(), *good[1:][::-1]],
        [json.dumps({**header, "sender": "intruder"}).encode(), *good[1:]],
        good[:2],
    ])


def send_to_root(run: LoopbackRun, bad: List[list]) -> Message:
    """Send the root the messages ``bad`` as w1, then a good PULL; the root's reply to it."""
    weights = create_application("mnist_mlp", seed=1).get_weights()
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.SNDTIMEO, 20_000)   # a root that stopped reading fails the test, not hangs it
    try:
        dealer.connect(run.wiring.address("root"))
        for frames in bad:
            dealer.send_multipart(frames)
        dealer.send_multipart(protocol.encode(Message(protocol.PULL, "w1", seq=99)))
        assert dealer.poll(5000), "the root stopped serving after malformed messages"
        return protocol.decode(dealer.recv_multipart(), Schema.for_model(weights, protocol.REPLIES))
    finally:
        dealer.close(0)
        context.term()


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory):
    """Root + 3 workers + cloud, simple policy, with malformed messages sent to the root mid-run."""
    run = LoopbackRun(tmp_path_factory.mktemp("tree"), run_spec(TREE, cloud=True))
    try:
        run.start_all()
        run.at(1.5)
        run.reply_after_malformed = _inject_malformed(run)
        run.codes = run.wait(LIMIT + 20)
    finally:
        run.stop()
    return run


def test_every_process_finishes_and_logs_done(tree_run):
    assert_all_done(tree_run, tree_run.codes)
    for ident in tree_run.idents:
        starts = tree_run.events(ident, "START")
        assert len(starts) == 1 and starts[0]["node"] == ident and starts[0]["payload"]["pid"] > 0


def test_workers_train_every_window_on_all_their_samples(tree_run):
    for worker, sensor in (("w1", "sensor0"), ("w2", "sensor1"), ("w3", "sensor2")):
        stats = [e["payload"] for e in tree_run.events(worker, "STATISTIC")]
        assert [s["window"] for s in stats] == list(range(LIMIT))
        sent = tree_run.events(sensor, "DONE")[0]["payload"]["samples"]
        assert sent == LIMIT * 200 and sum(s["samples"] for s in stats) == sent
        for s in stats:
            assert s["wall_time"] > 0 and s["cpu_time"] > 0 and s["memory_peak"] < 200 * 2 ** 20
            assert len(s["per_class"]) == 10 and 0 <= s["accuracy"] <= 1 and s["test_samples"] == 10_000


def test_root_accuracy_improves_and_coverage_ends_complete(tree_run):
    merges = [e["payload"] for e in tree_run.events("root", "STATISTIC")]
    assert merges[-1]["accuracy"] > merges[0]["before"]["accuracy"] + 0.1
    final = {w: LIMIT - 1 for w in ("w1", "w2", "w3")}
    assert merges[-1]["coverage"] == final
    for worker in ("w1", "w2", "w3"):
        done = tree_run.events(worker, "DONE")[0]["payload"]
        assert done["complete"] and done["coverage"] == final
        received = tree_run.events(worker, "MODEL_RECEIVED")
        assert received[-1]["payload"]["coverage"] == final and received[-1]["payload"]["complete"]


def test_every_exchange_is_logged_with_its_bytes(tree_run):
    sent = [e["payload"] for e in tree_run.events("w1", "CONNECTION") if e["payload"]["direction"] == "sent"]
    pushes = [c for c in sent if c["kind"] == "PUSH"]
    assert len(pushes) == LIMIT and all(c["peer"] == "root" for c in sent)
    model_bytes = sum(w.nbytes for w in create_application("mnist_mlp", seed=1).get_weights())
    assert all(model_bytes < c["bytes"] < model_bytes + 1500 and c["payload_bytes"] == model_bytes for c in pushes)
    received = [e["payload"] for e in tree_run.events("root", "CONNECTION") if e["payload"]["direction"] == "received"]
    assert {c["peer"] for c in received} == {"w1", "w2", "w3"}


def test_malformed_messages_are_logged_and_the_root_keeps_serving(tree_run):
    malformed = tree_run.events("root", "MALFORMED")
    reasons = [e["payload"]["reason"] for e in malformed]
    assert len(reasons) == 4, reasons
    assert "not valid UTF-8 JSON" in reasons[0]
    assert "PUSH arrays [float32[10], float32[10, 10]" in reasons[1]
    assert "PUSH from 'intruder', which is not a child of 'root'" in reasons[2]
    assert "declares 8 arrays but 1 array frames follow" in reasons[3]
    assert tree_run.reply_after_malformed.type == "MODEL"
    last_malformed = malformed[-1]["ts"]
    assert any(e["ts"] > last_malformed for e in tree_run.events("root", "STATISTIC"))


def test_cloud_baseline_trains_on_every_stream_at_the_same_pace(tree_run):
    stats = [e["payload"] for e in tree_run.events("cloud", "STATISTIC")]
    assert [s["window"] for s in stats] == list(range(LIMIT))
    assert all(s["samples"] == 3 * 200 for s in stats)
    assert stats[-1]["accuracy"] > stats[0]["accuracy"]
    for window, s in enumerate(stats):
        assert s["trained_at"] >= tree_run.start_at + window + 1
    assert not (tree_run.dir / "logs" / "cloud.jsonl").read_text().count("CONNECTION")


# ---------------------------------------------------------------- a parameter server killed and restarted

THREE_LEVELS = """\
  - {id: root}
  - {id: ps1, parent: root}
  - {id: w1, parent: ps1, sensors: [0]}
  - {id: w2, parent: ps1, sensors: [1]}
"""


def _after(events: List[dict], ts: float) -> List[dict]:
    return [e for e in events if e["ts"] > ts]


def test_workers_keep_training_while_their_parameter_server_restarts(loopback):
    limit = 7
    run = loopback(run_spec(THREE_LEVELS, limit=limit, rate="100/s"))
    run.start_all()
    run.at(1.6)
    run.kill("ps1")
    killed_at = time.time()
    run.at(3.3)
    run.start("ps1")
    restarted_at = time.time()
    assert_all_done(run, run.wait(limit + 25))

    starts = run.events("ps1", "START")
    assert len(starts) == 2
    second_life = _after(run.events("ps1"), starts[1]["ts"])
    assert second_life[0]["payload"]["kind"] == "PULL" and second_life[0]["payload"]["peer"] == "root"
    assert next(e for e in second_life if e["type"] in ("MODEL_RECEIVED", "STATISTIC"))["type"] == "MODEL_RECEIVED"

    final = {"w1": limit - 1, "w2": limit - 1}
    root = run.events("root", "DONE")[0]["payload"]
    assert root["coverage"] == final
    trained = sum(run.events(w, "DONE")[0]["payload"]["samples"] for w in ("w1", "w2"))
    assert root["samples"] == trained, "an update was lost or applied twice"
    for worker in ("w1", "w2"):
        stats = [e["payload"] for e in run.events(worker, "STATISTIC")]
        assert [s["window"] for s in stats] == list(range(limit))
        assert all(s["samples"] > 0 for s in stats)
        assert all(s["trained_at"] < run.start_at + s["window"] + 1 + 2.0 for s in stats), "fell behind"
        assert _after(run.events(worker, "RETRY"), killed_at) or _after(run.events(worker, "UNREACHABLE"), killed_at)
        replies = [e for e in _after(run.events(worker, "CONNECTION"), restarted_at)
                   if e["payload"]["direction"] == "received"]
        assert {"MODEL", "ACK"} <= {e["payload"]["kind"] for e in replies}, "exchanging did not resume"
        assert run.events(worker, "DONE")[0]["payload"]["coverage"] == final


# ---------------------------------------------------------------- every policy in real processes

POLICIES = """\
  - {id: root}
  - {id: w1, parent: root, sensors: [0], policy: {type: downpour, n_fetch: 2, n_push: 3}}
  - {id: w2, parent: root, sensors: [1], policy: {type: window, every: 2}}
  - {id: w3, parent: root, sensors: [2], policy: {type: time, push: 700ms, pull: 1500ms}}
"""


def _pushes(run: LoopbackRun, worker: str) -> List[dict]:
    """The PUSH requests a worker sent (a resent one counted once)."""
    sent = [e for e in run.events(worker, "CONNECTION")
            if e["payload"]["direction"] == "sent" and e["payload"]["kind"] == "PUSH"]
    return list({e["payload"]["seq"]: e for e in sent}.values())


def test_each_policy_exchanges_when_it_should(loopback):
    run = loopback(run_spec(POLICIES, rate="100/s"))
    run.start_all()
    assert_all_done(run, run.wait(LIMIT + 20))
    final = {w: LIMIT - 1 for w in ("w1", "w2", "w3")}
    assert run.events("root", "DONE")[0]["payload"]["coverage"] == final

    batches = sum(-(-e["payload"]["samples"] // 20) for e in run.events("w1", "STATISTIC"))
    assert len(_pushes(run, "w1")) == batches // 3 + (1 if batches % 3 else 0)
    assert [e["payload"]["window"] for e in _pushes(run, "w2")] == [1, 3]
    times = [e["ts"] for e in _pushes(run, "w3")]
    assert len(times) >= 4 and all(later - earlier >= 0.65 for earlier, later in zip(times[:-1], times[1:-1]))


# ---------------------------------------------------------------- process contract

@pytest.mark.parametrize("moment", ["starting", "mid-run"])
def test_sigterm_stops_processes_cleanly(loopback, moment):
    run = loopback(run_spec("  - {id: root}\n  - {id: w1, parent: root, sensors: [0]}\n", limit=60))
    run.start_all()
    while not all((run.dir / "logs" / f"{ident}.jsonl").exists() for ident in run.idents):
        time.sleep(0.05)
    if moment == "mid-run":
        run.at(1.5)
    for process in run.processes.values():
        os.kill(process.pid, signal.SIGTERM)
    codes = run.wait(5)
    assert codes == {ident: 0 for ident in run.idents}
    for ident in run.idents:
        events = run.events(ident)
        assert events[0]["type"] == "READY" and events[-1]["type"] == "STOP"
        assert events[-1]["payload"]["signal"] == "SIGTERM"
        if moment == "mid-run":
            assert "START" in [e["type"] for e in events]


def test_a_process_waits_at_the_start_barrier_until_the_run_publishes_the_start(loopback):
    """READY once built (data loaded, socket bound), then nothing until start.json appears;
    START then carries the published time, and the sensor sends from it."""
    run = loopback(run_spec("  - {id: root, sensors: [0]}\n", limit=1))
    run.start("sensor0")
    deadline = time.time() + 30
    while not (run.dir / "logs" / "sensor0.jsonl").exists() or not run.events("sensor0", "READY"):
        assert time.time() < deadline and run.processes["sensor0"].poll() is None, "never ready"
        time.sleep(0.05)
    time.sleep(1.0)
    assert [e["type"] for e in run.events("sensor0")] == ["READY"], "started before the barrier opened"
    start_at = time.time() + 2.0  # it polls every 20 ms
    write_start(run.dir, start_at)
    assert run.wait(15) == {"sensor0": 0}
    (start,) = run.events("sensor0", "START")
    assert start["payload"]["start_at"] == start_at and start["ts"] < start_at
    (window,) = run.events("sensor0", "STATISTIC")
    assert window["payload"]["samples"] == 200 and window["ts"] >= start_at + 199 / 200  # its last send time


@pytest.mark.parametrize("ident", ["nosuch", "sensor7", "cloud"])
def test_an_unknown_process_is_refused_with_status_2(loopback, ident):
    run = loopback(run_spec("  - {id: root, sensors: [0]}\n"))
    role = ("edgetestbed.sensors", "--sensor", ident[len("sensor"):]) if ident.startswith("sensor") \
        else ("edgetestbed.nodes", "--node", ident)
    argv = [sys.executable, "-m", role[0], "--run-dir", str(run.dir), *role[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{ident!r} is not a process of this run" in result.stderr and "the sensors sensor0 and no cloud" in result.stderr
    assert not (run.dir / "logs").exists()


def test_a_regression_task_logs_rmse(loopback):
    spec = ("name: aqi\nseed: 1\napplication: {name: aqi}\ndata: {dataset: aqi, partition: by_year}\n"
            "windows: {interval: 1s, limit: 2, epochs: 1}\nsensors: {rate: 100/s}\n"
            "nodes:\n  - {id: root}\n  - {id: w1, parent: root, sensors: [0, 1]}\n")
    run = loopback(spec)
    run.start_all()
    assert_all_done(run, run.wait(20))
    for ident in ("root", "w1"):
        stats = [e["payload"] for e in run.events(ident, "STATISTIC")]
        assert stats and all(s["rmse"] > 0 and s["score"] == -s["rmse"] and "per_class" not in s for s in stats)
    assert sum(s["samples"] for s in (e["payload"] for e in run.events("w1", "STATISTIC"))) == 2 * 2 * 100
