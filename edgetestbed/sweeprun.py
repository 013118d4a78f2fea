"""Running a validated sweep (:mod:`edgetestbed.sweep`): one run per point, then the comparison.

Each point runs in ``sweep-<name>/<point>/`` (the point's name is made from its grid values,
e.g. ``workers-5``), which holds the run directory ``<point>-<UTC time>/``. A re-run skips a
point whose run has ``summary.json`` with ``completed: true`` and runs the others again (an
incomplete attempt stays, with its records for ``clean``). At the end ``comparison.md``,
``comparison.csv`` and ``cost_vs_accuracy.png`` compare the points' completed runs.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgetestbed.analysis.compare import compare_runs, format_comparison, write_comparison
from edgetestbed.errors import LeftoverError
from edgetestbed.rundir import RunDir
from edgetestbed.runner import run_experiment
from edgetestbed.signals import signals_as_interrupts
from edgetestbed.sweep import Point, Sweep

Say = Callable[[str], None]
BUSY_WAIT = 600.0        # seconds to wait while another run holds the machine
BUSY_POLL = 5.0


@dataclass(frozen=True)
class SweepResult:
    """Where the sweep lives, the completed run of each point, and which points did not complete."""

    directory: Path
    runs: dict[str, Path]
    incomplete: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.incomplete


def completed_run(point_dir: Path) -> Path | None:
    """The newest run directory in ``point_dir`` whose summary says it completed."""
    for run_dir in sorted(point_dir.glob("*/summary.json"), reverse=True):
        try:
            if json.loads(run_dir.read_text()).get("completed") is True:
                return run_dir.parent
        except (OSError, ValueError):
            continue
    return None


def run_sweep(sweep: Sweep, runs_dir: Path, say: Say = print, progress: Say | None = None) -> SweepResult:
    """Run every point not completed before, then compare the completed ones.

    Ctrl-C or SIGTERM stops the running point (its network torn down) and the sweep; finished
    runs stay and a re-run skips them.
    """
    directory = Path(runs_dir) / f"sweep-{sweep.name}"
    directory.mkdir(parents=True, exist_ok=True)
    _record(sweep, directory)
    runs, total = {}, len(sweep.points)
    with signals_as_interrupts():
        for number, point in enumerate(sweep.points, 1):
            label = f"point {number} of {total}: {point.name}"
            done = completed_run(directory / point.name)
            if done is None:
                say(f"{label}: running")
                done = _run_point(point, directory / point.name, say, _prefixed(label, progress or say))
            else:
                say(f"{label}: completed before ({done}), skipped")
            if done is not None:
                runs[point.name] = done
        _compare(runs, directory, say)
    incomplete = tuple(point.name for point in sweep.points if point.name not in runs)
    if incomplete:
        say(f"incomplete points (re-run the sweep to retry them): {', '.join(incomplete)}")
    return SweepResult(directory, runs, incomplete)


def _record(sweep: Sweep, directory: Path) -> None:
    """``sweep.json``: the file it came from and each point's overrides."""
    points = [{"name": point.name, "overrides": dict(point.overrides)} for point in sweep.points]
    (directory / "sweep.json").write_text(json.dumps({"source": sweep.source, "points": points}, indent=2) + "\n")


def _prefixed(label: str, progress: Say) -> Say:
    return lambda line: progress(f"[{label}] {line}")


def _run_point(point: Point, point_dir: Path, say: Say, progress: Say) -> Path | None:
    """Run the point; its run directory if completed, else None (a re-run retries it).

    While another run or network holds the machine it waits (up to ``BUSY_WAIT``); a point
    that fails otherwise is reported and the sweep goes on to the next one.
    """
    deadline = time.time() + BUSY_WAIT
    while True:
        before = set(point_dir.iterdir()) if point_dir.is_dir() else set()
        try:
            summary = run_experiment(point.spec, point_dir, say, progress)
        except LeftoverError as busy:
            if time.time() > deadline:
                raise
            _forget_empty_attempts(point_dir, before)
            say(f"{busy}; retrying in {BUSY_POLL:.0f} s")
            time.sleep(BUSY_POLL)
            continue
        except Exception as error:  # noqa: BLE001 - one point's failure must not cost the others
            say(f"{point.name} failed ({type(error).__name__}: {error}); a re-run of the sweep retries it")
            return None
        return Path(summary["run_dir"]) if summary["completed"] else None


def _forget_empty_attempts(point_dir: Path, before: set[Path]) -> None:
    """Remove run directories of a refused attempt that created nothing (an empty ledger)."""
    for path in set(point_dir.iterdir()) - before if point_dir.is_dir() else ():
        if not RunDir.open(path).ledger.entries():
            shutil.rmtree(path)


def _compare(runs: dict[str, Path], directory: Path, say: Say) -> None:
    """The comparison of the completed points, each row named by its point."""
    if not runs:
        return
    rows = compare_runs(list(runs.values()))
    for name, row in zip(runs, rows):
        row["run"] = name
    paths = write_comparison(rows, directory)
    say(format_comparison(rows) + "written: " + ", ".join(str(path) for path in paths.values()))
