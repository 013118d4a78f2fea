"""What every testbed process inside a host shares, whatever its role.

A node (``python -m edgetestbed.nodes``) and a sensor (``python -m edgetestbed.sensors``)
are both started in their host by the run, read the run directory, wait for the start
barrier, talk the same wire protocol and log the same events. The roles themselves live in
:mod:`edgetestbed.nodes` and :mod:`edgetestbed.sensors`; the run (:mod:`edgetestbed.runner`)
and the analysis use the files and formats defined here.

Who does what:

- :mod:`~edgetestbed.process.runtime`: one process's spec, wiring, clock, sockets, stop
  handling and log, and :func:`~edgetestbed.process.runtime.run_process`, its life from
  ``READY`` to ``DONE``, ``STOP`` or ``ERROR``.
- :mod:`~edgetestbed.process.start`: the start barrier (``start.json``): window 0 begins
  once every process is ready.
- :mod:`~edgetestbed.process.wiring`: who listens where (``wiring.json``).
- :mod:`~edgetestbed.process.protocol`: the wire format (a checked JSON header, raw array
  frames) and its message types.
- :mod:`~edgetestbed.process.coded`: a coded message's codec chain checked, and which codecs
  a receiver accepts (never a module only a message names).
- :mod:`~edgetestbed.process.eventlog`: the JSON-lines logs and their event types.
- :mod:`~edgetestbed.process.stopping`: SIGTERM and SIGINT as a stop request, honoured
  where a process waits.
- :mod:`~edgetestbed.process.sampling`: a spec's stream definition and schedule, read the
  same way by sensors, workers, the cloud baseline and the analysis.

Import the concrete module (``from edgetestbed.process.runtime import Runtime``).
"""
