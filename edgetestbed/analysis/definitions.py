"""The definitions of a run's metrics (docs/architecture.md, "Measurement and metrics"), as
pure functions, so tests can feed them hand-made numbers; :mod:`edgetestbed.analysis.metrics`
applies them to a run's logs:

- :func:`lag_curve`: ``A_cloud(t) − A_node(t)`` at the node's evaluation times, the cloud's
  curve linearly interpolated between its own evaluations (RMSE: ``node − cloud``, so a
  positive lag always means "behind the cloud");
- :func:`propagation_latency`: the seeds' formula, exact through coverage vectors;
- :func:`convergence_time`: the first time a curve is within a tolerance of its last value;
- :func:`own_labels` and :func:`split_per_class`: a worker's own digits vs the others;
- :func:`ratio`: a quotient that is None when either side is unknown or the divisor 0.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edgetestbed.data.partitions import N_DIGITS
from edgetestbed.nodes.model import covers


def lag_curve(t: Sequence[float], values: Sequence[float], cloud_t: Sequence[float],
              cloud_values: Sequence[float], higher_is_better: bool = True) -> Tuple[List[float], List[float]]:
    """The lag behind the cloud at each of a node's times ``t``: ``cloud − node`` (``node −
    cloud`` when lower is better). The cloud's curve is interpolated linearly between its
    evaluations and held at its last value after them (its model no longer changes); node
    times before the cloud's first evaluation are left out (nothing to compare with)."""
    if not len(cloud_t):
        return [], []
    t, values = np.asarray(t, dtype=float), np.asarray(values, dtype=float)
    kept = t >= cloud_t[0]
    cloud = np.interp(t[kept], cloud_t, cloud_values)
    lag = cloud - values[kept] if higher_is_better else values[kept] - cloud
    return t[kept].tolist(), lag.tolist()


def propagation_latency(finished: Mapping[str, Mapping[int, float]],
                        received: Mapping[str, Sequence[Tuple[float, Mapping[str, int]]]],
                        windows: int) -> Dict[str, Any]:
    """The seeds' propagation latency. ``finished[i][j]`` is ``t_j^i``, when worker ``i``
    finished window ``j``; ``received[i]`` lists ``(time, coverage)`` of every model worker
    ``i`` received. ``tr_j^i`` is the first time ``i`` received a model whose coverage holds
    window ``j`` of every worker; ``latency_j^i = tr_j^i − max_k t_j^k``, ``latency^i =
    max_j latency_j^i`` and the configuration's latency is ``max_i latency^i``. A window
    some worker never finished, or never got back, is ``None`` and listed in ``missing``."""
    workers = list(finished)
    per_window: Dict[str, List[Optional[float]]] = {w: [None] * windows for w in workers}
    unfinished: Dict[int, List[str]] = {}
    for j in range(windows):
        unfinished[j] = [w for w in workers if j not in finished[w]]
        if unfinished[j]:
            continue
        everyone_done = max(finished[w][j] for w in workers)
        for i in workers:
            back = _first_covering(received.get(i, ()), workers, j)
            per_window[i][j] = None if back is None else back - everyone_done
    by_worker = {w: _worst_window(per_window[w]) for w in workers}
    worst = max((w for w in workers if by_worker[w]["seconds"] is not None),
                key=lambda w: by_worker[w]["seconds"], default=None)
    missing = [f"window {j}: never finished by {', '.join(late)}" for j, late in unfinished.items() if late]
    missing += _never_received(per_window, unfinished)
    return {"seconds": by_worker[worst]["seconds"] if worst else None, "worker": worst,
            "window": by_worker[worst]["window"] if worst else None, "complete": not missing,
            "missing": missing, "workers": by_worker}


def _first_covering(received: Sequence[Tuple[float, Mapping[str, int]]], workers: Sequence[str],
                    window: int) -> Optional[float]:
    return min((t for t, coverage in received if covers(coverage, workers, window)), default=None)


def _worst_window(latencies: Sequence[Optional[float]]) -> Dict[str, Any]:
    known = [(value, j) for j, value in enumerate(latencies) if value is not None]
    seconds, window = max(known) if known else (None, None)
    return {"seconds": seconds, "window": window, "per_window": list(latencies)}


def _never_received(per_window: Mapping[str, Sequence[Optional[float]]], unfinished: Mapping[int, list]) -> List[str]:
    lines = []
    for worker, latencies in per_window.items():
        lost = [j for j, value in enumerate(latencies) if value is None and not unfinished[j]]
        if lost:
            lines.append(f"{worker}: never received a model holding every worker's window "
                         f"{', '.join(map(str, lost))}")
    return lines


def convergence_time(t: Sequence[float], values: Sequence[float], tolerance: float) -> Optional[float]:
    """The first time ``values`` is within ``tolerance`` of its last value; None if empty."""
    if not len(values):
        return None
    final = values[-1]
    return next(float(time) for time, value in zip(t, values) if abs(value - final) <= tolerance)


def own_labels(distributions: Sequence[Optional[np.ndarray]]) -> List[int]:
    """A worker's own digits: those its sensors, together, send more often than 1 in 10.
    ``distributions`` are its sensors' digit probabilities (None: the natural frequencies,
    taken as uniform); the sensors send at one rate, so together they are the mean."""
    uniform = np.full(N_DIGITS, 1 / N_DIGITS)
    mean = np.mean([uniform if d is None else d for d in distributions], axis=0)
    return [int(digit) for digit in np.flatnonzero(mean > 1 / N_DIGITS + 1e-9)]


def split_per_class(per_class: Sequence[Optional[float]], own: Sequence[int]) -> Tuple[Optional[float], Optional[float]]:
    """Mean per-class accuracy over ``own`` classes and over the others (classes absent
    from the test set, ``None``, left out); None for an empty side."""
    def mean(values: List[Optional[float]]) -> Optional[float]:
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known else None
    return (mean([per_class[c] for c in own]),
            mean([v for c, v in enumerate(per_class) if c not in own]))



def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """``numerator / denominator``; None if the numerator is unknown or the denominator 0 or unknown."""
    return numerator / denominator if numerator is not None and denominator else None
