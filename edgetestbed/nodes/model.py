"""A node's model between exchanges: its weights, what it has not pushed yet, and coverage.

Workers and parameter servers keep their model the same way. ``reference`` is the
weights the parent last knew of this node (the last model pulled, plus every update
pushed since), so ``current − reference`` is the update to push next. A pull keeps
that unpushed part: the new model is ``pulled + (current − reference)``.

Coverage (docs/architecture.md, "Learning semantics"): for each worker, the latest window merged into a model. A node
tracks two vectors: ``coverage`` of its model and ``unpushed`` coverage of its pending
update. Training window ``j`` on worker ``w`` and merging a child's update add to both;
a push carries and clears ``unpushed``; a pull sets the model's coverage to the pulled
model's joined with ``unpushed`` — exactly what the new weights contain.

A node whose policy drops an update (``relevance``) goes back to ``reference``
(:meth:`ModelState.discard`): its coverage goes back to ``known``, the coverage of
``reference`` (the pulled model's, joined with every update pushed since), so a dropped
window is covered neither by the node nor by its parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from edgetestbed.applications import Application, weighted_average

Coverage = Dict[str, int]


def joined(*vectors: Mapping[str, int]) -> Coverage:
    """The element-wise maximum of coverage vectors."""
    result: Coverage = {}
    for vector in vectors:
        for worker, window in vector.items():
            result[worker] = max(window, result.get(worker, -1))
    return result


def covers(coverage: Mapping[str, int], workers: Sequence[str], window: int) -> bool:
    """Whether ``coverage`` includes window ``window`` of every worker in ``workers``."""
    return all(coverage.get(worker, -1) >= window for worker in workers)


def scaled_sum(deltas: Sequence[Sequence[np.ndarray]], weights: Sequence[float]) -> List[np.ndarray]:
    """``Σ weights[i] × deltas[i]``, tensor by tensor, as float32."""
    return [sum(w * d[i] for w, d in zip(weights, deltas)).astype(np.float32) for i in range(len(deltas[0]))]


@dataclass
class Update:
    """What a push carries: a weight delta, the samples behind it and its coverage."""

    delta: List[np.ndarray]
    samples: int
    coverage: Coverage = field(default_factory=dict)


class ModelState:
    """An application's model with the bookkeeping for pushes, pulls and merges.

    ``version`` counts merges into this model; ``base_version`` is the version of the
    parent's model last pulled (a push reports it, so staleness can be analysed).
    """

    def __init__(self, app: Application) -> None:
        self.app = app
        self.reference = app.get_weights()
        self.samples = 0
        self.coverage: Coverage = {}
        self.unpushed: Coverage = {}
        self.version = 0
        self.base_version = 0
        self.known: Coverage = {}   # the coverage of ``reference``
        # The last two different models pulled: their difference is the last global update
        # (pulling the same model twice says nothing of where the model is going).
        self.pulls: List[List[np.ndarray]] = []

    def trained(self, samples: int) -> None:
        """Local training on ``samples`` new samples changed the model."""
        self.samples += samples

    def covered(self, worker: str, window: int) -> None:
        """The model now holds all of ``worker``'s window ``window``."""
        self.coverage = joined(self.coverage, {worker: window})
        self.unpushed = joined(self.unpushed, {worker: window})

    def has_pending(self) -> bool:
        """Whether there is anything the parent has not received yet."""
        return self.samples > 0 or bool(self.unpushed)

    def pending(self) -> Update:
        """The update to push now (the model is not changed until :meth:`committed`)."""
        return Update(self.app.compute_update(self.reference), self.samples, dict(self.unpushed))

    def committed(self, update: Update) -> None:
        """The parent acknowledged ``update``."""
        self.reference = [r + d for r, d in zip(self.reference, update.delta)]
        self.samples -= update.samples
        self.unpushed = {}
        self.known = joined(self.known, update.coverage)

    def adopt(self, weights: Sequence[np.ndarray], coverage: Mapping[str, int], version: int) -> None:
        """Take the parent's model, keeping what this node has not pushed yet."""
        unpushed = self.app.compute_update(self.reference)
        pulled = [np.array(w, dtype=np.float32) for w in weights]
        self.app.set_weights([p + u for p, u in zip(pulled, unpushed)])
        self.reference = pulled
        self.coverage = joined(coverage, self.unpushed)
        self.base_version = version
        self.known = dict(coverage)
        if not self.pulls or not all(np.array_equal(a, b) for a, b in zip(self.pulls[-1], pulled)):
            self.pulls = [*self.pulls[-1:], pulled]

    def discard(self) -> int:
        """Drop the pending update unsent: back to ``reference`` and its coverage; the samples dropped."""
        dropped, self.samples, self.unpushed = self.samples, 0, {}
        self.app.set_weights([r.copy() for r in self.reference])
        self.coverage = dict(self.known)
        return dropped

    def merge(self, updates: Sequence[Update], weights: Optional[Sequence[float]] = None) -> None:
        """Apply children's updates (coverage even if no samples): their sample-weighted
        average, or with ``weights`` (an aggregation's) the sum of each scaled by its weight."""
        total = sum(update.samples for update in updates)
        if total > 0:
            self.app.apply_update(weighted_average([u.delta for u in updates], [u.samples for u in updates])
                                  if weights is None else scaled_sum([u.delta for u in updates], weights))
        self.samples += total
        self.coverage = joined(self.coverage, *(u.coverage for u in updates))
        self.unpushed = joined(self.unpushed, *(u.coverage for u in updates))
        self.version += 1
