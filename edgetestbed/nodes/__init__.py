"""The processes inside emulated hosts: worker, parameter server (and root), cloud baseline.

``python -m edgetestbed.nodes --run-dir R --node ID`` runs one of them.
Modules: ``model`` (weights, pending update, coverage), ``upstream`` (a child's requests
to its parent), ``worker``, ``server``, ``cloud``. What they share with the sensors (the
runtime of a process, the start barrier, the wire protocol, the wiring and the event log)
is :mod:`edgetestbed.process`; when they exchange is :mod:`edgetestbed.policies`.
"""
