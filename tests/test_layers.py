"""Packages import downwards only: the layers contract in ``.importlinter``, checked by import-linter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_packages_import_only_the_layers_below_them():
    # import-linter's console script, installed with the test extra next to this interpreter.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} not found: pip install -e '.[test]'"
    # From the repository root, so that this checkout's package and .importlinter are the ones
    # read; --no-cache: no cache directory written into the checkout.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
