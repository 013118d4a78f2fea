"""The data a run learns from: datasets, how they are spread over the sensors, the streams
the sensors replay, and the clock those streams keep.

Everything here is deterministic and knows no spec: the same definition, sensor index,
sensor count and seed give the same samples in every process, so the cloud baseline
regenerates every sensor's stream instead of receiving it. The spec checks its ``data:``
section against these plugins; the processes (:mod:`edgetestbed.process.sampling`) read
the resolved section into a stream definition and a schedule.

Who does what:

- :mod:`~edgetestbed.data.sources`: the files behind the datasets, fetched once (``python -m
  edgetestbed data``), checked by sha256, cached, loaded offline.
- :mod:`~edgetestbed.data.datasets`: the dataset plugins (one module each, registered in
  ``DATASETS``): the rows partitions split, a sensor's stream, the held-out set, the wire form.
- :mod:`~edgetestbed.data.partitions`: the partition plugins (one module each, registered
  in ``PARTITIONS``): which rows, and which mix of labels, each sensor streams.
- :mod:`~edgetestbed.data.streams`: :class:`~edgetestbed.data.streams.StreamDefinition`, a
  sensor's endless ``(x, y)`` samples and the held-out set, and the wire form of a sample.
- :mod:`~edgetestbed.data.schedule`: when each sample is sent and in which window
  (:class:`~edgetestbed.data.schedule.Schedule`), the grace receivers wait, and whether a
  run kept pace.

Import the concrete module (``from edgetestbed.data.streams import StreamDefinition``).
"""
