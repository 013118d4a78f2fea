"""Proof of fidelity: measure an emulated link (and a CPU limit) and judge it against the spec.

``edgetestbed linkcheck`` builds the network, calls :func:`measure_link` for every link
and prints :func:`format_table` (or ``LinkResult.to_json``). A testbed whose links do not
do what the spec says produces numbers about a network nobody asked for, so every
figure here is measured with real traffic between the two hosts at the ends of a link:

- RTT: ``ping`` from ``a`` to ``b`` (median, p95, stdev; warm-up pings discarded).
- Throughput, each direction: iperf3 TCP goodput when the link is loss-free (what
  applications see); UDP offered above the link rate when it is lossy, because TCP
  cannot fill a lossy link (its window shrinks on every random loss, so it measures
  the congestion controller, not the link). Lost packets take no link time (as in
  netem), so what arrives is the link's rate. Counted at the receiver, which runs the
  iperf3 client, so the test's control messages never queue behind its own data.
  Judged against the goodput a perfect link carries: the configured rate counts whole
  frames (htb counts the Ethernet, IP and TCP or UDP headers), so a perfect 10 Mbit/s
  link carries 10 x 1448/1514 = 9.56 Mbit/s of TCP payload.
- Loss, each direction: UDP datagram loss over at least ``LOSS_DATAGRAMS`` datagrams
  when loss is configured, counted by the two hosts' kernels (sent by one, got by the
  other), so a receiver too slow to read them all cannot add to it; the ping round
  trips when it is not.

Targets (issue 2): median RTT within max(1 ms, 5 %) of twice the configured one-way
delay; throughput within 10 % of the configured rate's goodput in both directions; loss within
a 99 % binomial interval of the configured rate in each direction; a busy loop in a
CPU-limited host gets its configured share within 5 %.

The tools run in the hosts' network namespaces but outside their CPU and memory
limits (see :func:`_popen`): a link's check measures the link, and the CPU limits
have a check of their own.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    from mininet.node import Host

RTT_TOLERANCE_MS = 1.0
RTT_TOLERANCE = 0.05
BW_TOLERANCE = 0.10
LOSS_CONFIDENCE = 0.99
# Loose on purpose: 100 RTT samples estimate a stdev to about +-7 % (1 sigma), and the
# shaper's own timer noise adds to it; this catches jitter that is missing or far off.
JITTER_TOLERANCE_MS = 0.5
JITTER_TOLERANCE = 0.30

PINGS = 100
WARMUP_PINGS = 2
PING_INTERVAL_S = 0.005       # 200/s: 100 samples in about half a second
PING_FRAME_BITS = 98 * 8      # 56-byte ICMP payload + ICMP, IP and Ethernet headers
PING_LOAD = 0.05              # pings use at most this share of the link, so they never queue
# Pings at least 2 x jitter apart: closer ones would, on an emulator that never reorders (the
# user-space shaper), wait behind the one before and bias the median up by ~5 % of the delay.
JITTER_SPACING = 2.0
UDP_HEADERS_BYTES = 42        # Ethernet 14 + IP 20 + UDP 8: what htb counts beyond the payload
TCP_HEADERS_BYTES = 66        # Ethernet 14 + IP 20 + TCP 20 + timestamps 12, beyond the MSS
LOSS_DATAGRAMS = 2500         # per direction; >= 2000 keeps the 99 % interval useful
LOSS_PROBE_LOAD = 0.8         # of the link rate: no queue overflow, so every drop is the link's
LOSS_PROBE_MBIT = 10.0        # probe rate on a lossy link with no rate configured
SATURATION = 1.2              # UDP offered load, after the link's loss, for its rate
# The first second is not the link's rate: TCP's slow start; and with UDP on a lossy link,
# a late (retransmitted) start message makes the receiver count data that waited in its
# socket before its clock started (up to 1.46x the rate in 2 s tests at 20 % loss).
OMIT_S = 1
IPERF_PORTS = range(20000, 60000)
IPERF_ATTEMPTS = 3            # at least; more on lossy links (see setup_attempts)
MAX_IPERF_ATTEMPTS = 20
# Packets whose loss can fail a test's setup, counted high: the UDP stream's connect
# message and its reply, and the control connection's SYN and SYN-ACK.
SETUP_DATAGRAMS = 4
SETUP_FAILURE_ODDS = 1e-3     # of a lossy link failing the setup of every attempt
# iperf3 (3.12) errors that mean a lost setup packet, not a fault of the link: every SYN
# of the control connection lost within --connect-timeout; or, in a UDP test with -R,
# the stream's one-datagram connect reply lost, after which the client reads the
# server's data while waiting for it and gives up (on the heterogeneous example's
# 2 %-loss link, in the stock-kernel guest). Lost setup datagrams without -R make
# iperf3 hang instead, also retried.
SETUP_FAILURES = ("unable to connect to server", "unable to read from stream socket")
BUSY_WARMUP_S = 0.3           # the busy loop settles into CFS throttling first


class MeasurementError(RuntimeError):
    """A measurement tool failed (iperf3 error, no ping reply, timeout)."""


class MeasurementTimeout(MeasurementError):
    """A measurement tool hung and was killed."""


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
    how long the measurement took.
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


# ---------------------------------------------------------------- measuring a link

def measure_link(a: Host, b: Host, configured: Configured, name: tuple[str, str],
                 duration: float = 2.0) -> LinkResult:
    """Measure the link between Mininet hosts ``a`` and ``b`` and judge it.

    The path between them must be the link under test plus unshaped access links.
    ``duration`` is the seconds of traffic per throughput test (rounded up: iperf3
    counts whole seconds). With the default 2 s a loss-free link takes about 7 s (pings,
    then 1 + 2 s of TCP each way) and a lossy one about 11 s (pings, a 2 s UDP loss run
    each way, 1 + 2 s of saturating UDP each way); slow lossy links (< 1.5
    Mbit/s) need longer loss runs to carry ``LOSS_DATAGRAMS``, pings slow down below 3
    Mbit/s, and a lost setup datagram costs a test's time again (see ``_Path.iperf3``).
    """
    started = time.monotonic()
    path = _Path(a, b, seconds=max(1, math.ceil(duration)),
                 slack_s=5 + 10 * 2 * (configured.delay_ms + configured.jitter_ms) / 1000,
                 attempts=setup_attempts(configured.loss_pct),
                 settle_s=0.1 + 2 * (configured.delay_ms + configured.jitter_ms) / 1000)
    rtts, pings = path.ping(configured)
    if configured.loss_pct > 0:
        (lost_fwd, n_fwd), (lost_rev, n_rev) = path.udp_loss(configured.bw_mbit)
    else:  # a lost round trip counts against both directions: an upper bound for each
        (lost_fwd, n_fwd) = (lost_rev, n_rev) = (pings - len(rtts), pings)
    loss_fwd, loss_rev = lost_fwd / max(n_fwd, 1), lost_rev / max(n_rev, 1)
    method, (bw_fwd, bw_rev), payload_share = path.throughput(configured)
    measured = Measured(
        rtt_ms_median=statistics.median(rtts),
        rtt_ms_p95=statistics.quantiles(rtts, n=20, method="inclusive")[18],
        rtt_ms_stdev=statistics.stdev(rtts),
        bw_mbit_fwd=bw_fwd, bw_mbit_rev=bw_rev,
        loss_pct_fwd=100 * loss_fwd, loss_pct_rev=100 * loss_rev,
        packets_fwd=n_fwd, packets_rev=n_rev,
        rtt_samples=len(rtts), bw_method=method, seconds=time.monotonic() - started,
        payload_share=payload_share)
    checks = verdict(configured, measured)
    return LinkResult(link=tuple(name), configured=configured, measured=measured,
                      checks=checks, ok=all(checks.values()))


_PING_REPLY = re.compile(r"icmp_seq=(\d+) .*time=([\d.]+) ms$")  # "$": not (DUP!) replies
_PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


@dataclass(frozen=True)
class _Path:
    """The two ends of a link under test; "forward" is ``a`` to ``b``.

    ``seconds`` of traffic per throughput test; ``slack_s`` on top of a tool's own
    run time before it counts as hung (setup takes a few RTTs); ``settle_s`` for a
    test's last datagrams to arrive before the receiver's counters are read.
    """

    a: Host
    b: Host
    seconds: int
    slack_s: float
    attempts: int = IPERF_ATTEMPTS
    settle_s: float = 0.0

    def ping(self, configured: Configured) -> tuple[list[float], int]:
        """RTT samples in ms, and how many pings they answer (both without warm-up).

        The first pings are not counted (they include ARP and, on OVS, the slow path
        of a new flow). The interval keeps pings under ``PING_LOAD`` of the link so
        they never queue behind each other, and ``JITTER_SPACING`` × jitter apart so
        jitter cannot line them up behind each other either. No ``-w``: with a deadline ping keeps
        sending until it has ``-c`` replies and leaves the last requests unanswered.
        """
        interval = max(PING_INTERVAL_S, JITTER_SPACING * configured.jitter_ms / 1000)
        if configured.bw_mbit:
            interval = max(interval, PING_FRAME_BITS / (PING_LOAD * configured.bw_mbit * 1e6))
        count = PINGS + WARMUP_PINGS
        out = _run(self.a, ["ping", "-n", "-c", str(count), "-i", f"{interval:.3f}",
                            "-W", str(math.ceil(self.slack_s)), self.b.IP()],
                   timeout=count * interval + 2 * self.slack_s)
        replies = {int(m[1]): float(m[2])
                   for m in map(_PING_REPLY.search, out.splitlines()) if m}
        summary = _PING_SUMMARY.search(out)
        rtts = [rtt for seq, rtt in sorted(replies.items()) if seq > WARMUP_PINGS]
        if summary is None or len(rtts) < 2:
            raise MeasurementError(f"ping {self.a.name} -> {self.b.name}: too few replies\n{out}")
        return rtts, int(summary[1]) - WARMUP_PINGS

    def throughput(self, configured: Configured) -> tuple[str, tuple[float, float], float]:
        """How the rate was measured, goodput (a -> b, b -> a) in Mbit/s, and the payload's
        share of the bytes the rate limiter counted (the smaller of the two tests').

        Lossy link with a rate: UDP (TCP cannot fill a lossy link). Otherwise TCP, what
        applications get.
        """
        if configured.loss_pct > 0 and configured.bw_mbit is not None:
            method = "udp"
            tests = [self.udp_rate(configured.bw_mbit, configured.loss_pct, reverse)
                     for reverse in (False, True)]
        else:
            method, tests = "tcp", [self.tcp_rate(reverse) for reverse in (False, True)]
        (fwd, fwd_share), (rev, rev_share) = tests
        return method, (fwd, rev), min(fwd_share, rev_share)

    def tcp_rate(self, reverse: bool) -> tuple[float, float]:
        """TCP goodput in Mbit/s at the receiver, slow start omitted; the payload share."""
        return self.goodput(["-O", str(OMIT_S)], reverse)

    def udp_rate(self, bw_mbit: float, loss_pct: float, reverse: bool) -> tuple[float, float]:
        """UDP goodput in Mbit/s at the receiver, offered so that the link stays full.

        Both shapers drop before the rate limit (netem is a child of htb; the user-space
        shaper drops on the in-line bridge's way in, htb limits its way out), so lost
        packets take no link time: a lossy link carries its full rate of what arrives,
        once the load left after its loss still exceeds that rate.
        """
        offered = SATURATION * bw_mbit * 1e6 / (1 - loss_pct / 100)
        return self.goodput(["-u", "-b", f"{offered:.0f}", "-O", str(OMIT_S)], reverse)

    def goodput(self, args: list[str], reverse: bool) -> tuple[float, float]:
        """Mbit/s received in one iperf3 test ``a`` -> ``b`` (``reverse``: ``b`` -> ``a``),
        and the payload's share of each full-sized packet's bytes as htb counts them.

        The client runs at the receiving end and the server sends (``-R``). iperf3 ends
        a test with a message from client to server on its control connection; sent
        along with the data, it would wait in the queue the test fills, and on a short
        one be tail-dropped and resent a retransmission timeout later, time the
        receiver counts as part of the test (measured: 8.89 instead of 9.56 Mbit/s on a
        10 Mbit/s link with a 20-packet queue, in about one test of three).
        """
        sender, receiver = (self.b, self.a) if reverse else (self.a, self.b)
        result = self.iperf3([*args, "-R"], self.seconds, client=receiver, server=sender)
        return result["end"]["sum_received"]["bits_per_second"] / 1e6, _payload_share(result)

    def udp_loss(self, bw_mbit: float | None) -> tuple[tuple[int, int], tuple[int, int]]:
        """(lost, datagrams) forward and reverse, from one UDP run each way below the
        link rate, so the queue never overflows and every drop is the link's loss.

        Datagrams shrink (to 32 bytes) and the run lengthens until each direction
        carries ``LOSS_DATAGRAMS``.
        """
        length, payload_bps, seconds = _loss_probe_plan(bw_mbit or LOSS_PROBE_MBIT,
                                                        self.seconds)
        args = ["-u", "-l", str(length), "-b", f"{payload_bps:.0f}"]
        return self.datagram_loss(args, seconds, self.a, self.b), \
            self.datagram_loss(args, seconds, self.b, self.a)

    def datagram_loss(self, args: list[str], seconds: int, sender: Host,
                      receiver: Host) -> tuple[int, int]:
        """(lost, sent) of one UDP test ``sender`` -> ``receiver``, counted by the two
        hosts' kernels: datagrams the sender's UDP layer sent, and those the receiver's
        UDP layer got, whether iperf3 read them or its socket dropped them.

        Not iperf3's own sequence gaps: those also count the datagrams the receiving
        host dropped for a full socket buffer, which a CPU-limited receiver does (at
        0.25 cores a bidirectional iperf3 fell behind: 36 % loss read on a 20 % link),
        and the socket's drop counter cannot be subtracted from them, since it also
        counts the datagrams that arrive after the client stops reading (a full
        buffer's worth, about 200: 15.4 % read). The tools are the hosts' only UDP.
        """
        result = self.iperf3([*args, "-R"], seconds, client=receiver, server=sender,
                             settle_s=self.settle_s)
        sent = result["udp"][sender.name]["sent"]
        return sent - result["udp"][receiver.name]["arrived"], sent

    def iperf3(self, args: list[str], seconds: int, client: Host, server: Host,
               settle_s: float = 0.0) -> dict:
        """One iperf3 test of ``seconds`` (plus any omitted), ``client`` against a
        one-off server in ``server``; the client's JSON result, plus ``udp``: by host
        name, the datagrams each end's kernel sent and got during the test and the
        ``settle_s`` after it (time for the last ones to arrive).

        Retried, up to ``attempts`` tests, when its setup fails, which a lossy link does
        now and then without it saying anything about the link (see ``SETUP_FAILURES``).
        Any other error ends the measurement at once.
        """
        argv = ["iperf3", "-c", server.IP(), "--json", "--connect-timeout", "3000",
                "-t", str(seconds), *args]
        timeout = seconds + OMIT_S + self.slack_s
        failures = []
        for _ in range(self.attempts):
            try:
                result = _iperf3_test(client, server, argv, timeout, settle_s)
            except MeasurementTimeout:
                failures.append("hung")
                continue
            error = result.get("error", "" if "end" in result else "no result")
            if not error:
                return result
            failures.append(error)
            if not error.startswith(SETUP_FAILURES):
                break
        raise MeasurementError(f"iperf3 {' '.join(args)} {client.name} -> {server.name}: "
                               + "; ".join(failures))


def _payload_share(result: dict) -> float:
    """Payload bytes per byte htb counts, in a full-sized packet of an iperf3 test."""
    start = result["start"]
    if start["test_start"]["protocol"] == "UDP":
        payload = start["test_start"]["blksize"]
        return payload / (payload + UDP_HEADERS_BYTES)
    return start["tcp_mss_default"] / (start["tcp_mss_default"] + TCP_HEADERS_BYTES)


def _iperf3_test(client: Host, server: Host, argv: list[str], timeout: float,
                 settle_s: float) -> dict:
    """Run the iperf3 client ``argv`` in ``client`` against a one-off server in ``server``."""
    process, port = _iperf3_server(server)
    before = {host.name: _udp_datagrams(host) for host in (client, server)}
    try:
        out = _run(client, [*argv, "-p", str(port)], timeout)
    finally:
        _stop(process)
    time.sleep(settle_s)
    after = {host.name: _udp_datagrams(host) for host in (client, server)}
    return {**json.loads(out or "{}"), "udp": {
        name: {key: after[name][key] - before[name][key] for key in after[name]}
        for name in after}}


def _udp_datagrams(host: Host) -> dict[str, int]:
    """UDP datagrams ``host``'s network namespace has sent and got so far, from its
    /proc/net/snmp. Got: delivered to a socket (``InDatagrams``), dropped for a full
    socket buffer or a bad checksum (``InErrors``, which includes ``RcvbufErrors``),
    or for no socket at all (``NoPorts``): every datagram that crossed the link."""
    snmp = Path(f"/proc/{host.pid}/net/snmp").read_text().splitlines()
    header, values = (line.split() for line in snmp if line.startswith("Udp:"))
    udp = dict(zip(header[1:], map(int, values[1:])))
    return {"sent": udp["OutDatagrams"],
            "arrived": udp["InDatagrams"] + udp["InErrors"] + udp["NoPorts"]}


def setup_attempts(loss_pct: float) -> int:
    """How many iperf3 tests to try on a link with ``loss_pct`` loss each way, so that
    every one's setup fails with odds below ``SETUP_FAILURE_ODDS``: 3 at 2 % (and
    below), 7 at 10 %, 19 at 25 %; capped at ``MAX_IPERF_ATTEMPTS`` (about 26 % loss),
    above which a measurement may fail and linkcheck says so.
    """
    one_setup_fails = 1 - (1 - loss_pct / 100) ** SETUP_DATAGRAMS
    if one_setup_fails <= SETUP_FAILURE_ODDS:
        return IPERF_ATTEMPTS
    needed = math.ceil(math.log(SETUP_FAILURE_ODDS) / math.log(one_setup_fails))
    return min(MAX_IPERF_ATTEMPTS, max(IPERF_ATTEMPTS, needed))


def _loss_probe_plan(bw_mbit: float, seconds: int) -> tuple[int, float, int]:
    """Datagram payload bytes, payload rate (bit/s) and whole seconds for the loss run."""
    wire_bps = LOSS_PROBE_LOAD * bw_mbit * 1e6
    frame = wire_bps * seconds / 8 / LOSS_DATAGRAMS
    length = int(min(1400, max(32, frame - UDP_HEADERS_BYTES)))
    datagrams_per_s = wire_bps / 8 / (length + UDP_HEADERS_BYTES)
    seconds = max(seconds, math.ceil(LOSS_DATAGRAMS / datagrams_per_s))
    return length, datagrams_per_s * length * 8, seconds


def _iperf3_server(host: Host) -> tuple[subprocess.Popen, int]:
    """A one-off iperf3 server listening in ``host`` on a free port (retries on clashes)."""
    for _ in range(5):
        port = random.choice(IPERF_PORTS)
        server = _popen(host, ["iperf3", "-s", "-1", "-p", str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 3
        while server.poll() is None and time.monotonic() < deadline:
            if _listening(server.pid, port):
                return server, port
            time.sleep(0.02)
        _stop(server)
    raise MeasurementError(f"iperf3 server in {host.name} did not start")


def _listening(pid: int, port: int) -> bool:
    """Whether the network namespace of ``pid`` has a TCP socket listening on ``port``."""
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _stop(process: subprocess.Popen, grace: float = 2.0) -> None:
    """Wait briefly for a process we started to exit, then kill it by PID."""
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _popen(host: Host, argv: list[str], **kwargs) -> subprocess.Popen:
    """``argv`` in ``host``'s network namespace, outside the host's CPU and memory limits.

    A tool held to the host's CPU share measures that share, not the link: the kernel's
    work for the tool's packets (segmenting, the bridge, queueing to the user-space
    shaper) is charged to it. The seeds example's 50 Mbit/s, 80 ms link between two
    0.5-core hosts carried 31.1-47.8 Mbit/s of TCP in 2 s tests from tools inside the
    limits (20 tests); 42.9-47.8, median 47.6, from unlimited tools (82 tests on an idle
    machine; a perfect link carries 47.8). ``preexec_fn=None`` overrides the hook by
    which a limited host's ``popen`` joins its cgroup.
    """
    return host.popen(argv, preexec_fn=None, **kwargs)


def _run(host: Host, argv: list[str], timeout: float) -> str:
    """Run ``argv`` in ``host``; its stdout. Killed (by PID) and an error on timeout."""
    process = _popen(host, argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise MeasurementTimeout(f"{argv[0]} in {host.name} timed out after {timeout:.0f} s")


# ---------------------------------------------------------------- CPU share

def measure_cpu_share(host: Host, seconds: float = 2.0) -> float:
    """The fraction of one core a busy loop in ``host`` gets (its CPU time / wall time).

    One process uses at most one core, so compare with min(1, the host's cores); the
    caller judges the result. The loop is started from the host's shell, so it is in
    the shell's cgroup whatever the host class does for ``popen`` (inside a Mininet
    host /sys is remounted for the new network namespace, so a process there cannot
    move itself into a cgroup). Its CPU time is read from the root namespace
    (``/proc/PID/schedstat``, nanoseconds) over ``seconds`` after a warm-up: with CFS
    bandwidth control the loop then gets whole quotas per 100 ms period, so a window
    of several periods measures its share to well under 1 %.
    """
    lifetime = math.ceil(BUSY_WARMUP_S + seconds) + 5  # ends by itself if we cannot kill it
    host.cmd(f"bash -c 'while (( SECONDS < {lifetime} )); do :; done' >/dev/null 2>&1 &")
    pid = host.lastPid
    try:
        time.sleep(BUSY_WARMUP_S)
        wall, cpu = time.monotonic(), _cpu_seconds(pid)
        time.sleep(seconds)
        return (_cpu_seconds(pid) - cpu) / (time.monotonic() - wall)
    finally:
        _kill(pid)


def _cpu_seconds(pid: int) -> float:
    """CPU time of a running process (first field of /proc/PID/schedstat, in ns)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        raise MeasurementError(f"busy loop (PID {pid}) is not running") from None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
        figures = [f"{figure:.2f}" for figure in (m.rtt_ms_median, m.rtt_ms_p95, m.rtt_ms_stdev,
                                                  m.bw_mbit_fwd, m.bw_mbit_rev,
                                                  m.loss_pct_fwd, m.loss_pct_rev)]
    median, p95, stdev, bw_fwd, bw_rev, loss_fwd, loss_rev = figures
    share = 1.0 if m is None else m.payload_share
    bw_want = "-" if c.bw_mbit is None else f"{c.bw_mbit * share:.2f}"
    return (f"{'-'.join(result.link):<20} {2 * c.delay_ms:>8.1f} {median:>7} {p95:>7} {stdev:>6}"
            f"  {bw_want:>7} {bw_fwd:>7} {bw_rev:>7}  {c.loss_pct:>9.2f} {loss_fwd:>6} {loss_rev:>6}"
            f"  {verdict_text}")
