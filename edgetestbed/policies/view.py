"""What a policy may see of its node's model: :class:`ModelView`, read-only.

The fixed-schedule policies (``simple``, ``time``, ...) decide from events alone and never
look. A learning-based trigger (``significance``, ``relevance``, ``accuracy``) decides from
the model itself, so the node hands every policy this view once (:meth:`Policy.attach`);
a policy that ignores it behaves exactly as before. The view cannot change the model: a
policy that wants an update dropped says so (:meth:`Policy.wants_discard`) and the node
does it, so that the model's bookkeeping stays in one place (``nodes/model.py``). The one
thing a policy may write is its node's event log, to say why it held a push back.
"""

from __future__ import annotations

from typing import Any, List, Optional, Protocol

import numpy as np


class ModelView(Protocol):
    """A node's model as its policy sees it (implemented by the node: ``nodes/view.py``)."""

    def pending_update(self) -> List[np.ndarray]:
        """What the parent has not received yet: the current weights minus :meth:`reference`."""

    def pending_samples(self) -> int:
        """The samples behind :meth:`pending_update`."""

    def reference(self) -> List[np.ndarray]:
        """The weights the parent last knew of this node (the last model pulled, plus every
        update pushed since)."""

    def last_global_update(self) -> Optional[List[np.ndarray]]:
        """The change between the last two models this node pulled; None before two pulls."""

    def final_window_pending(self) -> bool:
        """Whether the pending update holds some worker's last window (the run cannot
        complete without it)."""

    def validation_accuracy(self, size: int) -> float:
        """The current model's accuracy (its ``score`` where it has none) on a fixed, seeded
        sample of ``size`` test samples, the same for every node and every call."""

    def log(self, type_: str, **payload: Any) -> None:
        """An event in the node's log."""
