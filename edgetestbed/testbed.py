"""One network for one run, from spec to teardown, on every exit path.

`open_testbed` is the only way the CLI makes a run's network; the spec's ``network.backend``
picks its class:

- ``mininet``: an `EmulatedNetwork` (root). It probes the machine, chooses backends (or
  refuses, before anything is built), takes the one-run-at-a-time lock
  (:func:`edgetestbed.rundir.exclusive`) and builds the network.
- ``loopback``: a `LoopbackNetwork` (:mod:`edgetestbed.topo.loopback`; any user). It takes
  no lock: the lock guards the machine's emulated-network resources, of which a loopback run
  creates none (its processes are recorded in its own run directory and die with it), so it
  neither waits for nor blocks an emulated run or another loopback run. It does share the
  CPU with them: beside an emulated run it perturbs that run's timing.

Either way it creates the run directory, and on exit — normal, error, Ctrl-C or SIGTERM —
stops the network and checks that nothing the run recorded is left. Mininet is imported
only for an emulated network, so a loopback run works where Mininet is not installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Iterator, Protocol

from edgetestbed.errors import CapabilityError, UserError
from edgetestbed.rundir import RunDir, exclusive, refuse_if_busy
from edgetestbed.signals import signals_as_interrupts
from edgetestbed.spec.model import Spec
from edgetestbed.spec.plan import Endpoint, NetworkPlan
from edgetestbed.topo.loopback import LoopbackNetwork
from edgetestbed.topo.probe import Capabilities, choose_backends, probe


class Network(Protocol):
    """What a run uses of its network, whichever backend made it."""

    plan: NetworkPlan
    emulated: bool    # False: links unshaped, hosts unlimited, nothing captured
    headline: str     # what was built, for the terminal

    def build(self) -> None: ...
    def host(self, ident: str) -> Any: ...   # where ident's process runs: ``popen(argv, **kwargs)``
    def endpoints(self) -> dict[str, Endpoint]: ...
    def failure(self) -> str | None: ...
    def stop(self) -> list[dict]: ...
    def teardown_facts(self) -> dict: ...
    def cgroup_usage(self) -> dict[str, dict]: ...
    def describe(self) -> dict: ...


def check_fits(spec: Spec, caps: Capabilities) -> None:
    """Refuse limits this machine cannot honour (more cores than it has)."""
    too_big = [n.id for n in spec.nodes if n.cpu > caps.cores]
    if spec.cloud is not None and spec.cloud.cpu > caps.cores:
        too_big.append("cloud")
    if too_big:
        raise CapabilityError(f"{spec.source}: cpu of {', '.join(too_big)} exceeds this machine's "
                              f"{caps.cores} cores")


@contextlib.contextmanager
def open_testbed(spec: Spec, runs_dir: Path, purpose: str) -> Iterator[tuple[RunDir, Network]]:
    """Make ``spec``'s network in a new run directory; tear it down on every exit path."""
    opener = _open_emulated if spec.network.emulated else _open_loopback
    with opener(spec, runs_dir, purpose) as opened:
        yield opened


@contextlib.contextmanager
def _open_emulated(spec: Spec, runs_dir: Path, purpose: str) -> Iterator[tuple[RunDir, Network]]:
    from edgetestbed.topo.network import EmulatedNetwork
    caps = probe()
    backends = choose_backends(spec.network.switch, spec.network.shaping, caps)
    check_fits(spec, caps)
    refuse_if_busy()  # before creating a run directory that would stay empty
    run = _new_run(spec, runs_dir, purpose, {"capabilities": caps.as_dict(),
                                             "backends": dataclasses.asdict(backends)})
    with signals_as_interrupts(), exclusive(run):
        with _running(run, EmulatedNetwork(spec, backends, run.path, run.ledger, run.tag)) as network:
            yield run, network


@contextlib.contextmanager
def _open_loopback(spec: Spec, runs_dir: Path, purpose: str) -> Iterator[tuple[RunDir, Network]]:
    run = _new_run(spec, runs_dir, purpose, {"backends": {"network": "loopback"}})
    with signals_as_interrupts(), _running(run, LoopbackNetwork(spec, run.ledger)) as network:
        yield run, network


def _new_run(spec: Spec, runs_dir: Path, purpose: str, facts: dict) -> RunDir:
    """The run directory, with the resolved spec and what the manifest knows before building."""
    run = RunDir.create(runs_dir, f"{purpose}-{spec.name}" if purpose != "run" else spec.name)
    run.write_spec(spec.to_dict())
    run.write_manifest({"purpose": purpose, "seed": spec.seed, **facts})
    return run


@contextlib.contextmanager
def _running(run: RunDir, network: Network) -> Iterator[Network]:
    """``network`` built; on exit stopped, and UserError if anything it recorded is left."""
    try:
        network.build()
        run.write_manifest({"network": network.describe()})
        yield network
    finally:
        leftovers = network.stop()
        run.write_manifest({"teardown_leftovers": leftovers, **network.teardown_facts()})
        if leftovers:
            raise UserError(f"teardown left {len(leftovers)} resources behind (recorded in "
                            f"{run.ledger.path}); run `python -m edgetestbed clean`")
