"""``python -m edgetestbed.nodes --run-dir R --node ID --start-at T``: one node process.

``ID`` is a node id of ``R/spec.yaml`` (a worker if it is a leaf, else a parameter
server; the root is one without a parent) or ``cloud`` for the cloud baseline. ``T`` is
the unix time window 0 starts. See :mod:`edgetestbed.nodes.runtime` for ``wiring.json``,
the logs and the exit statuses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from edgetestbed.nodes.cloud import CloudBaseline
from edgetestbed.nodes.runtime import Runtime, run_process
from edgetestbed.nodes.server import ParameterServer
from edgetestbed.topo.plan import CLOUD_ID
from edgetestbed.nodes.worker import Worker


def start(runtime: Runtime) -> Mapping[str, Any]:
    """Run the role ``runtime.ident`` (checked to be a node or the cloud) has; its DONE summary."""
    if runtime.ident == CLOUD_ID:
        return CloudBaseline(runtime).run()
    role = Worker if runtime.node.is_worker else ParameterServer
    return role(runtime).run()


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edgetestbed.nodes", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="the run directory (spec.yaml, wiring.json)")
    parser.add_argument("--node", required=True, help=f"a node id of the spec, or {CLOUD_ID}")
    parser.add_argument("--start-at", type=float, required=True, help="unix time window 0 starts")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    role = "cloud" if args.node == CLOUD_ID else "node"
    return run_process(args.run_dir, args.node, args.start_at, role, start)


if __name__ == "__main__":
    sys.exit(main())
