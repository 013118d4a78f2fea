"""The one interface every learning task implements, and what parameter servers merge with.

A node never looks inside a model: it moves lists of numpy arrays. A worker calls
:meth:`Application.train` on each window's samples, then :meth:`Application.compute_update`
against the weights it last pulled, and pushes that update with its sample count. A
parameter server merges its children's updates with :func:`weighted_average` and applies
the result with :meth:`Application.apply_update`. Every node calls
:meth:`Application.evaluate` on the held-out set, which reports a ``score`` where higher
is better (accuracy for classifiers, negative RMSE for regressors) next to the task's
own figures.

A user's own task subclasses :class:`Application` (or :class:`SGDApplication` for a
model trained by minibatch SGD on a list of arrays), declares its parameters as a
pydantic model in ``Params`` (a subclass of :class:`ApplicationParams`), and is named in
the spec as ``module:Class``. ``validate`` then checks the spec's ``application:`` keys
against that model, as every built-in application's are; a class that leaves ``Params``
at ``None`` gets its parameters unchecked, as a plain dict (see :class:`Application`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError

from edgetestbed.errors import UserError
from edgetestbed.params.fields import thaw

Weights = List[np.ndarray]


class ApplicationParams(BaseModel):
    """Parameters of an application as written in the spec.

    Like every other part of the spec: unknown names are refused, and so is loose type
    coercion (``batch_size: true`` or ``learning_rate: '0.4'``) and an infinite or NaN
    number. A subclass may relax that in its own ``model_config``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SGDParams(ApplicationParams):
    """Parameters every minibatch-SGD application has."""

    learning_rate: PositiveFloat
    batch_size: PositiveInt


def parse_params(model: Optional[type], params: Optional[Mapping[str, Any]], what: str) -> Any:
    """``params`` validated by the pydantic ``model``; a :class:`UserError` naming the field otherwise.

    With no ``model``, ``params`` as a plain dict, unchecked.
    """
    plain = thaw(params or {})
    if model is None:
        return plain
    try:
        return model.model_validate(plain)
    except ValidationError as error:
        known = ", ".join(model.model_fields) or "none"

        def explain(problem: Mapping[str, Any]) -> str:
            where = ".".join(map(str, problem["loc"])) or "parameters"
            if problem["type"] == "extra_forbidden":
                return f"{where}: unknown parameter (known: {known})"
            return f"{where}: {problem['msg']}"
        raise UserError(f"application {what}: {'; '.join(map(explain, error.errors()))}") from None


def validate_arrays(expected: Sequence[np.ndarray], arrays: Sequence[np.ndarray]) -> Weights:
    """``arrays`` as float32 copies, if they match ``expected`` in number and shapes; else ValueError."""
    if len(arrays) != len(expected):
        raise ValueError(f"expected {len(expected)} arrays, got {len(arrays)}")
    for i, (want, got) in enumerate(zip(expected, arrays)):
        if np.shape(got) != want.shape:
            raise ValueError(f"array {i}: expected shape {want.shape}, got {np.shape(got)}")
    return [np.array(a, dtype=np.float32) for a in arrays]


def weighted_average(updates: Sequence[Sequence[np.ndarray]], sample_counts: Sequence[float]) -> Weights:
    """The sample-weighted average of several lists of arrays (e.g. children's weight deltas)."""
    if not updates or len(updates) != len(sample_counts):
        raise ValueError("need one sample count per update, and at least one update")
    if sum(sample_counts) <= 0 or min(sample_counts) < 0:
        raise ValueError(f"sample counts must be non-negative with a positive sum, got {list(sample_counts)}")
    first = updates[0]
    for update in updates[1:]:
        validate_arrays(first, update)
    return [np.average(np.stack([u[i] for u in updates]), axis=0, weights=sample_counts).astype(np.float32)
            for i in range(len(first))]


class Application(ABC):
    """A learning task: a model behind weights, training, and evaluation.

    ``dataset`` names the dataset its samples come from (see ``data.streams``).
    Construction validates ``params`` against ``Params`` (a :class:`UserError` if bad) into
    ``self.params`` and seeds ``self.rng``; the same parameters and seed give the same model
    and the same training results. ``Params`` is ``None`` here: a class that declares no
    model takes any parameters, unchecked (by ``validate`` too), as a plain dict in
    ``self.params``, and must check them itself.
    """

    dataset: ClassVar[str]
    Params: ClassVar[Optional[type]] = None

    def __init__(self, params: Optional[Mapping[str, Any]] = None, seed: int = 0) -> None:
        self.params = parse_params(self.Params, params, type(self).__name__)
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def get_weights(self) -> Weights:
        """Copies of the model's arrays, in a fixed order."""

    @abstractmethod
    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace the model's arrays; ValueError if their number or shapes differ."""

    @abstractmethod
    def train(self, x: np.ndarray, y: np.ndarray, epochs: int = 1) -> Dict[str, Any]:
        """Train on ``x``, ``y`` for ``epochs`` passes; return statistics (samples, loss, ...)."""

    @abstractmethod
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> Dict[str, Any]:
        """Figures on ``x``, ``y``, JSON-ready; always ``score`` (higher is better) and ``samples``."""

    def compute_update(self, reference: Sequence[np.ndarray]) -> Weights:
        """What training changed since ``reference`` (current weights minus reference)."""
        current = self.get_weights()
        return [w - r for w, r in zip(current, validate_arrays(current, reference))]

    def apply_update(self, update: Sequence[np.ndarray]) -> None:
        """Add a (merged) update to the current weights."""
        current = self.get_weights()
        self.set_weights([w + u for w, u in zip(current, validate_arrays(current, update))])


class SGDApplication(Application):
    """A model held as a list of float32 arrays in ``self.weights``, trained by minibatch SGD.

    Subclasses set ``self.weights`` in ``__init__`` and implement :meth:`gradient`, the loss
    and its gradient on a minibatch; a step moves every array by the learning rate times its
    gradient, and each epoch visits the samples in a fresh random order. (Adaptive τ also
    reads the gradient and loss at a model without stepping: :mod:`edgetestbed.aggregation.tau`.)
    """

    Params: ClassVar[type] = SGDParams
    weights: Weights

    def get_weights(self) -> Weights:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        self.weights = validate_arrays(self.weights, weights)

    def train(self, x: np.ndarray, y: np.ndarray, epochs: int = 1) -> Dict[str, Any]:
        """Returns ``samples``, ``epochs`` and ``loss``, the mean minibatch loss of the last epoch."""
        x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
        size, losses = self.params.batch_size, []
        for _ in range(epochs):
            order = self.rng.permutation(len(x))
            losses = [self._step(x[order[i:i + size]], y[order[i:i + size]]) for i in range(0, len(x), size)]
        return {"samples": len(x), "epochs": epochs, "loss": float(np.mean(losses)) if losses else None}

    @abstractmethod
    def gradient(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, Weights]:
        """The mean loss on a minibatch at the current weights, and its gradient for every array."""

    def _step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on a minibatch; its mean loss before the step."""
        loss, gradients = self.gradient(x, y)
        rate = np.float32(self.params.learning_rate)
        for weights, gradient in zip(self.weights, gradients):
            weights -= rate * gradient.astype(np.float32, copy=False)
        return loss
