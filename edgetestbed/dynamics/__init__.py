"""Network dynamics: the spec's ``events:`` applied to the running network, and their effect measured.

Concepts:

- An **event**, at a time from window 0's start (``at``) or at a window's start (``window``):
  a change of one tree link (:class:`~edgetestbed.spec.model.LinkEvent`: new delay, jitter,
  loss or rate, the link ``down`` and ``up``, a subtree's ``partition`` and ``heal``), a node
  fault (:class:`~edgetestbed.spec.model.NodeEvent`: ``crash``, ``restart``; churn's too), or
  a ``background`` flow (:class:`~edgetestbed.spec.model.FlowEvent`).
- The **timeline** (:mod:`~edgetestbed.dynamics.timeline`): a thread of the run that applies
  each event when it is due, through the network's link-shaping backend, and records when it
  was applied and what the probe measured, one JSON line per event in
  ``RUN/network_events.jsonl``. An event that cannot be applied ends the run (the run never
  goes on under a network other than the one its records describe).
- The **probe** (:mod:`~edgetestbed.dynamics.probe`): a few pings across the changed link,
  just before and just after the change, from the child's host to the parent's; their
  minimum round trip, halved, is the link's one-way delay as measured; for a change of rate,
  a short train of datagrams (:mod:`~edgetestbed.dynamics.train`) measures the rate too.

Only an emulated network has links to change: ``validate`` refuses link and node events on
the loopback backend. Both link-shaping backends change links live (netem in the kernel, the
user-space shaper in its own process).
"""
