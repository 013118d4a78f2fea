"""The processes inside emulated hosts: worker, parameter server (and root), cloud baseline.

``python -m edgetestbed.nodes --run-dir R --node ID`` runs one of them.
Modules: ``protocol`` (the wire format), ``policies`` (when to exchange), ``model``
(weights, pending update, coverage), ``upstream`` (a child's requests to its parent),
``worker``, ``server``, ``cloud``, ``runtime`` (spec, wiring, sockets, signals, logging of
a process), ``wiring`` (``wiring.json``) and ``eventlog`` (the JSON-lines logs).
"""
