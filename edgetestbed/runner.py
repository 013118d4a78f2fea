"""``edgetestbed run``: train across the emulated hierarchy and leave a complete run directory.

One run: build the spec's network (`open_testbed`), start the network meters
(captures, counters, OpenFlow port statistics; a loopback run has none: nothing to
measure), write ``wiring.json`` (who listens where, as the network assigned it), start
the processes inside their hosts — the sensors and the cloud baseline, then the tree
level by level from the root, each group once the one before is ready — and open the
start barrier when all are (:mod:`edgetestbed.process.start`), show progress from their
logs, wait until every node has said DONE (or the spec's timeout), stop what is still
running, tear the network down, and summarize.

Processes are started with ``popen`` in their hosts, so they run inside the
host's cgroup and network namespace (on loopback: as children of this process);
each is recorded in the run's ledger, so a crash of this process leaves nothing that
``clean`` cannot find.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edgetestbed import ledger as resources
from edgetestbed.data.schedule import lost_a_window
from edgetestbed.dynamics.timeline import Timeline
from edgetestbed.errors import UserError
from edgetestbed.process.start import READY_TIMEOUT_S, start_lead, write_start
from edgetestbed.process.wiring import Wiring
from edgetestbed.rundir import RunDir
from edgetestbed.runprogress import Progress, format_summary, summarize
from edgetestbed.spec.model import Spec
from edgetestbed.spec.plan import CLOUD_ID, sensor_id
from edgetestbed.testbed import Network, open_testbed

if TYPE_CHECKING:
    from edgetestbed.measure.meters import NetworkMeters

LOG_TAIL_LINES = 10  # of a process's own output, when it fails to start
# Single-threaded numpy: a host limited to a fraction of a core gains nothing from BLAS threads.
PROCESS_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONUNBUFFERED": "1"}

Say = Callable[[str], None]


class StatusLine:
    """Progress on a terminal: one line rewritten in place; elsewhere (logs, pipes) one line per change."""

    def __init__(self, stream=sys.stdout) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.width = 0

    def __call__(self, text: str) -> None:
        if not self.live:
            print(text, file=self.stream, flush=True)
            return
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def end(self) -> None:
        if self.live and self.width:
            self.stream.write("\n")
            self.width = 0


class Experiment:
    """The processes of one run inside a built network.

    The one lifecycle of a run's processes, for the runner, tests and benchmarks alike:
    ``with Experiment(...) as experiment:`` wires the run and launches its processes behind
    the start barrier (:meth:`launch`), and stops every one of them on the way out,
    whatever happens (also when the launch itself fails half-way).
    """

    def __init__(self, spec: Spec, run: RunDir, network: Network, progress: Say) -> None:
        self.spec, self.run, self.network, self.progress_line = spec, run, network, progress
        self.logs = run.path / "logs"
        self.processes: dict[str, tuple] = {}   # ident -> (Popen, ledger entry)
        self.progress = Progress()
        sensors = {sensor_id(k): str(k) for k in spec.sensor_ids}   # ident -> its index, its command's argument
        self.nodes = [ident for ident in spec.process_ids if ident not in sensors]   # the run ends when all are done
        self.commands = {ident: ("edgetestbed.sensors", "--sensor", index) for ident, index in sensors.items()}
        self.commands.update({ident: ("edgetestbed.nodes", "--node", ident) for ident in self.nodes})
        # whose windows show how far the run got: the workers, or a centralized cloud
        self.learners = [CLOUD_ID] if spec.centralized else [w.id for w in spec.workers]
        self.launched: dict[str, float] = {}   # ident -> unix time its (latest) process was started
        self.start_at: float | None = None     # window 0's start, once the barrier opened
        self.timeline: Timeline | None = None  # the spec's events, applied from window 0's start
        self.crashed: set[str] = set()         # killed by a ``crash`` event, not yet restarted

    def __enter__(self) -> "Experiment":
        try:
            self.wire()
            self.launch()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def wire(self) -> None:
        """Write ``wiring.json``: where each process listens, as its network assigned it."""
        Wiring(self.network.endpoints()).write(self.run.path / "wiring.json")

    def launch(self) -> float:
        """Start every process and open the start barrier; window 0's start (unix time).

        Groups start one after another, each once the one before is ready, so that every
        process listens before anyone dials it: the sensors with the cloud (the baseline dials
        no one; a centralized cloud dials only the sensors, and ZeroMQ connects once they
        listen), then the tree level by level from the root (unless centralized: the tree's
        nodes run nothing then). Window 0 begins a short lead after the last is ready
        (:func:`~edgetestbed.process.start.start_lead`).
        """
        first = [sensor_id(index) for index in self.spec.sensor_ids] + ([CLOUD_ID] if self.spec.cloud else [])
        levels = [] if self.spec.centralized else sorted({node.level for node in self.spec.nodes})
        for group in [first] + [[n.id for n in self.spec.nodes if n.level == level] for level in levels]:
            for ident in group:
                self.start_process(ident)
            self._wait_ready(group)
        self.start_at = time.time() + start_lead(self.spec)
        write_start(self.run.path, self.start_at)
        if self.spec.events:
            self.timeline = Timeline(self.spec, self.network, self, self.run.path, self.start_at, self.progress_line)
            self.timeline.start()
        return self.start_at

    def whereabouts(self) -> str:
        """How far the run got, for a message: starting, or the latest window a worker reached."""
        if self.start_at is None:
            return "while its processes were starting"
        reached = max((self.progress.windows.get(ident, 0) for ident in self.learners), default=0)
        return f"after {reached} of {self.spec.windows.limit} windows"

    def ready_after(self) -> dict[str, float]:
        """Seconds from each process's launch to its READY (the latest process of each ident)."""
        return {ident: round(self.progress.ready[ident] - launched, 2)
                for ident, launched in self.launched.items() if self.progress.ready.get(ident, 0) >= launched}

    def start_process(self, ident: str) -> None:
        """Start ``ident``'s process: by :meth:`launch`, or again after it was killed (fault
        injection for tests and studies), when it passes the open start barrier at once and
        joins the running clock."""
        self.logs.mkdir(exist_ok=True)
        module, flag, value = self.commands[ident]
        argv = [sys.executable, "-m", module, "--run-dir", str(self.run.path.resolve()), flag, value]
        output = open(self.logs / f"{ident}.out", "wb")
        process = self.network.host(ident).popen(argv, stdout=output, stderr=output,
                                                 env={**os.environ, **PROCESS_ENV})
        output.close()
        self.launched[ident] = time.time()
        self.processes[ident] = (process, self.run.ledger.record_process(process.pid, argv))

    def _wait_ready(self, group: list[str]) -> None:
        """Until every process of ``group`` logged READY; UserError naming those that exited
        first or were not ready within READY_TIMEOUT_S, with the tail of their output."""
        deadline, shown = time.time() + READY_TIMEOUT_S, ""
        while waiting := [ident for ident in group if ident not in self.progress.ready]:
            self._note_exits()
            culprits = [ident for ident in waiting if ident in self.progress.finished]
            if culprits or time.time() > deadline:
                why = "exited before it was ready" if culprits else f"not ready after {READY_TIMEOUT_S:g} s"
                raise UserError(f"the run could not start: {', '.join(culprits or waiting)} {why}\n"
                                + "\n".join(self._output_tail(ident) for ident in culprits or waiting))
            line = f"starting: {len(self.progress.ready)} of {len(self.commands)} processes ready"
            if line != shown:
                self.progress_line(line)
                shown = line
            time.sleep(0.1)
            self.progress.read(self.logs, group)

    def _output_tail(self, ident: str) -> str:
        lines = (self.logs / f"{ident}.out").read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return f"--- last lines of logs/{ident}.out:\n" + "\n".join(lines or ["(empty)"])

    def wait(self, deadline: float) -> bool:
        """Until every node and the cloud finished; False if the deadline passed first, if
        the machine fell a whole window behind the spec's clock (:attr:`fell_behind`), or if
        the network stopped emulating the spec or an event of its timeline could not be
        applied (recorded in ``progress.errors["network"]``)."""
        shown = ""
        while time.time() < deadline:
            self.progress.read(self.logs, self.processes)
            self._note_exits()
            if problem := self.network.failure() or (self.timeline and self.timeline.failure()):
                self.progress.errors["network"] = problem
                return False
            line = self._progress_line()
            if line != shown:
                self.progress_line(line)
                shown = line
            if all(ident in self.progress.finished for ident in self.nodes):
                return True
            if self.fell_behind:
                return False
            time.sleep(0.5)
        return False

    @property
    def fell_behind(self) -> bool:
        """A sensor sent samples a whole window late (see :func:`lost_a_window`)."""
        return lost_a_window(self.progress.behind[0], self.spec.windows.interval)

    def crash(self, ident: str) -> float:
        """SIGKILL ``ident``'s process (a ``crash`` event: no STOP, no flush, as a power cut);
        its exit is not an error of the run. The unix time it was dead."""
        process, _entry = self.processes[ident]
        self.crashed.add(ident)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return time.time()

    def restart(self, ident: str) -> float:
        """Start ``ident`` again after a crash (:meth:`start_process`); the unix time it started."""
        self.start_process(ident)
        self.crashed.discard(ident)
        return self.launched[ident]

    def _note_exits(self) -> None:
        """A process that exited without DONE/STOP crashed: record it so the wait can end
        (unless a ``crash`` event killed it: it is restarted later)."""
        for ident, (process, _entry) in self.processes.items():
            if ident in self.crashed:
                continue
            if process.poll() not in (None, 0) and ident not in self.progress.finished:
                self.progress.finished[ident] = "ERROR"
                self.progress.errors.setdefault(
                    ident, f"exited with status {process.returncode} (see logs/{ident}.out)")

    def _progress_line(self) -> str:
        limit = self.spec.windows.limit
        windows = " ".join(f"{ident} {self.progress.windows.get(ident, 0)}/{limit}" for ident in self.learners)
        scores = " ".join(f"{i} {self.progress.accuracy[i]:.3f}" for i in (self.spec.root.id, CLOUD_ID)
                          if i in self.progress.accuracy)
        done = sum(ident in self.progress.finished for ident in self.nodes)
        return f"windows: {windows} | score: {scores or '-'} | done {done}/{len(self.nodes)}"

    def stop(self) -> None:
        """Apply no more events; SIGTERM every process still running (they log STOP and
        flush), then make sure."""
        if self.timeline is not None:
            self.timeline.stop()
        for process, entry in self.processes.values():
            if process.poll() is None:
                resources.remove(entry)
            process.wait()


