"""The network a run's processes talk over: probed, built, limited, shaped, torn down.

Concepts:

- **Capabilities and backends**: what this machine can emulate (probed each run, printed
  by ``edgetestbed check``) and the switch and link-shaping backends chosen from it for a
  spec, or a refusal naming what is missing. Nothing is built that cannot be emulated.
- **The emulated network**: Mininet hosts (one per node, sensor and the cloud), a switch
  tree that mirrors the node tree, shaped links between them; every resource recorded in
  the run's ledger (:mod:`edgetestbed.ledger`) before it exists, so teardown and
  ``edgetestbed clean`` remove exactly those.
- **Host limits**: each host's CPU (a CFS quota) and memory in its own cgroup.
- **Link shaping**: rate, delay, jitter, loss and queue per link, by a backend plugin.
- **The loopback backend**: the same processes on 127.0.0.1, nothing emulated, no root.

Who does what:

- :mod:`~edgetestbed.topo.probe`: ``probe`` and ``choose_backends``.
- :mod:`~edgetestbed.topo.network`: ``EmulatedNetwork``: build from the spec's plan
  (:mod:`edgetestbed.spec.plan`), reach a host, report, tear down.
- :mod:`~edgetestbed.topo.cgroups`: the run's cgroups and each host's limits (v1 or v2).
- :mod:`~edgetestbed.topo.shaping`: the link-shaping backends (``SHAPINGS``): netem, or the
  user-space shaper (:mod:`~edgetestbed.topo.shaper` and its packet handler
  :mod:`~edgetestbed.topo.shaper_handler`) where the kernel has no netem; both put the rate
  on htb (:mod:`~edgetestbed.topo.htb`).
- :mod:`~edgetestbed.topo.loopback`: ``LoopbackNetwork``, with the same surface a run uses.

Which network a run gets is :func:`edgetestbed.testbed.open_testbed`'s choice. Import the
concrete module: this package imports none of them itself (most need Mininet).
"""
