"""One emulated network for one run, from spec to teardown, on every exit path.

`open_testbed` is the only way the CLI builds a network: it probes the machine,
chooses backends (or refuses, before anything is built), creates the run
directory, takes the one-run-at-a-time lock, builds the network, and on exit —
normal, error, Ctrl-C or SIGTERM — tears it down and checks that nothing the run
recorded is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

from edgetestbed.errors import CapabilityError, UserError
from edgetestbed.rundir import RunDir, exclusive, refuse_if_busy
from edgetestbed.signals import signals_as_interrupts
from edgetestbed.topo.network import EmulatedNetwork
from edgetestbed.topo.probe import Capabilities, choose_backends, probe
from edgetestbed.topo.spec import Spec


def check_fits(spec: Spec, caps: Capabilities) -> None:
    """Refuse limits this machine cannot honour (more cores than it has)."""
    too_big = [n.id for n in spec.nodes if n.cpu > caps.cores]
    if spec.cloud is not None and spec.cloud.cpu > caps.cores:
        too_big.append("cloud")
    if too_big:
        raise CapabilityError(f"{spec.source}: cpu of {', '.join(too_big)} exceeds this machine's "
                              f"{caps.cores} cores")


@contextlib.contextmanager
def open_testbed(spec: Spec, runs_dir: Path, purpose: str) -> Iterator[tuple[RunDir, EmulatedNetwork]]:
    """Build ``spec``'s network in a new run directory; tear it down on every exit path."""
    caps = probe()
    backends = choose_backends(spec.network.switch, spec.network.shaping, caps)
    check_fits(spec, caps)
    refuse_if_busy()  # before creating a run directory that would stay empty
    run = RunDir.create(runs_dir, f"{purpose}-{spec.name}" if purpose != "run" else spec.name)
    run.write_spec(spec.to_dict())
    run.write_manifest({"purpose": purpose, "seed": spec.seed, "capabilities": caps.as_dict(),
                        "backends": dataclasses.asdict(backends)})
    with signals_as_interrupts(), exclusive(run):
        network = EmulatedNetwork(spec, backends, run.path, run.ledger, run.tag)
        try:
            network.build()
            run.write_manifest({"network": network.describe()})
            yield run, network
        finally:
            leftovers = network.stop()
            run.write_manifest({"teardown_leftovers": leftovers, "teardown_error": network.stop_error,
                                "shaper_counters": network.shaper_counters})
            if leftovers:
                raise UserError(f"teardown left {len(leftovers)} resources behind (recorded in "
                                f"{run.ledger.path}); run `python -m edgetestbed clean`")