def run_experiment(spec: Spec, runs_dir: Path, say: Say = print, progress: Say | None = None) -> dict:
    """Build, train, tear down; write ``summary.json`` and the report; return the summary.

    ``say`` gets status messages and the summary, ``progress`` the live progress line
    (default: ``say``). An interrupt (Ctrl-C, SIGTERM, SIGHUP) stops the processes and
    tears the network down like any other end, and still leaves the summary, metrics and
    a report marked INCOMPLETE; then it is raised again, saying what it interrupted.
    """
    began = time.time()
    interrupted: KeyboardInterrupt | None = None
    with open_testbed(spec, runs_dir, "run") as (run, network):
        say(f"{network.headline}; run directory {run.path}")
        experiment = Experiment(spec, run, network, progress or say)
        meters = _meters(network, run)
        completed = False
        try:
            completed = _train(experiment, say)
        except KeyboardInterrupt as interrupt:  # signals.Interrupted (SIGTERM, SIGHUP) is one too
            interrupted = interrupt
        finally:
            if meters is not None:
                meters.stop()
            experiment.progress.read(experiment.logs, experiment.processes)
            summary = summarize(spec, run, experiment.progress, time.time() - began, completed,
                                experiment.start_at or began)
            summary.update(ready_after_s=experiment.ready_after(),
                           interrupted=None if interrupted is None else str(interrupted) or "Ctrl-C")
            run.write_json("summary.json", summary)
            run.write_manifest({"cgroup_usage": network.cgroup_usage()})
    say(format_summary(summary, spec))
    say(_report(run.path))
    if interrupted is not None:
        raise KeyboardInterrupt(f"{summary['interrupted']} {experiment.whereabouts()}; its logs, metrics and "
                                f"a report marked INCOMPLETE are in {run.path}") from interrupted
    return summary


