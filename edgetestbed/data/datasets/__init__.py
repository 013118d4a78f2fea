"""The dataset plugins: one module each, registered in ``DATASETS``.

A dataset (:class:`~edgetestbed.data.datasets.base.Dataset`) gives the partitions its
usable training rows (:class:`~edgetestbed.data.datasets.base.Candidates`), turns the
rows a partition picked for a sensor into that sensor's endless stream, holds out its
test set, and says how a sample travels on the wire. Its own parameters (AQI's ``lags``)
sit next to the partition's in the spec's ``data:`` section. The files behind a dataset
are fetched and cached by :mod:`edgetestbed.data.sources`.

- :mod:`~edgetestbed.data.datasets.mnist`: handwritten digits, classification.
- :mod:`~edgetestbed.data.datasets.aqi`: Beijing PM2.5, hourly, regression.
"""

from edgetestbed.data.datasets.base import DATASETS, Candidates, Dataset, Sample

__all__ = ["DATASETS", "Candidates", "Dataset", "Sample"]
