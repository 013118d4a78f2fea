"""The loopback backend: the run's real processes and ZeroMQ sockets on 127.0.0.1, no Mininet, no root.

The command-line runs go through ``python -m edgetestbed`` with Mininet made unimportable,
and, when the tests run as root, as the user nobody: what a researcher without root gets.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edgetestbed import ledger as resources
from edgetestbed.analysis.compare import compare_runs, format_comparison
from edgetestbed.errors import SpecError, UserError
from edgetestbed.rundir import RunDir
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text
from edgetestbed.topo.loopback import EPHEMERAL_RANGE, NOT_EMULATED, free_ports
from test_nodes import run_spec

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
LOOPBACK = "network: {backend: loopback}\n"
TREE = """\
  - {id: root}
  - {id: ps1, parent: root}
  - {id: w1, parent: ps1, sensors: [0], link: {bw: 1Mbit, delay: 50ms}}
  - {id: w2, parent: ps1, sensors: [1]}
"""


def tiny(limit: int = 2, network: str = LOOPBACK) -> str:
    """Root, a parameter server, two workers and the cloud: ``limit`` windows of 1 s."""
    return run_spec(TREE, cloud=True, limit=limit, rate="100/s") + network


def as_nobody() -> bool:
    """Whether the CLI drops to nobody: when the tests run as root (and setpriv is there)."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


@pytest.fixture
def home():
    """A directory for the runs and HOME, writable by the user the CLI runs as (nobody, for root)."""
    path = Path(tempfile.mkdtemp(prefix="etb-loopback-"))
    if as_nobody():
        os.chown(path, NOBODY, NOBODY)
    no_mininet = path / "no-mininet" / "mininet"
    no_mininet.mkdir(parents=True)
    (no_mininet / "__init__.py").write_text("raise ImportError('the loopback tests hide Mininet')\n")
    yield path
    shutil.rmtree(path)


