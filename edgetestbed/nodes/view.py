"""The read-only view of a node's model that its policy gets (:class:`~edgetestbed.policies.view.ModelView`).

Built by the node's :class:`~edgetestbed.nodes.upstream.Exchange` for every policy; only the
learning-based triggers use it. It computes what they ask on demand, so a policy that never
asks costs nothing. The validation sample is drawn once, with the spec's seed, the same on
every node, so that two nodes' accuracies (and two runs') compare.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edgetestbed.nodes.model import ModelState
from edgetestbed.process.runtime import Runtime

VALIDATION_SEED_WORD = 13   # keeps the validation sample's draw apart from other seeds


class NodeModelView:
    """``model`` of the process ``runtime`` runs, as its policy sees it."""

    def __init__(self, runtime: Runtime, model: ModelState) -> None:
        self.runtime = runtime
        self.model = model
        self._samples: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    def pending_update(self) -> List[np.ndarray]:
        return self.model.app.compute_update(self.model.reference)

    def pending_samples(self) -> int:
        return self.model.samples

    def reference(self) -> List[np.ndarray]:
        return [r.copy() for r in self.model.reference]

    def last_global_update(self) -> Optional[List[np.ndarray]]:
        pulls = self.model.pulls
        return [new - old for old, new in zip(*pulls)] if len(pulls) == 2 else None

    def final_window_pending(self) -> bool:
        last = self.runtime.spec.windows.limit - 1
        return any(window >= last for window in self.model.unpushed.values())

    def validation_accuracy(self, size: int) -> float:
        figures = self.model.app.evaluate(*self.validation_sample(size))
        return float(figures.get("accuracy", figures["score"]))

    def validation_sample(self, size: int) -> Tuple[np.ndarray, np.ndarray]:
        """``size`` test samples (all of them if there are fewer), drawn once with the spec's seed."""
        if size not in self._samples:
            x, y = self.runtime.evaluation_data
            rng = np.random.default_rng([self.runtime.spec.seed, VALIDATION_SEED_WORD])
            chosen = np.sort(rng.choice(len(x), size=min(size, len(x)), replace=False))
            self._samples[size] = (x[chosen], y[chosen])
        return self._samples[size]

    def log(self, type_: str, **payload: Any) -> None:
        self.runtime.log.write(type_, **payload)
