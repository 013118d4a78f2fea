"""Measuring an emulated network: what a run's links carried, and whether they behave as specified.

Two uses, one package: a run's **meters** record what every link carried while the run's
processes talk (for the analysis to turn into network cost), and ``edgetestbed linkcheck``
measures what every link and CPU limit *does* with test traffic and judges it against the
spec (the **fidelity** check). Both work on a built emulated network
(:class:`~edgetestbed.topo.network.EmulatedNetwork`); a loopback run emulates nothing, so
it has no meters and linkcheck refuses it.

Concepts:

- A **link tap**: where one link is measured, the switch port on its parent side, which
  every frame between the two sides crosses and nothing else does; a link's capture, its
  kernel counters and its OpenFlow port counters are taken at that one point.
- The **meters**: everything that measures a run's links, started after the network is
  built and before any node process, stopped after every node is done and before teardown,
  writing to ``RUN/net/`` (``meters.json`` says what is where). Each process they start is
  recorded in the run's ledger (:mod:`edgetestbed.ledger`), so teardown removes it.
- A **verdict**: a measured figure (RTT, throughput, loss, CPU share) against the
  configured one, within the tolerance the fidelity targets set.

Who does what:

- :mod:`~edgetestbed.measure.meters`: ``NetworkMeters``, started and stopped by the run
  (:mod:`edgetestbed.runner`); the ``RUN/net/`` file formats are documented there. It
  starts the OpenFlow controller (:mod:`edgetestbed.controller`) on OVS switches.
- :mod:`~edgetestbed.measure.taps`: where each link is measured, and why there.
- :mod:`~edgetestbed.measure.capture`: tcpdump on a link's capture interface, headers only.
- :mod:`~edgetestbed.measure.counters`: the kernel counters of the interfaces along the links.
- :mod:`~edgetestbed.measure.linkmeasure`: one link measured with real traffic (ping,
  iperf3, UDP counted by the kernels) for ``edgetestbed linkcheck``
  (:mod:`edgetestbed.linkcheck`).
- :mod:`~edgetestbed.measure.cpushare`: the CPU share a CPU-limited host gives a busy loop.
- :mod:`~edgetestbed.measure.hosttools`: measurement tools run in a host's namespace but
  outside its CPU and memory limits.
- :mod:`~edgetestbed.measure.fidelity`: what a link was asked to do, what it did, the
  verdicts and the table linkcheck prints: pure, no tools, no network.

Reading what the meters wrote is the analysis's job (:mod:`edgetestbed.analysis.netcost`),
from the files alone. Import the concrete module: this package imports none of them itself
(``meters`` and ``taps`` need Mininet).
"""
