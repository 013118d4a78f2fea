"""The sensor process: publishes its deterministic stream at the spec's rate.

``python -m edgetestbed.sensors --run-dir R --sensor K`` runs one (``__main__``); its
publishing loop is :mod:`edgetestbed.sensors.sensor`. The samples and their clock are
:mod:`edgetestbed.data`; what a sensor shares with the nodes (runtime, start barrier, wire
protocol, event log) is :mod:`edgetestbed.process`.
"""
