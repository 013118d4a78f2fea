"""What coding costs the process that does it: CPU seconds and peak memory, encoding and decoding.

The seed study of compressed updates (Sudharsan et al.) warns that compression costs CPU and
memory on small devices; so every :func:`~edgetestbed.codecs.encode_chain` and
:func:`~edgetestbed.codecs.decode_chain` is metered here, and a node reports the totals in
its ``DONE`` event (``codec_*`` fields, :meth:`CodecUsage.fields`).

One meter per process (:data:`USAGE`): each node of a run is a process of its own, and
coding happens inside the protocol's ``encode``/``decode``, which know no node.

- CPU: ``time.thread_time()``, the calling thread's CPU time, so that ZeroMQ's I/O threads
  working at the same moment are not counted.
- Memory: the peak of Python's traced allocations during the call, above what was allocated
  before it (``tracemalloc``, which numpy reports its arrays' buffers to): the working memory
  the codec needed, its output included. Tracing runs only during the call; it adds about a
  microsecond per allocation, which the CPU figure includes.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, TypeVar

T = TypeVar("T")
ENCODE, DECODE = "encode", "decode"


@dataclass
class Meter:
    """Calls, CPU seconds and the largest memory peak of one kind of work."""

    calls: int = 0
    cpu: float = 0.0
    peak: int = 0


@dataclass
class CodecUsage:
    """The process's coding so far, per kind (``encode``, ``decode``)."""

    meters: Dict[str, Meter] = field(default_factory=lambda: {ENCODE: Meter(), DECODE: Meter()})

    def measure(self, kind: str, work: Callable[[], T]) -> T:
        """``work()``, its CPU time and memory peak added to ``kind``'s meter."""
        own = not tracemalloc.is_tracing()
        if own:
            tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        started = time.thread_time()
        try:
            return work()
        finally:
            cpu = time.thread_time() - started
            peak = tracemalloc.get_traced_memory()[1] - before
            if own:
                tracemalloc.stop()
            meter = self.meters[kind]
            meter.calls, meter.cpu, meter.peak = meter.calls + 1, meter.cpu + cpu, max(meter.peak, peak)

    def fields(self) -> Dict[str, Any]:
        """``codec_<kind>s``, ``codec_<kind>_cpu`` (s) and ``codec_<kind>_peak`` (bytes) of
        each kind done at least once; nothing for a process that coded nothing."""
        return {key: value for kind, meter in self.meters.items() if meter.calls
                for key, value in ((f"codec_{kind}s", meter.calls), (f"codec_{kind}_cpu", meter.cpu),
                                   (f"codec_{kind}_peak", meter.peak))}


USAGE = CodecUsage()
