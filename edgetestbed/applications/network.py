"""A fully connected feed-forward network in numpy: the model behind ``mnist_mlp`` and ``aqi``.

Weights are a flat list ``[W1, b1, W2, b2, ...]`` of float32 arrays (``W`` of shape
``(inputs, outputs)``), which is exactly what nodes exchange. Hidden layers use the
chosen activation; the output layer is linear, and the loss turns its output into a
gradient (softmax cross-entropy for classes, squared error for a value).
:class:`DenseApplication` is the application base for tasks built on it.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

import numpy as np
from pydantic import PositiveInt

from edgetestbed.applications.base import SGDApplication, SGDParams


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow warnings


def _glorot(fan_in: int, fan_out: int) -> float:
    return float(np.sqrt(2 / (fan_in + fan_out)))


# name: (function, derivative expressed through the function's output, initial weight std).
# Glorot & Bengio 2010 (x4 for sigmoid), He et al. 2015 for relu: with the seeds' narrow
# sigmoid network this reaches ~60 % after one epoch on 3000 digits instead of ~10 %.
ACTIVATIONS: Dict[str, Tuple[Callable, Callable, Callable[[int, int], float]]] = {
    "sigmoid": (_sigmoid, lambda a: a * (1 - a), lambda fan_in, fan_out: 4 * _glorot(fan_in, fan_out)),
    "tanh": (np.tanh, lambda a: 1 - a * a, _glorot),
    "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype),
             lambda fan_in, fan_out: float(np.sqrt(2 / fan_in))),
}


def init_weights(sizes: Sequence[int], activation: str, rng: np.random.Generator) -> List[np.ndarray]:
    """Gaussian weights with the activation's scale, zero biases."""
    std = ACTIVATIONS[activation][2]
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weights.append((rng.standard_normal((fan_in, fan_out)) * std(fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, dtype=np.float32))
    return weights


def forward(weights: Sequence[np.ndarray], x: np.ndarray, activation: str) -> List[np.ndarray]:
    """The outputs of every layer, input first; the last is the linear output layer."""
    function = ACTIVATIONS[activation][0]
    if x.ndim != 2 or x.shape[1] != weights[0].shape[0]:
        raise ValueError(f"expected samples of {weights[0].shape[0]} features, got an array of shape {x.shape}")
    outputs = [x]
    for i in range(0, len(weights), 2):
        z = outputs[-1] @ weights[i] + weights[i + 1]
        outputs.append(z if i == len(weights) - 2 else function(z))
    return outputs


def backward(weights: Sequence[np.ndarray], outputs: Sequence[np.ndarray], output_gradient: np.ndarray,
             activation: str) -> List[np.ndarray]:
    """Gradients of the loss for every array in ``weights``, given d(loss)/d(output layer)."""
    derivative = ACTIVATIONS[activation][1]
    gradients: List[np.ndarray] = [np.empty(0)] * len(weights)
    delta = output_gradient
    for i in range(len(weights) - 2, -1, -2):
        layer_input = outputs[i // 2]
        gradients[i], gradients[i + 1] = layer_input.T @ delta, delta.sum(axis=0)
        if i:
            delta = (delta @ weights[i].T) * derivative(layer_input)
    return gradients


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> Tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    loss = float(-np.mean(np.log(np.maximum(probabilities[rows, labels], 1e-12))))
    probabilities[rows, labels] -= 1
    return loss, probabilities / len(labels)


def squared_error(predicted: np.ndarray, targets: np.ndarray) -> Tuple[float, np.ndarray]:
    """Half the mean squared error and its gradient (predicted, targets: shape (n, 1))."""
    difference = predicted - targets
    return float(0.5 * np.mean(difference ** 2)), difference / len(targets)


def loss_gradient(weights: List[np.ndarray], x: np.ndarray, targets: np.ndarray, activation: str,
                  loss: Callable[[np.ndarray, np.ndarray], Tuple[float, np.ndarray]]) -> Tuple[float, List[np.ndarray]]:
    """The loss on a minibatch and its gradient for every array in ``weights``."""
    outputs = forward(weights, x, activation)
    value, output_gradient = loss(outputs[-1], targets)
    return value, backward(weights, outputs, output_gradient, activation)


class DenseParams(SGDParams):
    """Parameters of a dense network: hidden layer sizes and their activation."""

    hidden: List[PositiveInt]
    activation: Literal["sigmoid", "tanh", "relu"]


class DenseApplication(SGDApplication):
    """An SGD application whose model is a dense network from ``n_inputs`` to ``n_outputs``.

    Subclasses set ``n_inputs`` and ``n_outputs`` (class attributes, or properties that
    read ``self.params``), choose the ``loss`` (a function above) and may map labels to
    the network's targets in :meth:`_targets`.
    """

    Params: ClassVar[type] = DenseParams
    n_inputs: int
    n_outputs: int
    loss: ClassVar[Callable[[np.ndarray, np.ndarray], Tuple[float, np.ndarray]]]

    def __init__(self, params: Optional[Mapping[str, Any]] = None, seed: int = 0) -> None:
        super().__init__(params, seed)
        sizes = [self.n_inputs, *self.params.hidden, self.n_outputs]
        self.weights = init_weights(sizes, self.params.activation, self.rng)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        return y

    def gradient(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, List[np.ndarray]]:
        return loss_gradient(self.weights, np.asarray(x, dtype=np.float32), self._targets(y),
                             self.params.activation, type(self).loss)

    def _output(self, x: np.ndarray) -> np.ndarray:
        return forward(self.weights, np.asarray(x, dtype=np.float32), self.params.activation)[-1]
