"""The adaptive-τ control algorithm (edgetestbed/aggregation/tau.py) on hand-made numbers, and
on a problem small enough to run whole here: least squares split unevenly over five nodes
(non-iid), each running τ full-batch gradient steps between data-weighted averages, a local
step costing 1 and an aggregation 20 of a budget of 1000. Deterministic: no timing, no
sampling."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np
import pytest

from edgetestbed.aggregation.tau import (BETA_FLOOR, Estimates, Report, Smoothed, bound, choose_tau, combine,
                                         divergence_gap, flat, local_estimates, plan_round, Plan)

ETA, PHI, STEP_COST, ROUND_COST, BUDGET, TAU_MAX = 0.01, 0.025, 1.0, 20.0, 1000.0, 100


def test_one_local_step_never_diverges_and_more_steps_diverge_faster():
    assert divergence_gap(1, ETA, 2.0, 3.0) == pytest.approx(0.0, abs=1e-12)
    gaps = [divergence_gap(tau, ETA, 2.0, 3.0) for tau in (2, 5, 10, 50)]
    assert all(0 < a < b for a, b in zip(gaps, gaps[1:]))
    assert divergence_gap(10, ETA, 2.0, 0.0) == 0.0, "identical data: no divergence"


def test_local_estimates_of_a_quadratic_are_its_curvature_and_slope():
    # F(w) = 3/2 w^2: gradient 3w, so beta = 3; rho = |F(2) - F(1)| / 1 = 4.5
    beta, rho = local_estimates(np.array([2.0]), np.array([6.0]), 6.0, np.array([1.0]), np.array([3.0]), 1.5)
    assert (beta, rho) == (pytest.approx(3.0), pytest.approx(4.5))
    assert local_estimates(np.ones(2), np.ones(2), 1.0, np.ones(2), np.zeros(2), 0.0) == (BETA_FLOOR, 0.0), \
        "no step between the models: nothing to estimate"


def test_combine_weighs_by_samples_and_measures_the_gradients_divergence():
    reports = [Report(1.0, 2.0, np.array([1.0, 0.0]), 1), Report(3.0, 4.0, np.array([-1.0, 0.0]), 3)]
    estimates = combine(reports)
    assert estimates.beta == pytest.approx(2.5) and estimates.rho == pytest.approx(3.5)
    # mean gradient (-0.5, 0): distances 1.5 and 0.5, weighted (1.5 + 3 * 0.5) / 4
    assert estimates.delta == pytest.approx(0.75)
    assert combine([reports[0], Report(None, None, np.zeros(2), 3)]) is None, "a child in its first round"
    assert combine([Report(1.0, 1.0, np.zeros(2), 0)]) is None, "no child trained"


def test_smoothed_holds_its_share_and_ignores_nan():
    average = Smoothed(0.5)
    assert average.add(4.0) == 4.0 and average.add(2.0) == 3.0 and average.add(float("nan")) == 3.0
    assert Smoothed(0.0).add(7.0) == 7.0


def test_costly_aggregations_call_for_more_local_steps():
    estimates = Estimates(beta=1.0, rho=1.0, delta=0.5)
    cheap = choose_tau(estimates, ETA, PHI, BUDGET, STEP_COST, 0.1, TAU_MAX)
    costly = choose_tau(estimates, ETA, PHI, BUDGET, STEP_COST, 100.0, TAU_MAX)
    assert 1 <= cheap < costly <= TAU_MAX
    assert choose_tau(Estimates(1.0, 1.0, 0.0), ETA, PHI, BUDGET, STEP_COST, 100.0, 7) == 7, \
        "without divergence, as many local steps as allowed"
    assert bound(5, estimates, ETA, PHI, 0.0, STEP_COST, ROUND_COST) == float("inf")


def test_the_last_round_is_shortened_to_fit_the_budget():
    assert plan_round(10, 0.0, 100.0, 1.0, 20.0) == Plan(10, False)
    assert plan_round(10, 80.0, 100.0, 1.0, 5.0) == Plan(10, False), "15 of the 20 left"
    assert plan_round(10, 90.0, 100.0, 1.0, 5.0) == Plan(5, True)
    assert plan_round(10, 99.0, 100.0, 1.0, 5.0) == Plan(1, True), "at least one step"


# --- the whole loop on least squares, split unevenly ----------------------------------------

Node = Tuple[np.ndarray, np.ndarray]


def problem(spread: float, seed: int = 3) -> List[Node]:
    """Five nodes of 40 to 200 samples whose inputs are centred ``spread`` apart and whose true
    weights differ a little: the larger ``spread``, the less alike their gradients (non-iid)."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=8)
    nodes = []
    for i, size in enumerate((40, 80, 120, 160, 200)):
        a = rng.normal(loc=(i - 2) * spread, size=(size, 8))
        nodes.append((a, a @ (truth + rng.normal(scale=0.5, size=8)) + rng.normal(scale=0.5, size=size)))
    return nodes


