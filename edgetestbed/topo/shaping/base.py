"""What every link-shaping backend is: how it builds a shaped link, and what it runs.

Adding a backend is one file in this package: a :class:`LinkShaping` subclass with a
``name``, the ``feature`` of :class:`~edgetestbed.topo.probe.Capabilities` that says
whether this machine can use it, a ``rank`` (``auto`` takes the first usable one), a
docstring saying what it is, :meth:`~LinkShaping.add_link`, and
:meth:`~LinkShaping.change_link` and :meth:`~LinkShaping.set_link_state` (the spec's events
during a run), registered with ``@SHAPINGS.register``; the other methods have defaults for a
backend that shapes in the kernel and runs nothing of its own. Add its name to the spec's ``Shaping`` list too
(:mod:`edgetestbed.spec.schema`; see the package docstring for why it has its own list).

This module imports no Mininet: :mod:`edgetestbed.topo.probe` imports the registry, and
``edgetestbed check`` and loopback runs must work where Mininet is not installed. The
backends' own modules import it; the registry imports them when it is first asked for a
name, which :func:`~edgetestbed.topo.probe.choose_backends` does only once it knows
Mininet is there.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from edgetestbed.errors import CapabilityError
from edgetestbed.params.plugins import Plugin, Registry
from edgetestbed.spec.plan import LinkPlan

if TYPE_CHECKING:
    from edgetestbed.topo.network import EmulatedNetwork


class LinkShaping(Plugin, ABC):
    """How the links of one :class:`~edgetestbed.topo.network.EmulatedNetwork` are shaped.

    Made once per network, before it is built, with the network itself: a backend builds
    its links with ``network.add_link`` (a veth pair whose root-namespace ends are
    recorded in the run's ledger first) and records whatever else it creates in
    ``network.ledger`` before creating it.
    """

    feature: ClassVar[str]                   # the Capabilities attribute saying it works here
    offloads: ClassVar[tuple[str, ...]] = ()  # ``ethtool -K`` arguments every host's interfaces get

    def __init__(self, network: EmulatedNetwork) -> None:
        self.network = network

    def interfaces(self) -> list[str]:
        """Root-namespace interfaces it may create besides the network's own: the network
        refuses to build if one already exists (left by a crashed run)."""
        return []

    @abstractmethod
    def add_link(self, link: LinkPlan) -> None:
        """Build ``link`` from ``link.a`` to ``link.b``, shaped as ``link.spec`` says
        (called for each shaped link, in plan order, before Mininet builds the network)."""

    def start(self) -> None:
        """Start shaping at run time, once the network is started and its hosts configured."""

    def stop(self) -> dict:
        """Stop what :meth:`start` started and return its counters for the manifest; later
        calls, and a backend that started nothing, return ``{}``. Called on every exit
        path, before Mininet's own stop."""
        return {}

    def failure(self) -> str | None:
        """Why the links are no longer shaped while the network runs, or None."""
        return None

    def inline_bridge(self, label: str) -> str | None:
        """The bridge a link's packets cross between its ends (a link's ``label``), if any:
        its capture and counters are taken past it."""
        return None

    def describe(self) -> dict:
        """What the manifest's network section adds for this backend."""
        return {}

    @abstractmethod
    def change_link(self, label: str, delay_ms: float | None = None,
                    jitter_ms: float | None = None, loss_pct: float | None = None,
                    bw_mbit: float | None = None) -> float:
        """Change a link's delay, jitter, loss (each direction) and/or rate while the
        network runs (spec events); the unix time it was applied."""

    @abstractmethod
    def set_link_state(self, label: str, up: bool) -> float:
        """Take a link down (it carries nothing) or back up while the network runs; the
        unix time it was applied."""


def set_port_state(port: str, up: bool) -> None:
    """``ip link set dev PORT up|down`` in the root namespace."""
    state = "up" if up else "down"
    done = subprocess.run(["ip", "link", "set", "dev", port, state], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise CapabilityError(f"ip link set dev {port} {state} failed: {done.stderr.strip()}")


SHAPINGS: Registry[LinkShaping] = Registry("link-shaping backend", LinkShaping, "shaping",
                                           "edgetestbed.topo.shaping", classes=False)
