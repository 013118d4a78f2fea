"""Link-shaping backends: one module each, registered in ``SHAPINGS``.

A link-shaping backend (:class:`~edgetestbed.topo.shaping.base.LinkShaping`) gives every
shaped link of an emulated network the rate, delay, jitter, loss and queue its spec
asks for. Who does what:

- :func:`edgetestbed.topo.probe.choose_backends` picks one from the registry: the spec's
  ``network.shaping``, or for ``auto`` the first by ``rank`` whose ``feature`` this machine
  has; it refuses with every candidate's reason otherwise. The run records the name
  (``Backends.shaping``) in its manifest.
- :class:`~edgetestbed.topo.network.EmulatedNetwork` makes that backend, lets it build
  each shaped link, turns off the host offloads it names, starts it once the hosts are
  configured, asks it while running whether the links are still shaped, stops it first at
  teardown, and puts its counters and description in the manifest. It knows no backend
  by name.
- The meters measure a link past the in-line bridge a backend put on it, if any.

Backends:

- :mod:`~edgetestbed.topo.shaping.netem`: the kernel's netem under htb, as in Mininet.
- :mod:`~edgetestbed.topo.shaping.userspace`: an in-line bridge per link, an NFQUEUE
  handler in user space (:mod:`edgetestbed.topo.shaper`), htb; where there is no netem.

The spec keeps its own list of these names (``Shaping`` in :mod:`edgetestbed.spec.schema`)
rather than asking this registry: the spec is a layer below the network, and ``validate``
must work where Mininet, which the backends import, is not installed. A test checks that
the two lists agree (``tests/test_shaping.py``).
"""

from edgetestbed.topo.shaping.base import SHAPINGS, LinkShaping

__all__ = ["SHAPINGS", "LinkShaping"]
