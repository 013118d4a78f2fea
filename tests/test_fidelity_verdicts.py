"""Fidelity verdicts in isolation: binomial loss intervals, each check's verdict on
configured and measured numbers, the loss probe's sizing and its setup attempts, and the
JSON and table reports. The measurements on a real network: test_fidelity."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from fractions import Fraction

import pytest

from edgetestbed.measure.fidelity import Configured, LinkResult, Measured, binomial_interval, format_table, verdict
from edgetestbed.measure.linkmeasure import (LOSS_DATAGRAMS, UDP_FRAME_HEADERS, _loss_probe_plan, received_mbit,
                                           setup_attempts)

GOOD = Measured(rtt_ms_median=40.3, rtt_ms_p95=41.0, rtt_ms_stdev=0.2,
                bw_mbit_fwd=9.55, bw_mbit_rev=9.5, loss_pct_fwd=0.0, loss_pct_rev=0.0,
                packets_fwd=102, packets_rev=102)
LINK = Configured(delay_ms=20, bw_mbit=10)


# ---------------------------------------------------------------- binomial_interval

def test_binomial_interval_exact_small_case():
    # Binomial(10, 1/2): P(X = 0) = 1/1024 <= 0.005 < P(X <= 1) = 11/1024.
    assert binomial_interval(10, 0.5) == (0.1, 0.9)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_binomial_interval_degenerate_rates(p):
    assert binomial_interval(500, p) == (p, p)


@pytest.mark.parametrize("n, percent", [(2000, 2), (2500, 0.1), (200, 5), (5000, 30)])
def test_binomial_interval_is_the_tightest_equal_tailed_range(n, percent):
    """Checked against exact integer arithmetic: weight_k = C(n, k) a^k b^(n-k), total d^n."""
    a, d = (Fraction(str(percent)) / 100).as_integer_ratio()
    weights = [200 * math.comb(n, k) * a**k * (d - a) ** (n - k) for k in range(n + 1)]
    total = d**n  # a tail of 0.5 % is a sum of weights (scaled by 200) up to the total
    low, high = binomial_interval(n, a / d)
    k_low, k_high = round(low * n), round(high * n)
    assert sum(weights[:k_low]) <= total < sum(weights[:k_low + 1])
    assert sum(weights[k_high + 1:]) <= total < sum(weights[k_high:])
    assert low <= a / d <= high


def test_binomial_interval_separates_configured_from_other_rates():
    low, high = binomial_interval(2000, 0.02)
    assert low < 0.018 and 0.022 < high
    assert not low <= 0.01 <= high and not low <= 0.04 <= high
    wider_low, wider_high = binomial_interval(2000, 0.02, confidence=0.9999)
    assert wider_low < low and high < wider_high


@pytest.mark.parametrize("n, p, confidence", [(0, 0.1, 0.99), (10, -0.1, 0.99),
                                              (10, 1.5, 0.99), (10, 0.1, 1.0)])
def test_binomial_interval_rejects_nonsense(n, p, confidence):
    with pytest.raises(ValueError):
        binomial_interval(n, p, confidence)


# ---------------------------------------------------------------- verdict

@pytest.mark.parametrize("delay_ms, rtt_ms, ok", [
    (20, 40.3, True), (20, 41.9, True), (20, 42.1, False), (20, 37.9, False),
    (0, 0.08, True), (0, 1.2, False),          # below 20 ms one way the 1 ms floor applies
    (100, 209.0, True), (100, 211.0, False),   # above it, 5 % of 2 x delay
])
def test_verdict_rtt(delay_ms, rtt_ms, ok):
    checks = verdict(Configured(delay_ms=delay_ms), replace(GOOD, rtt_ms_median=rtt_ms))
    assert checks["rtt"] is ok


@pytest.mark.parametrize("fwd, rev, ok", [
    (9.55, 9.5, True), (9.1, 10.9, True), (8.9, 9.5, False), (9.5, 11.1, False),
])
def test_verdict_bw_needs_both_directions(fwd, rev, ok):
    checks = verdict(LINK, replace(GOOD, bw_mbit_fwd=fwd, bw_mbit_rev=rev))
    assert checks["bw"] is ok
    assert all(checks.values()) is ok


@pytest.mark.parametrize("goodput, ok", [(47.82, True), (43.1, True), (42.9, False), (52.7, False)])
def test_verdict_bw_judges_goodput_against_what_a_perfect_link_carries(goodput, ok):
    """A 50 Mbit/s rate counts whole frames: full-sized TCP segments (MSS 1448, 66 bytes of
    headers) carry 47.82 Mbit/s of payload, and the 10 % tolerance is of that."""
    tcp = replace(GOOD, bw_mbit_fwd=goodput, bw_mbit_rev=47.8, payload_share=1448 / 1514)
    assert verdict(Configured(bw_mbit=50), tcp)["bw"] is ok


def test_verdict_bw_passes_without_a_configured_rate():
    assert verdict(Configured(), replace(GOOD, bw_mbit_fwd=18000.0, bw_mbit_rev=1.0))["bw"]


@pytest.mark.parametrize("configured_pct, fwd_pct, rev_pct, packets, ok", [
    (2.0, 1.88, 2.16, 2500, True),
    (2.0, 0.8, 2.0, 2500, False),     # a direction that loses too little
    (2.0, 2.0, 3.5, 2500, False),     # or too much
    (0.0, 0.0, 0.0, 102, True),
    (0.0, 100 / 102, 100 / 102, 102, False),  # one ping lost on a loss-free link
    (2.0, 0.0, 0.0, 0, False),        # nothing counted proves nothing
])
def test_verdict_loss_per_direction(configured_pct, fwd_pct, rev_pct, packets, ok):
    measured = replace(GOOD, loss_pct_fwd=fwd_pct, loss_pct_rev=rev_pct,
                       packets_fwd=packets, packets_rev=packets)
    assert verdict(Configured(loss_pct=configured_pct), measured)["loss"] is ok


@pytest.mark.parametrize("stdev_ms, ok", [(8.2, True), (6.0, True), (4.0, False), (12.0, False)])
def test_verdict_jitter_expects_uniform_rtt_spread(stdev_ms, ok):
    # +-10 ms uniform each way: RTT stdev 10 * sqrt(2/3) = 8.16 ms, tolerance 30 %.
    configured = Configured(delay_ms=50, jitter_ms=10)
    assert verdict(configured, replace(GOOD, rtt_ms_stdev=stdev_ms))["jitter"] is ok


def test_verdict_checks_jitter_only_when_configured():
    assert set(verdict(LINK, GOOD)) == {"rtt", "bw", "loss"}


# ---------------------------------------------------------------- loss probe sizing

@pytest.mark.parametrize("bw_mbit", [0.5, 1, 5, 10, 100])
def test_loss_probe_carries_enough_datagrams_without_filling_the_link(bw_mbit):
    length, payload_bps, seconds = _loss_probe_plan(bw_mbit, seconds=2)
    datagrams_per_s = payload_bps / 8 / length
    wire_bps = datagrams_per_s * 8 * (length + UDP_FRAME_HEADERS)
    assert 32 <= length <= 1400 and seconds >= 2
    assert datagrams_per_s * seconds >= LOSS_DATAGRAMS * 0.999
    assert wire_bps <= 0.8 * bw_mbit * 1e6 * 1.001


# ---------------------------------------------------------------- reporting

@pytest.mark.parametrize("loss_pct, attempts", [(0, 3), (2, 3), (10, 7), (25, 19), (50, 20)])
def test_setup_attempts_keep_a_lost_setup_on_every_attempt_rare(loss_pct, attempts):
    """Each attempt's setup crosses the link 4 times; all attempts failing stays below
    1 in 1000 up to the cap of 20 attempts."""
    assert setup_attempts(loss_pct) == attempts
    one_fails = 1 - (1 - loss_pct / 100) ** 4
    assert one_fails ** attempts <= 1e-3 or attempts == 20
    assert attempts == 3 or one_fails ** (attempts - 1) > 1e-3


def test_to_json_has_the_issue_fields_and_serializes():
    failing = replace(GOOD, bw_mbit_rev=7.0)
    checks = verdict(LINK, failing)
    result = LinkResult(("w1", "ps1"), LINK, failing, checks, ok=all(checks.values()))
    data = json.loads(json.dumps(result.to_json()))
    assert data["link"] == ["w1", "ps1"] and data["ok"] is False
    assert data["configured"] == {"delay_ms": 20, "jitter_ms": 0, "bw_mbit": 10, "loss_pct": 0}
    assert {"rtt_ms_median", "rtt_ms_p95", "bw_mbit", "loss_pct"} <= set(data["measured"])
    assert data["measured"]["bw_mbit"] == 7.0 and data["checks"]["bw"] is False
    assert LinkResult.from_json(data) == result


UNMEASURED = LinkResult.unmeasured(["w2", "ps1"], LINK, "iperf3 -u w2 -> ps1: hung; hung; hung\ndetails")


def test_an_unmeasured_link_fails_and_its_json_says_why():
    data = json.loads(json.dumps(UNMEASURED.to_json()))
    assert data["ok"] is False and data["checks"] == {"measured": False} and data["measured"] is None
    assert data["error"].startswith("iperf3 -u w2 -> ps1: hung")
    assert LinkResult.from_json(data) == UNMEASURED


def test_format_table_shows_each_link_and_what_failed():
    ok = LinkResult(("w1", "ps1"), LINK, GOOD, verdict(LINK, GOOD), ok=True)
    slow = replace(GOOD, bw_mbit_fwd=5.0)
    bad = LinkResult(("ps1", "root"), LINK, slow, verdict(LINK, slow), ok=False)
    lines = format_table([ok, bad, UNMEASURED]).splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("w1-ps1") and lines[1].endswith("ok")
    assert lines[2].startswith("ps1-root") and lines[2].endswith("FAIL: bw")
    assert lines[3].startswith("w2-ps1") and lines[3].endswith("FAIL: measured: iperf3 -u w2 -> ps1: hung; hung; hung")


def _iperf3_result(protocol: str, whole_mbit: float, intervals: list) -> dict:
    """An iperf3 --json result cut down to what ``received_mbit`` reads."""
    return {"start": {"test_start": {"protocol": protocol}},
            "end": {"sum_received": {"bits_per_second": whole_mbit * 1e6}},
            "intervals": [{"sum": {"seconds": seconds, "omitted": omitted, "bits_per_second": mbit * 1e6}}
                          for seconds, omitted, mbit in intervals]}


def test_a_udp_rate_is_the_median_of_whole_intervals_so_one_distorted_one_cannot_move_it():
    # the shape iperf3 3.12 gives with -O 1 -i 0.5 -t 2: an omitted interval, a double one
    # where the omitted second ends, then whole ones; here the last shifted by a late control
    # message
    result = _iperf3_result("UDP", 8.6, [(0.5, True, 9.7), (1.0, False, 4.9), (0.5, False, 9.71),
                                         (0.5, False, 9.72), (0.5, False, 6.1)])
    assert received_mbit(result) == pytest.approx(9.71)
    assert received_mbit(_iperf3_result("UDP", 9.7, [(0.5, True, 9.7)])) == 9.7, "no whole interval: the test's"
    assert received_mbit(_iperf3_result("TCP", 9.5, [(0.5, False, 3.0)])) == 9.5, "TCP: the whole test's"
