"""Shared fixtures. Integration tests need root: CI and the README's command run as root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from edgetestbed.ledger import Ledger, remove_all


@pytest.fixture
def ledger(tmp_path):
    """A ledger whose every recorded resource is removed after the test, pass or fail."""
    book = Ledger(tmp_path / "resources.jsonl")
    yield book
    leftovers = remove_all(book.entries())
    assert not leftovers, f"could not remove {leftovers}"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (emulated networks, cgroups): run with sudo")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


class DefaultRun(NamedTuple):
    """The README's default run, as ``python -m edgetestbed run`` left it."""

    result: subprocess.CompletedProcess
    run_dir: Path


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> DefaultRun:
    """One run of the README's default example for the session (about 70 s): its own test
    checks it, and the codec tests compare their runs against it as the uncoded baseline."""
    runs_dir = tmp_path_factory.mktemp("default-run")
    result = subprocess.run([sys.executable, "-m", "edgetestbed", "run", "--runs-dir", str(runs_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (run_dir,) = runs_dir.iterdir()
    return DefaultRun(result, run_dir)
