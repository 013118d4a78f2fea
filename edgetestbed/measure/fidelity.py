"""Proof of fidelity: judge a measured link against the spec, and report the verdicts.

``edgetestbed linkcheck`` builds the network, calls
:func:`edgetestbed.measure.linkmeasure.measure_link` for every link and prints
:func:`format_table` (or ``LinkResult.to_json``). This module holds what a link was asked
to do (:class:`Configured`), what it did (:class:`Measured`), the verdicts and the result
types: pure, no tools, no network. How each figure is measured is in
``measure/linkmeasure.py``.

Targets (issue 2): median RTT within max(1 ms, 5 %) of twice the configured one-way
delay; throughput within 10 % of the configured rate's goodput in both directions; loss within
a 99 % binomial interval of the configured rate in each direction; a busy loop in a
CPU-limited host gets its configured share within 5 %.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Sequence

RTT_TOLERANCE_MS = 1.0
RTT_TOLERANCE = 0.05
BW_TOLERANCE = 0.10
LOSS_CONFIDENCE = 0.99
# Loose on purpose: 100 RTT samples estimate a stdev to about +-7 % (1 sigma), and the
# shaper's own timer noise adds to it; this catches jitter that is missing or far off.
JITTER_TOLERANCE_MS = 0.5
JITTER_TOLERANCE = 0.30
STEAL_WORTH_SAYING = 0.02   # a failed link's verdict names a steal share from here up


@dataclass(frozen=True)
class Configured:
    """What the spec asks of a link: one-way delay and jitter, rate, loss per direction."""

    delay_ms: float = 0
    jitter_ms: float = 0
    bw_mbit: float | None = None
    loss_pct: float = 0


@dataclass(frozen=True)
class Measured:
    """What the link did. Rates are goodput (payload) in Mbit/s; ``fwd`` is a → b.

    ``packets_*`` are the trials behind ``loss_pct_*`` (UDP datagrams, or ping round
    trips on loss-free links); ``bw_method`` is ``tcp`` or ``udp``; ``payload_share``
    is the payload's share of the bytes the rate limiter counted in the throughput
    tests' packets, so a perfect link's goodput is its rate times it; ``seconds`` is
    how long the measurement took; ``cpu_steal_share`` the share of the machine's CPU
    time a hypervisor took meanwhile (/proc/stat's steal; 0 on bare metal), which makes
    every timer late and so the link slow (see :mod:`edgetestbed.topo.idlepoll`).
    """

    rtt_ms_median: float
    rtt_ms_p95: float
    rtt_ms_stdev: float
    bw_mbit_fwd: float
    bw_mbit_rev: float
    loss_pct_fwd: float
    loss_pct_rev: float
    packets_fwd: int
    packets_rev: int
    rtt_samples: int = 0
    bw_method: str = "tcp"
    seconds: float = 0.0
    payload_share: float = 1.0
    cpu_steal_share: float = 0.0

    @property
    def bw_mbit(self) -> float:
        """The rate the link sustains in both directions (the slower one)."""
        return min(self.bw_mbit_fwd, self.bw_mbit_rev)

    @property
    def loss_pct(self) -> float:
        """The lossier direction."""
        return max(self.loss_pct_fwd, self.loss_pct_rev)


@dataclass(frozen=True)
class LinkResult:
    """One link: configured vs measured, each check's verdict, and the overall one.

    A link that could not be measured (a tool failed; see :meth:`unmeasured`) has no
    ``measured``, says why in ``error``, and fails its one check, ``measured``.
    """

    link: tuple[str, str]
    configured: Configured
    measured: Measured | None
    checks: dict[str, bool]
    ok: bool
    error: str = ""

    @classmethod
    def unmeasured(cls, link: Sequence[str], configured: Configured, error: str) -> LinkResult:
        """The result for a link whose measurement failed with ``error``."""
        return cls(tuple(link), configured, None, {"measured": False}, False, error)

    @property
    def failed_checks(self) -> list[str]:
        """The checks this link missed, in the order they were made."""
        return [check for check, ok in self.checks.items() if not ok]

    def to_json(self) -> dict[str, Any]:
        """The ``linkcheck --json`` object for this link (``measured`` null if unmeasured)."""
        measured = None if self.measured is None else {
            "rtt_ms_median": self.measured.rtt_ms_median,
            "rtt_ms_p95": self.measured.rtt_ms_p95,
            "bw_mbit": self.measured.bw_mbit,
            "loss_pct": self.measured.loss_pct,
            **asdict(self.measured)}
        return {"link": list(self.link), "configured": asdict(self.configured),
                "measured": measured, "checks": dict(self.checks), "ok": self.ok,
                "error": self.error or None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkResult:
        """The result :meth:`to_json` wrote."""
        measured = data["measured"]
        if measured is not None:  # fields added later keep their defaults in older files
            measured = Measured(**{field.name: measured[field.name]
                                   for field in fields(Measured) if field.name in measured})
        return cls(tuple(data["link"]), Configured(**data["configured"]), measured,
                   dict(data["checks"]), data["ok"], data.get("error") or "")


# ---------------------------------------------------------------- verdicts (pure)

def verdict(configured: Configured, measured: Measured) -> dict[str, bool]:
    """Judge a measurement against the issue's targets.

    Keys: ``rtt``, ``bw`` (both directions; passes when no rate is configured),
    ``loss`` (both directions; fails when no packet was counted) and, only when
    jitter is configured, ``jitter``.
    """
    checks = {
        "rtt": _rtt_ok(configured.delay_ms, measured.rtt_ms_median),
        "bw": all(_bw_ok(configured.bw_mbit, bw, measured.payload_share)
                  for bw in (measured.bw_mbit_fwd, measured.bw_mbit_rev)),
        "loss": all(_loss_ok(configured.loss_pct, pct, n) for pct, n in (
            (measured.loss_pct_fwd, measured.packets_fwd),
            (measured.loss_pct_rev, measured.packets_rev))),
    }
    if configured.jitter_ms > 0:
        checks["jitter"] = _jitter_ok(configured.jitter_ms, measured.rtt_ms_stdev)
    return checks


def _rtt_ok(delay_ms: float, rtt_ms: float) -> bool:
    expected = 2 * delay_ms
    return abs(rtt_ms - expected) <= max(RTT_TOLERANCE_MS, RTT_TOLERANCE * expected)


def _bw_ok(configured_mbit: float | None, goodput_mbit: float, payload_share: float) -> bool:
    if configured_mbit is None:
        return True
    perfect = configured_mbit * payload_share
    return abs(goodput_mbit - perfect) <= BW_TOLERANCE * perfect


def _loss_ok(configured_pct: float, measured_pct: float, packets: int) -> bool:
    if packets <= 0:
        return False
    low, high = binomial_interval(packets, configured_pct / 100, LOSS_CONFIDENCE)
    fraction = measured_pct / 100
    return low - 1e-9 <= fraction <= high + 1e-9


def _jitter_ok(jitter_ms: float, stdev_ms: float) -> bool:
    """RTT stdev vs jitter: uniform +-j on each direction adds two independent
    uniforms (variance j^2/3 each), so the RTT stdev is j * sqrt(2/3). Valid while
    jitter <= delay (a shaper clips delays at zero)."""
    expected = jitter_ms * math.sqrt(2 / 3)
    return abs(stdev_ms - expected) <= max(JITTER_TOLERANCE_MS, JITTER_TOLERANCE * expected)


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[float, float]:
    """The range of loss fractions a link dropping each packet with probability ``p``
    shows over ``n`` packets, at the given confidence (equal tails).

    Returns ``(k_lo / n, k_hi / n)`` with P(X < k_lo) <= a/2 and P(X > k_hi) <= a/2,
    X ~ Binomial(n, p), a = 1 - confidence: the exact acceptance region of the
    two-sided binomial test (the dual of Clopper–Pearson). Exact, not Wilson or
    normal: ``p`` is known (configured), so we need the binomial's own quantiles, not a
    confidence interval for an unknown ``p``; and emulated loss rates are small, where
    n·p is a handful and normal approximations (Wilson's included) misplace the tails.
    Exact costs O(n) log-gamma evaluations, nothing at these sizes. Discreteness makes
    it conservative: coverage >= confidence.
    """
    if n <= 0:
        raise ValueError(f"need at least one trial, got n={n}")
    if not 0 <= p <= 1 or not 0 < confidence < 1:
        raise ValueError(f"need 0 <= p <= 1 and 0 < confidence < 1, got p={p}, {confidence}")
    if p in (0, 1):
        return float(p), float(p)
    tail = (1 - confidence) / 2
    pmf = _binomial_pmf(n, p)
    k_low = _first_beyond(pmf, tail)
    k_high = n - _first_beyond(reversed(pmf), tail)
    return k_low / n, k_high / n


def _binomial_pmf(n: int, p: float) -> list[float]:
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return [math.exp(log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                     + k * log_p + (n - k) * log_q) for k in range(n + 1)]


def _first_beyond(probabilities: Iterable[float], tail: float) -> int:
    """Index of the first term at which the running sum exceeds ``tail``."""
    total = 0.0
    for index, probability in enumerate(probabilities):
        total += probability
        if total > tail:
            return index
    raise AssertionError("probabilities sum to less than the tail")


# ---------------------------------------------------------------- report

def format_table(results: Sequence[LinkResult]) -> str:
    """Configured vs measured, one line per link, for the terminal.

    RTT columns: wanted (2 × delay), median, p95, stdev (ms). Rate and loss columns:
    wanted, forward (a → b), reverse (Mbit/s, %); the wanted rate is the goodput a
    perfect link of the configured rate carries. The verdict names failed checks.
    """
    header = (f"{'link':<20} {'rtt want':>8} {'median':>7} {'p95':>7} {'stdev':>6}"
              f"  {'bw want':>7} {'fwd':>7} {'rev':>7}  {'loss want':>9} {'fwd':>6} {'rev':>6}"
              f"  verdict")
    return "\n".join([header, *map(_table_row, results)])


def _table_row(result: LinkResult) -> str:
    c, m = result.configured, result.measured
    verdict_text = "ok" if result.ok else "FAIL: " + ", ".join(result.failed_checks)
    if m is None:  # the error's first line says which tool failed and how
        figures = ["-"] * 7
        verdict_text += f": {result.error.splitlines()[0]}"
    else:
        if not result.ok and m.cpu_steal_share >= STEAL_WORTH_SAYING:
            verdict_text += f" ({m.cpu_steal_share:.0%} of the CPU stolen by the hypervisor)"
        figures = [f"{figure:.2f}" for figure in (m.rtt_ms_median, m.rtt_ms_p95, m.rtt_ms_stdev,
                                                  m.bw_mbit_fwd, m.bw_mbit_rev,
                                                  m.loss_pct_fwd, m.loss_pct_rev)]
    median, p95, stdev, bw_fwd, bw_rev, loss_fwd, loss_rev = figures
    share = 1.0 if m is None else m.payload_share
    bw_want = "-" if c.bw_mbit is None else f"{c.bw_mbit * share:.2f}"
    return (f"{'-'.join(result.link):<20} {2 * c.delay_ms:>8.1f} {median:>7} {p95:>7} {stdev:>6}"
            f"  {bw_want:>7} {bw_fwd:>7} {bw_rev:>7}  {c.loss_pct:>9.2f} {loss_fwd:>6} {loss_rev:>6}"
            f"  {verdict_text}")
