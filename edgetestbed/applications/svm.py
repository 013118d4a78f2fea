"""``svm``: a linear SVM telling even from odd MNIST digits (the adaptive-control demo's model).

Samples are ordinary MNIST samples (pixels, digit); the target is the digit's parity
(+1 even, −1 odd). Trained by minibatch SGD on the L2-regularized hinge loss
``reg/2·|w|² + mean(max(0, 1 − t·(w·x + b)))``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Tuple

import numpy as np
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from edgetestbed.applications.base import SGDApplication, SGDParams
from edgetestbed.applications.metrics import classification_scores

N_PIXELS, N_DIGITS = 784, 10


class ParitySVMParams(SGDParams):
    """The spec's ``application:`` keys for ``svm``; ``reg`` weighs the L2 term."""

    learning_rate: PositiveFloat = 0.05
    batch_size: PositiveInt = 20
    reg: NonNegativeFloat = 1e-4


def parity_targets(digits: np.ndarray) -> np.ndarray:
    """+1 for even digits, −1 for odd ones."""
    return np.where(np.asarray(digits) % 2 == 0, 1.0, -1.0).astype(np.float32)


class ParitySVM(SGDApplication):
    """Even/odd classifier; weights ``[w (784,), b (1,)]``."""

    dataset: ClassVar[str] = "mnist"
    Params: ClassVar[type] = ParitySVMParams

    def __init__(self, params=None, seed: int = 0) -> None:
        super().__init__(params, seed)
        self.weights = [np.zeros(N_PIXELS, dtype=np.float32), np.zeros(1, dtype=np.float32)]

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Signed distance-like margin: positive means even."""
        w, b = self.weights
        return np.asarray(x, dtype=np.float32) @ w + b[0]

    def gradient(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, List[np.ndarray]]:
        """The regularised hinge loss and its (sub)gradient."""
        x = np.asarray(x, dtype=np.float32)
        w, _ = self.weights
        targets = parity_targets(y)
        margins = targets * self.decision_function(x)
        violating = margins < 1
        loss = 0.5 * self.params.reg * float(w @ w) + float(np.mean(np.maximum(0, 1 - margins)))
        return loss, [np.float32(self.params.reg) * w - (targets[violating] @ x[violating]) / len(x),
                      np.array([-targets[violating].sum() / len(x)], dtype=np.float32)]

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Dict[str, Any]:
        """Parity accuracy; ``per_class`` is the parity accuracy on each digit 0–9."""
        y = np.asarray(y)
        correct = (self.decision_function(x) >= 0) == (parity_targets(y) > 0)
        return classification_scores(correct, y, N_DIGITS)
