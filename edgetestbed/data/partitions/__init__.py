"""Data partitions: how a dataset's training samples are spread over the sensors.

Each partition is one class in one module of this package, registered by name
(``@PARTITIONS.register``), declaring the datasets it can split, its parameters (a
pydantic ``Params``) and how it picks a sensor's rows and label mix. The spec's ``data:
{dataset: D, partition: NAME, ...}`` picks one; its other keys are the partition's
parameters and the dataset's own (``lags`` for aqi), checked once with the same model by
``validate`` and by :class:`edgetestbed.data.streams.StreamDefinition`. Adding one:
``docs/architecture.md``.
"""

from edgetestbed.data.partitions.base import (N_DIGITS, PARTITIONS, Partition, datasets_of, mismatch,
                                                 params_model, partitions_of)

__all__ = ["N_DIGITS", "PARTITIONS", "Partition", "datasets_of", "mismatch", "params_model",
           "partitions_of"]
