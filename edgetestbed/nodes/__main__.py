"""``python -m edgetestbed.nodes --run-dir R --node ID``: one node process.

``ID`` is a node id of ``R/spec.yaml`` (a worker if it is a leaf, else a parameter
server; the root is one without a parent) or ``cloud`` for the cloud (its baseline, or the
centralized cloud the sensors send to). Window 0
starts when the run says so (:mod:`edgetestbed.process.start`). See
:mod:`edgetestbed.process.runtime` for ``wiring.json``, the logs and the exit statuses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from edgetestbed.nodes.central import CentralizedCloud
from edgetestbed.nodes.cloud import CloudBaseline
from edgetestbed.nodes.server import ParameterServer
from edgetestbed.nodes.worker import Worker
from edgetestbed.process.runtime import Role, Runtime, run_process
from edgetestbed.spec.plan import CLOUD_ID


def build(runtime: Runtime) -> Role:
    """The role ``runtime.ident`` (checked to be a node or the cloud) has, ready to run."""
    if runtime.ident == CLOUD_ID:
        return CentralizedCloud(runtime) if runtime.spec.centralized else CloudBaseline(runtime)
    role = Worker if runtime.node.is_worker else ParameterServer
    return role(runtime)


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edgetestbed.nodes", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="the run directory (spec.yaml, wiring.json)")
    parser.add_argument("--node", required=True, help=f"a node id of the spec, or {CLOUD_ID}")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    role = "cloud" if args.node == CLOUD_ID else "node"
    return run_process(args.run_dir, args.node, role, build)


if __name__ == "__main__":
    sys.exit(main())
