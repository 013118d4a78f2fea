"""``mnist_mlp``: the seeds' MNIST network (TreeNN simulator), 784-20-10-10-10, plain SGD.

Defaults follow the simulator: hidden layers 20, 10, 10 with sigmoid activations,
learning rate 0.4, minibatches of 20. The output is a softmax trained with
cross-entropy. Hidden sizes and activation (``sigmoid``, ``tanh``, ``relu``; relu wants
a smaller learning rate, e.g. 0.05) are parameters.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Literal

import numpy as np
from pydantic import Field, PositiveFloat, PositiveInt

from edgetestbed.applications import network
from edgetestbed.applications.metrics import classification_scores

N_PIXELS, N_DIGITS = 784, 10


class MnistMLPParams(network.DenseParams):
    """The spec's ``application:`` keys for ``mnist_mlp``, with the simulator's defaults."""

    hidden: List[PositiveInt] = Field([20, 10, 10], description="hidden layer sizes like [20, 10, 10]")
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid"
    learning_rate: PositiveFloat = 0.4
    batch_size: PositiveInt = 20


class MnistMLP(network.DenseApplication):
    """Digit classifier: a fully connected network with a softmax output."""

    dataset: ClassVar[str] = "mnist"
    Params: ClassVar[type] = MnistMLPParams
    n_inputs, n_outputs = N_PIXELS, N_DIGITS
    loss = staticmethod(network.softmax_cross_entropy)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most likely digit of each row of ``x``."""
        return self._output(x).argmax(axis=1)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Dict[str, Any]:
        """Accuracy, per-digit accuracy and mean cross-entropy ``loss``."""
        y = np.asarray(y)
        logits = self._output(x)
        scores = classification_scores(logits.argmax(axis=1) == y, y, N_DIGITS)
        scores["loss"] = network.softmax_cross_entropy(logits, y)[0]
        return scores
