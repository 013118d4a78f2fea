"""The run directory: everything one run produces, and the record of what it created.

``runs/<name>-<UTC timestamp>/`` holds ``spec.yaml`` (the resolved spec),
``manifest.json`` (versions, kernel, capabilities, backends, names and
addresses), ``resources.jsonl`` (the ledger of created resources), and what
the run measured. One run at a time may hold emulated-network resources on a
machine: a live run holds an flock on ``/run/edgetestbed/lock``, the active run
is named in ``/run/edgetestbed/active.json``, and a new run refuses to start while
another is live or an earlier (crashed) run's recorded resources still exist.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import platform
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import yaml

from edgetestbed import __version__
from edgetestbed import ledger as resources
from edgetestbed.errors import LeftoverError, UserError
from edgetestbed.ledger import Ledger

ACTIVE_FILE = Path("/run/edgetestbed/active.json")
LOCK_FILE = ACTIVE_FILE.with_name("lock")
LEDGER_NAME = "resources.jsonl"
MANIFEST_NAME = "manifest.json"


class RunDir:
    """One run's directory, its ledger and its manifest."""

    def __init__(self, path: Path, tag: str) -> None:
        self.path = Path(path)
        self.tag = tag
        self.ledger = Ledger(self.path / LEDGER_NAME)

    @classmethod
    def create(cls, base: Path, name: str) -> "RunDir":
        """A new directory ``base/<name>-<UTC timestamp>``, never an existing one."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = Path(base) / f"{name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(base) / f"{name}-{stamp}-{suffix}"
        path.mkdir(parents=True)
        run = cls(path, secrets.token_hex(4))
        run.write_manifest({"tag": run.tag, **environment()})
        return run

    @classmethod
    def open(cls, path: Path) -> "RunDir":
        """An existing run directory (for ``clean`` and ``report``)."""
        manifest_path = Path(path) / MANIFEST_NAME
        if not manifest_path.exists():
            raise UserError(f"{path}: not a run directory (no {MANIFEST_NAME})")
        return cls(Path(path), json.loads(manifest_path.read_text())["tag"])

    @property
    def manifest(self) -> dict:
        path = self.path / MANIFEST_NAME
        return json.loads(path.read_text()) if path.exists() else {}

    def write_manifest(self, updates: dict) -> None:
        """Merge ``updates`` into manifest.json (written atomically)."""
        _write_json_atomic(self.path / MANIFEST_NAME, {**self.manifest, **updates})

    def write_spec(self, resolved: dict) -> None:
        (self.path / "spec.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))

    def write_json(self, name: str, data: object) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(path, data)
        return path


def _write_json_atomic(path: Path, data: object) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def environment() -> dict:
    """What a reader needs to repeat or judge a run: versions, kernel, revision, command."""
    return {
        "edgetestbed_version": __version__,
        "git_revision": _git_revision(),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "machine": platform.machine(),
        "argv": sys.argv,
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    result = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or None


# --- one run at a time ------------------------------------------------------------------

def _present(run: RunDir) -> list[dict]:
    return [entry for entry in run.ledger.entries() if resources.exists(entry)]


def active_run() -> RunDir | None:
    """The run named in the active file, if its directory still exists."""
    if not ACTIVE_FILE.exists():
        return None
    path = Path(json.loads(ACTIVE_FILE.read_text())["run_dir"])
    return RunDir.open(path) if (path / MANIFEST_NAME).exists() else None


def refuse_if_busy(run: RunDir | None = None) -> None:
    """LeftoverError while another run's recorded resources still exist."""
    previous = active_run()
    if previous is None or (run is not None and previous.path == run.path):
        return
    leftovers = _present(previous)
    if leftovers:
        raise LeftoverError(
            f"another run holds emulated-network resources ({len(leftovers)} of them, "
            f"recorded in {previous.path}): wait for it, or if it crashed run "
            f"`python -m edgetestbed clean`")


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    """Hold LOCK_FILE's flock, or LeftoverError if a live run holds it."""
    ACTIVE_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LeftoverError("another run is in progress on this machine; wait for it to finish") from None
        yield


@contextlib.contextmanager
def exclusive(run: RunDir) -> Iterator[RunDir]:
    """Hold the machine for ``run``; refuse while another run is live or left resources behind.

    A live run holds an flock on LOCK_FILE (the kernel drops it if the process dies,
    so a crash never leaves the machine locked); the active file names the run whose
    records ``clean`` uses if it crashed.
    """
    with _machine_lock():
        refuse_if_busy(run)
        _write_json_atomic(ACTIVE_FILE, {"run_dir": str(run.path.resolve()), "pid": os.getpid()})
        try:
            yield run
        finally:
            if not _present(run):
                _release(run)


def _release(run: RunDir) -> None:
    """Remove the active file if it still names ``run`` (a later run may have taken it since)."""
    current = active_run()
    if current is not None and current.path.resolve() == run.path.resolve():
        ACTIVE_FILE.unlink(missing_ok=True)


def clean(path: Path | None = None) -> tuple[RunDir | None, list[dict], list[dict]]:
    """Remove a crashed run's leftovers (the active run's unless ``path`` is given).

    Returns the run, what was removed and what could not be removed. Refuses while
    any run is live: names repeat across runs, so a crashed run's recorded names
    could by then belong to the live run's network.
    """
    run = RunDir.open(path) if path else active_run()
    if run is None:
        return None, [], []
    with _machine_lock():
        present = _present(run)
        leftovers = resources.remove_all(present)
        if not _present(run):
            _release(run)
    removed = [entry for entry in present if entry not in leftovers]
    return run, removed, leftovers
