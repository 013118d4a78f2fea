"""What a run bought and what it cost, from its run directory alone (no root, no Mininet).

Everything here reads files a run wrote, so a run directory copied anywhere can be
re-analysed (``edgetestbed report``, ``compare``). Concepts: a run's **metrics** (accuracy
over time per level, time to a target, latency, CPU and memory per host), its **network
cost** per link (measured on the wire, checked between independent sources and against a
cost model), and **comparisons** across runs.

Who does what:

- :mod:`~edgetestbed.analysis.runlogs`: the run directory as analysis reads it.
- :mod:`~edgetestbed.analysis.definitions`: the metrics' definitions as pure functions;
  :mod:`~edgetestbed.analysis.metrics` applies them and writes ``metrics.json``.
- :mod:`~edgetestbed.analysis.netcost`: each link's cost from the captures
  (:mod:`~edgetestbed.analysis.pcap`), checked against counters and OpenFlow statistics
  (:mod:`~edgetestbed.analysis.agreement`) and the cost model
  (:mod:`~edgetestbed.analysis.costmodel`); :mod:`~edgetestbed.analysis.linkbytes` puts it
  into the metrics (or the logs' message bytes on loopback, said as such).
- :mod:`~edgetestbed.analysis.compression`: what codecs saved per link (checked on the
  wire) and cost per node (CPU, memory, communication to computation).
- :mod:`~edgetestbed.analysis.plots` and :mod:`~edgetestbed.analysis.report`: the PNG
  figures and ``report.md``/``report.html``, written from the blocks of
  :mod:`~edgetestbed.analysis.document`; the network's sections are in
  :mod:`~edgetestbed.analysis.costreport`.
- :mod:`~edgetestbed.analysis.compare`: runs side by side.

Import the concrete module: this package imports none of them itself.
"""
