"""MNIST: handwritten digits, 60,000 training and 10,000 test images, ten classes.

``x``: float32 784-vector ``pixel / 256``; ``y``: int digit. A sensor sends the 8-bit
pixels themselves (:meth:`Mnist.to_wire`), as a camera would: a quarter of float32's
bytes and packets. A sensor streams its partition's rows in a fresh random order on every
pass (so it repeats an image only after streaming all others), or, when its partition
gives it a mix of digits, draws a digit from that mix and then takes the next image of
that digit the same way.
"""

from __future__ import annotations

import functools
from typing import Iterator, Optional, Tuple

import numpy as np

from edgetestbed.data.datasets.base import DATASETS, Candidates, Dataset, Sample
from edgetestbed.data.partitions.base import N_DIGITS
from edgetestbed.data.sources import Mnist as MnistArrays
from edgetestbed.data.sources import load_mnist

PIXEL_SCALE = np.float32(256)  # features are pixel / 256: exact in float32, exactly invertible
_CHUNK = 256  # indices converted to Python ints at a time


@functools.lru_cache(maxsize=1)
def _mnist_pixels() -> MnistArrays:
    """MNIST's uint8 pixels, loaded once per process: the cloud baseline holds one stream
    per sensor, and each loading its own copy of the labels cost 0.5 MB per sensor."""
    return load_mnist(pixels=True)


def _shuffled_passes(pool: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    """The indices of ``pool`` in a fresh random order on every pass, forever.

    A pass is converted to Python ints a chunk at a time: a whole pass as a list costs
    36 bytes per index, which the cloud baseline pays once per digit per sensor
    (over 200 MB at 100 sensors)."""
    while True:
        order = rng.permutation(pool)
        for start in range(0, len(order), _CHUNK):
            yield from order[start:start + _CHUNK].tolist()


def _indices(labels: np.ndarray, pool: np.ndarray, probabilities: Optional[np.ndarray],
             seed: np.random.SeedSequence) -> Iterator[int]:
    """Endless indices from ``pool`` whose digits follow ``probabilities`` (None: as in the pool)."""
    if probabilities is None:
        yield from _shuffled_passes(pool, np.random.default_rng(seed))
        return
    label_seed, *digit_seeds = seed.spawn(N_DIGITS + 1)
    label_rng = np.random.default_rng(label_seed)
    pool_labels = labels[pool]
    digit_pools = [pool[pool_labels == digit] for digit in range(N_DIGITS)]
    del pool_labels  # 8 bytes per sample for as long as the stream lives, once per sensor
    orders = [_shuffled_passes(digit_pool, np.random.default_rng(digit_seed))
              for digit_pool, digit_seed in zip(digit_pools, digit_seeds)]
    while True:
        for digit in label_rng.choice(N_DIGITS, size=1024, p=probabilities).tolist():
            yield next(orders[digit])


def _mnist_stream(pool: np.ndarray, probabilities: Optional[np.ndarray],
                  seed: np.random.SeedSequence) -> Iterator[Sample]:
    """Endless MNIST training samples (float32 ``pixel / 256``, digit) from ``pool``."""
    mnist = _mnist_pixels()
    for index in _indices(mnist.y_train, pool, probabilities, seed):
        yield mnist.x_train[index] / PIXEL_SCALE, int(mnist.y_train[index])


@functools.lru_cache(maxsize=1)
def _whole_training_set() -> np.ndarray:
    """Every MNIST training index, one read-only array shared by all streams of a process."""
    pool = np.arange(len(_mnist_pixels().y_train), dtype=np.int32)
    pool.setflags(write=False)
    return pool


@DATASETS.register
class Mnist(Dataset):
    """Handwritten digits (LeCun et al.), classification into ten digits."""

    name = "mnist"
    rank = 1
    wire_dtype = "uint8"

    def candidates(self) -> Candidates:
        return Candidates(_whole_training_set())

    def stream(self, rows: np.ndarray, label_distribution: Optional[np.ndarray],
               seed: np.random.SeedSequence) -> Iterator[Sample]:
        return _mnist_stream(rows, label_distribution, seed)

    def evaluation_data(self) -> Tuple[np.ndarray, np.ndarray]:
        """The test images converted from the memory-mapped uint8 pixels alone (``pixel /
        256``, exactly the float values): converting the 60k training images too would
        cost 190 MB in every node and break a 256 MB memory limit."""
        mnist = _mnist_pixels()
        return mnist.x_test / PIXEL_SCALE, mnist.y_test

    def to_wire(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x) * PIXEL_SCALE).astype(np.uint8)

    def from_wire(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.uint8) / PIXEL_SCALE
