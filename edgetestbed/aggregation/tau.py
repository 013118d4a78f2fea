"""Adaptive τ: how many local steps between aggregations, under a resource budget.

The control algorithm of Wang et al., "Adaptive federated learning in resource constrained
edge computing systems" (IEEE JSAC 2019; the INFOCOM 2018 paper and Tuor et al.'s demo),
as pure arithmetic, so that it can be checked on hand-made numbers and on a problem small
enough to solve in a test. Nodes run τ local gradient steps from the last global model, then
the parent aggregates; after each round it estimates, from what every child reports,

* β, the smoothness of the loss: per child ``‖∇Fᵢ(wᵢ) − ∇Fᵢ(w)‖ / ‖wᵢ − w‖``, where ``wᵢ`` is
  the child's last local model of the round before and ``w`` the global model made from it;
* ρ, its Lipschitz constant: ``|Fᵢ(wᵢ) − Fᵢ(w)| / ‖wᵢ − w‖``, the same way;
* δ, the gradient divergence: ``Σ Dᵢ ‖∇Fᵢ(w) − ∇F(w)‖ / D``, where ``∇F`` is the
  data-weighted mean of the children's gradients at the global model ``w``;

all data-weighted (``Dᵢ``: a child's samples) and smoothed by a moving average. With ``c``,
the resource one local step consumes, and ``b``, what one aggregation consumes, a budget
``R`` allows about ``T = R τ / (c τ + b)`` local steps in all, and the next τ minimises the
papers' bound on the optimality gap,

    G(τ) = (1 + √(1 + 4 T² φ ρ η h(τ) / τ)) / (2 T η φ) + ρ h(τ),
    h(τ) = δ/β ((η β + 1)^τ − 1) − η δ τ     (the divergence of local from global descent),

over τ = 1 .. ``tau_max`` (η: the learning rate; φ: a control parameter, 0.025 in the
reference code for MNIST with a smooth SVM). Where the reference code
(``IBM/adaptive-federated-learning``, ``control_algorithm/adaptive_tau.py``) and the paper
differ, this follows the reference: β is floored at 1e-5 (so h stays finite), h at 0, and
``T`` comes from the whole budget, not what is left. Unlike the reference, the search is not
limited to ten times the current τ: ``tau_max`` bounds it, as in the paper.

Then the budget (:func:`plan_round`): if the round so chosen, ``c τ + b``, fits in what is
left, it runs; else the last round is shortened to what fits, and learning stops after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

BETA_FLOOR = 1e-5   # the reference's: a flat loss would make h(τ) divide by zero
TINY_STEP = 1e-10   # below this distance between models, β and ρ are not estimated


def flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A model's (or gradient's) tensors as one float64 vector."""
    return np.concatenate([np.ravel(a).astype(np.float64) for a in arrays]) if len(arrays) else np.zeros(0)


@dataclass(frozen=True)
class Report:
    """What one child tells its parent after a round: its ``beta`` and ``rho`` (None before
    it has a round before to compare with), its ``gradient`` at the global model the round
    started from, and its ``samples``."""

    beta: Optional[float]
    rho: Optional[float]
    gradient: np.ndarray
    samples: int


def local_estimates(last_local: np.ndarray, last_gradient: np.ndarray, last_loss: float,
                    global_model: np.ndarray, global_gradient: np.ndarray,
                    global_loss: float) -> tuple[float, float]:
    """A child's (β, ρ): from its last local model of the round before (weights, gradient and
    loss on its data) against the global model made from it (the same on the same data)."""
    distance = float(np.linalg.norm(last_local - global_model))
    if distance <= TINY_STEP:
        return BETA_FLOOR, 0.0
    beta = float(np.linalg.norm(last_gradient - global_gradient)) / distance
    rho = abs(last_loss - global_loss) / distance
    return (beta if beta >= BETA_FLOOR and not math.isnan(beta) else BETA_FLOOR,
            0.0 if math.isnan(rho) else rho)


@dataclass(frozen=True)
class Estimates:
    """β, ρ and δ for the whole tree below a parent."""

    beta: float
    rho: float
    delta: float


def combine(reports: Sequence[Report]) -> Optional[Estimates]:
    """The data-weighted estimates from every child's report; None until every child has
    estimated its β and ρ (its second round) or when no child trained."""
    total = sum(r.samples for r in reports)
    if total <= 0 or any(r.beta is None or r.rho is None for r in reports):
        return None
    mean_gradient = sum(r.samples * r.gradient for r in reports) / total
    return Estimates(beta=sum(r.samples * r.beta for r in reports) / total,
                     rho=sum(r.samples * r.rho for r in reports) / total,
                     delta=sum(r.samples * float(np.linalg.norm(r.gradient - mean_gradient)) for r in reports) / total)


class Smoothed:
    """A moving average: ``holding`` of the old value, ``1 − holding`` of the new (0: the
    newest value only, the reference code's setting); a NaN never enters it."""

    def __init__(self, holding: float) -> None:
        self.holding = holding
        self.value: Optional[float] = None

    def add(self, new: float) -> Optional[float]:
        if math.isnan(new):
            return self.value
        self.value = new if self.value is None else self.holding * self.value + (1 - self.holding) * new
        return self.value


def divergence_gap(tau: int, eta: float, beta: float, delta: float) -> float:
    """h(τ): how far τ local steps may drift from τ steps of global gradient descent."""
    return max(0.0, delta / beta * ((eta * beta + 1) ** tau - 1) - eta * delta * tau)


def bound(tau: int, estimates: Estimates, eta: float, phi: float, budget: float, step_cost: float,
          round_cost: float) -> float:
    """G(τ), the bound on the optimality gap after spending ``budget`` on rounds of τ steps
    that cost ``step_cost`` each and ``round_cost`` an aggregation."""
    steps = budget * tau / (step_cost * tau + round_cost)
    if steps <= 0:
        return math.inf
    h = divergence_gap(tau, eta, estimates.beta, estimates.delta)
    root = math.sqrt(max(0.0, 1 + 4 * steps ** 2 * phi * estimates.rho * eta * h / tau))
    return (1 + root) / (2 * steps * eta * phi) + estimates.rho * h


def choose_tau(estimates: Estimates, eta: float, phi: float, budget: float, step_cost: float,
               round_cost: float, tau_max: int) -> int:
    """The τ in 1 .. ``tau_max`` with the smallest bound (the smallest of equals)."""
    values = [bound(tau, estimates, eta, phi, budget, step_cost, round_cost) for tau in range(1, tau_max + 1)]
    return 1 + int(np.argmin(values))


@dataclass(frozen=True)
class Plan:
    """The next round: ``tau`` steps, and whether learning ``stop`` s after it."""

    tau: int
    stop: bool


def plan_round(tau: int, spent: float, budget: float, step_cost: float, round_cost: float) -> Plan:
    """Fit the next round of ``tau`` steps into what is left of ``budget`` (``spent`` so far):
    as chosen if it fits, else the steps that fit (at least 1) as the last round."""
    left = budget - spent
    if step_cost * tau + round_cost < left:
        return Plan(tau, False)
    fitting = int((left - round_cost) / step_cost) if step_cost > 0 else tau
    return Plan(max(1, min(tau, fitting)), True)