def _meters(network: Network, run: RunDir) -> NetworkMeters | None:
    """The network meters, started: every link captured and counted before the first byte of
    learning traffic. None on loopback, which has no links to measure."""
    if not network.emulated:
        return None
    from edgetestbed.measure.meters import NetworkMeters  # Mininet's: only for an emulated network
    meters = NetworkMeters(network, run.path, run.ledger)
    meters.start()
    return meters


def _train(experiment: Experiment, say: Say) -> bool:
    """Start the processes, wait for them, stop them; whether every node finished without error."""
    launched = time.time()
    with experiment:
        say(f"{len(experiment.processes)} processes ready after {time.time() - launched:.1f} s; "
            f"window 0 begins in {experiment.start_at - time.time():.1f} s")
        return experiment.wait(experiment.start_at + experiment.spec.timeout) and not experiment.progress.errors


def _report(run_dir: Path) -> str:
    """Write the report; a failure here must not cost the run, which stays re-analysable."""
    from edgetestbed.analysis.report import write_report
    try:
        return f"report: {write_report(run_dir)}"
    except Exception as error:  # noqa: BLE001 - the run's data is safe; say how to retry
        return (f"the report could not be written ({type(error).__name__}: {error}); "
                f"retry with `python -m edgetestbed report {run_dir}`")