def optimum(nodes: List[Node]) -> float:
    """The least loss any model reaches on all the data."""
    a, y = np.vstack([a for a, _ in nodes]), np.concatenate([y for _, y in nodes])
    return float(np.mean((a @ np.linalg.lstsq(a, y, rcond=None)[0] - y) ** 2) / 2)


def loss(node: Node, w: np.ndarray) -> float:
    a, y = node
    return float(np.mean((a @ w - y) ** 2) / 2)


def gradient(node: Node, w: np.ndarray) -> np.ndarray:
    a, y = node
    return a.T @ (a @ w - y) / len(y)


def local_round(nodes: List[Node], w: np.ndarray, tau: int) -> List[np.ndarray]:
    """Every node's model after τ gradient steps from ``w``."""
    models = []
    for node in nodes:
        local = w.copy()
        for _ in range(tau):
            local -= ETA * gradient(node, local)
        models.append(local)
    return models


def train(nodes: List[Node], choose: Callable[[Optional[Estimates], int], int]) -> Tuple[float, List[int]]:
    """Rounds of τ local steps from the global model and a data-weighted average, until the
    budget is spent (τ chosen after each round); the final global loss and every round's τ."""
    sizes = np.array([len(y) for _, y in nodes], dtype=float)
    w, spent, taus = np.zeros(8), 0.0, [1]
    last: List[Optional[tuple]] = [None] * len(nodes)
    smoothed = {name: Smoothed(0.0) for name in ("beta", "rho", "delta")}
    while True:
        reports = []
        for i, node in enumerate(nodes):   # each reports on the global model it starts from
            estimated = local_estimates(*last[i], w, gradient(node, w), loss(node, w)) if last[i] else (None, None)
            reports.append(Report(*estimated, gradient(node, w), len(node[1])))
        models = local_round(nodes, w, taus[-1])
        last = [(m, gradient(node, m), loss(node, m)) for m, node in zip(models, nodes)]
        w = sum(s * m for s, m in zip(sizes, models)) / sizes.sum()
        spent += STEP_COST * taus[-1] + ROUND_COST
        if spent >= BUDGET:
            break
        estimates = combine(reports)
        if estimates is not None:
            estimates = Estimates(*(smoothed[name].add(getattr(estimates, name)) for name in ("beta", "rho", "delta")))
        plan = plan_round(choose(estimates, taus[-1]), spent, BUDGET, STEP_COST, ROUND_COST)
        taus.append(plan.tau)
        if plan.stop:
            models = local_round(nodes, w, plan.tau)
            w = sum(s * m for s, m in zip(sizes, models)) / sizes.sum()
            break
    return sum(len(node[1]) * loss(node, w) for node in nodes) / sizes.sum(), taus


def adaptive(estimates: Optional[Estimates], tau: int) -> int:
    if estimates is None:
        return tau
    return choose_tau(estimates, ETA, PHI, BUDGET, STEP_COST, ROUND_COST, TAU_MAX)


def test_adaptive_tau_does_as_well_as_the_best_fixed_tau_without_trying_them():
    nodes = problem(spread=0.25)
    best = optimum(nodes)
    fixed = {tau: train(nodes, lambda _, __, tau=tau: tau)[0] - best for tau in (1, 2, 5, 10, 20, 50, 100)}
    gap, taus = train(nodes, adaptive)
    gap -= best
    print("optimality gap by fixed tau:", {tau: round(value, 4) for tau, value in fixed.items()},
          "adaptive:", round(gap, 4), "taus:", taus)
    # measured: 1: 3.35, 2: 1.41, 5: 0.17, 10: 0.017, 20: 0.002, 50: 0.003, 100: 0.007; adaptive
    # 0.001 (tau 17, then 28); deterministic (full-batch steps, fixed data)
    assert gap <= 1.5 * min(fixed.values())
    assert taus[0] == 1 and 1 < taus[-2] < TAU_MAX


def test_less_alike_nodes_get_fewer_local_steps():
    settled = {spread: train(problem(spread), adaptive)[1][-2] for spread in (0.25, 0.5, 1.0)}
    print("tau settled at, by spread:", settled)   # measured: 28, 17, 6
    assert settled[0.25] > settled[0.5] > settled[1.0]


def test_flat_joins_a_models_tensors():
    assert flat([np.ones((2, 2), dtype=np.float32), np.zeros(3)]).shape == (7,)
    assert flat([]).shape == (0,)
