"""What every dataset is: the rows partitions split, a sensor's stream, the held-out set.

Adding a dataset is one file in this package: a :class:`Dataset` subclass with a
``name``, its ``Params`` (its own keys in the spec's ``data:`` section, if any), and the
methods below, registered with ``@DATASETS.register``. Partitions name the datasets they
can split (``Partition.datasets``; empty: every dataset).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Iterator, Optional, Tuple, Union

import numpy as np
from pydantic import BaseModel

from edgetestbed.params.plugins import Plugin, Registry

Sample = Tuple[np.ndarray, Union[int, float]]


@dataclass(frozen=True)
class Candidates:
    """A dataset's usable training rows, in increasing order, before a partition picks a
    sensor's; ``years`` and ``months`` (AQI) hold each row's, indexed like the dataset."""

    rows: np.ndarray
    years: Optional[np.ndarray] = None
    months: Optional[np.ndarray] = None


class Dataset(Plugin, ABC):
    """A dataset, built from the validated ``data:`` parameters (its own and the partition's).

    ``task``: ``classification`` (integer labels, scored by accuracy; a partition may give
    each sensor its own label mix) or ``regression``. ``wire_dtype``: the dtype a sensor
    sends features in; :meth:`to_wire` and :meth:`from_wire` convert exactly.
    """

    task: ClassVar[str] = "classification"
    wire_dtype: ClassVar[str] = "float32"

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @abstractmethod
    def candidates(self) -> Candidates:
        """The training rows a partition may give a sensor."""

    @abstractmethod
    def stream(self, rows: np.ndarray, label_distribution: Optional[np.ndarray],
               seed: np.random.SeedSequence) -> Iterator[Sample]:
        """Endless ``(x, y)`` training samples from ``rows``, following ``label_distribution``
        (None: the rows' own mix) where the dataset has classes, drawn with ``seed``."""

    @abstractmethod
    def evaluation_data(self) -> Tuple[np.ndarray, np.ndarray]:
        """The held-out test set as ``(x, y)`` arrays in the streams' representation."""

    def to_wire(self, x: np.ndarray) -> np.ndarray:
        """One sample's (or a stack's) features as a sensor sends them; exact."""
        return np.asarray(x, dtype=np.float32)

    def from_wire(self, x: np.ndarray) -> np.ndarray:
        """Features received from sensors back as the float32 the stream yields; exact."""
        return np.asarray(x, dtype=np.float32)


DATASETS: Registry[Dataset] = Registry("dataset", Dataset, "dataset", "edgetestbed.data.datasets",
                                       classes=False)
