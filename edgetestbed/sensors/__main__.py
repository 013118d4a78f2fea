"""``python -m edgetestbed.sensors --run-dir R --sensor K``: one sensor process.

Publishes sensor ``K``'s stream of ``R/spec.yaml`` from window 0's start (the run's start
barrier, :mod:`edgetestbed.process.start`) until the last window ends (see
:mod:`edgetestbed.sensors.sensor`); logs to ``R/logs/sensor<K>.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from edgetestbed.process.runtime import run_process
from edgetestbed.sensors.sensor import Sensor
from edgetestbed.spec.plan import sensor_id


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m edgetestbed.sensors", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="the run directory (spec.yaml, wiring.json)")
    parser.add_argument("--sensor", type=int, required=True, help="the sensor's index in the spec")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_process(args.run_dir, sensor_id(args.sensor), "sensor", lambda runtime: Sensor(runtime, args.sensor))


if __name__ == "__main__":
    sys.exit(main())