def foreground() -> None:
    """In a child before it execs: SIGINT back to its default, as in a terminal's foreground job.
    A test runner started as a shell's background job ignores SIGINT, and its children inherit
    that (Python then installs no KeyboardInterrupt handler), so a test's Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(home: Path, *args: str) -> subprocess.Popen:
    """``python -m edgetestbed ARGS`` in the repository, Mininet hidden, as nobody if we are root."""
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if as_nobody() else []
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(home / "no-mininet")}
    return subprocess.Popen([*drop, sys.executable, "-m", "edgetestbed", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=foreground)


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def left_running(run_dir: Path) -> list[dict]:
    """The processes the run recorded that still exist."""
    return [entry for entry in RunDir.open(run_dir).ledger.entries() if resources.exists(entry)]


@pytest.mark.parametrize("how", ["--loopback", "network.backend"])
def test_a_loopback_run_needs_neither_root_nor_mininet_and_says_it_was_not_emulated(home, how):
    topo = home / "tiny.yaml"
    topo.write_text(tiny(network="" if how == "--loopback" else LOOPBACK))
    flags = ["--loopback"] if how == "--loopback" else []
    process = cli(home, "run", *flags, str(topo), "--runs-dir", str(home / "runs"))
    stdout, stderr = finish(process)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert f"NOT EMULATED (loopback): {NOT_EMULATED}" in stdout and "network built" not in stdout
    (run_dir,) = (home / "runs").iterdir()
    assert run_dir.stat().st_uid == (NOBODY if as_nobody() else os.geteuid())
    summary = json.loads((run_dir / "summary.json").read_text())
    processes = ("root", "ps1", "w1", "w2", "cloud", "sensor0", "sensor1")
    assert summary["finished"] == {ident: "DONE" for ident in processes}
    assert summary["completed"] and summary["tree_bytes_sent"] > 0
    assert all(0 < score <= 1 for score in summary["final_score"].values())
    assert set(summary["final_score"]) == {"root", "parameter servers", "workers", "cloud"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["network"] == "loopback" and metrics["run"]["emulated"] is False
    assert metrics["links"]["source"] == "node logs" and NOT_EMULATED in metrics["links"]["note"]
    assert metrics["completeness"]["complete"], metrics["completeness"]
    report = (run_dir / "report.md").read_text()
    assert f"NOT EMULATED (loopback): {NOT_EMULATED}" in report and (run_dir / "report.html").is_file()
    assert f"{NOT_EMULATED} (the nodes' own logs, not captures)" in report
    assert "(NOT EMULATED: message bytes)" in format_comparison(compare_runs([run_dir]))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["backends"] == {"network": "loopback"} and manifest["teardown_leftovers"] == []
    assert not left_running(run_dir)
    endpoints = json.loads((run_dir / "wiring.json").read_text())["endpoints"].values()
    assert {e["host"] for e in endpoints} == {e["bind"] for e in endpoints} == {"127.0.0.1"}
    assert len({e["port"] for e in endpoints}) == len(endpoints) == len(processes)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_loopback_run_stopped_mid_run_leaves_none_of_its_processes(home, how):
    """Ctrl-C: the run stops its processes, by PID, and reports INCOMPLETE. SIGKILL: it cannot,
    but every process it started dies with it."""
    topo = home / "tiny.yaml"
    topo.write_text(tiny(limit=30))
    process = cli(home, "run", str(topo), "--runs-dir", str(home / "runs"))
    try:
        deadline = time.time() + 60
        while not [log for log in home.glob("runs/*/logs/w1.jsonl") if '"STATISTIC"' in log.read_text()]:
            assert time.time() < deadline and process.poll() is None, "the run never trained a window"
            time.sleep(0.2)
        process.send_signal(getattr(signal, how))
        _, stderr = finish(process, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    (run_dir,) = (home / "runs").iterdir()
    recorded = RunDir.open(run_dir).ledger.entries()
    assert len(recorded) == 7
    if how == "SIGINT":
        assert process.returncode == 130 and "INCOMPLETE" in stderr, stderr[-2000:]
        assert "INCOMPLETE RUN" in (run_dir / "report.md").read_text()
    deadline = time.time() + 10
    while left_running(run_dir) and time.time() < deadline:
        time.sleep(0.1)
    assert not left_running(run_dir)


def test_a_process_that_fails_before_it_is_ready_fails_a_loopback_run_with_its_output(tmp_path):
    text = tiny().replace("{name: mnist_mlp}", "{name: 'no_such_module_here:Task'}").replace("cloud: {}\n", "")
    spec = load_spec_text(text)
    with pytest.raises(UserError) as raised:
        run_experiment(spec, tmp_path, say=lambda _: None)
    message = str(raised.value)
    assert message.startswith("the run could not start: root exited before it was ready"), message
    assert "no_such_module_here" in message
    (run_dir,) = tmp_path.iterdir()
    assert not json.loads((run_dir / "summary.json").read_text())["completed"]
    assert not left_running(run_dir)


def test_linkcheck_refuses_a_loopback_network(home):
    topo = home / "tiny.yaml"
    topo.write_text(tiny())
    process = cli(home, "linkcheck", str(topo), "--runs-dir", str(home / "runs"))
    stdout, stderr = finish(process, timeout=60)
    assert process.returncode == 2 and "Traceback" not in stdout + stderr
    assert f"linkcheck measures an emulated network's links, but this spec's network is loopback ({NOT_EMULATED})" \
        in stderr
    assert not (home / "runs").exists()


def test_validate_says_a_loopback_network_emulates_nothing(home):
    topo = home / "tiny.yaml"
    topo.write_text(tiny())
    stdout, _ = finish(cli(home, "validate", str(topo)), timeout=60)
    assert f"network: loopback: {NOT_EMULATED}; the limits and links below apply to nothing" in stdout


def test_the_network_backend_is_validated_and_defaults_to_mininet():
    assert load_spec_text(tiny(network="")).network.backend == "mininet"
    spec = load_spec_text(tiny())
    assert spec.network.backend == "loopback" and not spec.network.emulated
    assert load_spec_text(json.dumps(spec.to_dict())) == spec
    with pytest.raises(SpecError) as raised:
        load_spec_text(tiny(network="network: {backend: loopbak}\n"), "topo.yaml")
    assert ("topo.yaml:13: network.backend: 'loopbak' is not a network backend (did you mean 'loopback'?); "
            "expected one of mininet, loopback") in str(raised.value)


def test_free_ports_are_distinct_bindable_and_outside_the_ephemeral_range():
    low, high = map(int, EPHEMERAL_RANGE.read_text().split())
    ports = free_ports(50)
    assert len(set(ports)) == 50 and not [port for port in ports if low <= port <= high or port < 1024]
