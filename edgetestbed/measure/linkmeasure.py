"""Measure an emulated link with real traffic between the two hosts at its ends.

A testbed whose links do not do what the spec says produces numbers about a network
nobody asked for, so every figure :func:`measure_link` returns (judged by
:func:`edgetestbed.measure.fidelity.verdict`) is measured with real traffic between the two
hosts at the ends of a link:

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

The tools run in the hosts' network namespaces but outside their CPU and memory
limits (see ``measure/hosttools.py``).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgetestbed.measure.fidelity import Configured, LinkResult, Measured, verdict
from edgetestbed.measure.headers import TCP_FRAME_HEADERS, UDP_FRAME_HEADERS
from edgetestbed.measure.hosttools import MeasurementError, MeasurementTimeout, iperf3_test, run

if TYPE_CHECKING:
    from mininet.node import Host

PINGS = 100
WARMUP_PINGS = 2
PING_INTERVAL_S = 0.005       # 200/s: 100 samples in about half a second
PING_FRAME_BITS = 98 * 8      # 56-byte ICMP payload + ICMP, IP and Ethernet headers
PING_LOAD = 0.05              # pings use at most this share of the link, so they never queue
# Pings at least 2 x jitter apart: closer ones would, on an emulator that never reorders (the
# user-space shaper), wait behind the one before and bias the median up by ~5 % of the delay.
JITTER_SPACING = 2.0
LOSS_DATAGRAMS = 2500         # per direction; >= 2000 keeps the 99 % interval useful
LOSS_PROBE_LOAD = 0.8         # of the link rate: no queue overflow, so every drop is the link's
LOSS_PROBE_MBIT = 10.0        # probe rate on a lossy link with no rate configured
SATURATION = 1.2              # UDP offered load, after the link's loss, for its rate
# The first second is not the link's rate: TCP's slow start; and with UDP on a lossy link,
# a late (retransmitted) start message makes the receiver count data that waited in its
# socket before its clock started (up to 1.46x the rate in 2 s tests at 20 % loss).
OMIT_S = 1
# A UDP test's rate is the median of its intervals' (iperf3 -i): on a lossy link iperf3's own
# control connection crosses the loss too, and a retransmitted control message shifts the
# test's clock, which moves a whole-test rate but only one interval of the median (dry run of
# 2026-12-07: one direction of a 20 %-loss 10 Mbit/s link read outside 10 % of its rate).
# Measured on the test's 10 Mbit/s link, 40 directions each at 10 and 20 % loss, both from the
# same tests: whole-test rates 0.988-1.000 of a perfect link's, interval medians 0.996-1.001.
UDP_INTERVAL_S = 0.5
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
    started, steal_before = time.monotonic(), cpu_steal()
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
        payload_share=payload_share, cpu_steal_share=steal_share(steal_before, cpu_steal()))
    checks = verdict(configured, measured)
    return LinkResult(link=tuple(name), configured=configured, measured=measured,
                      checks=checks, ok=all(checks.values()))


def cpu_steal() -> tuple[int, int]:
    """The machine's (steal, total) CPU time so far, in clock ticks, from /proc/stat."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time stolen between two :func:`cpu_steal` readings."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


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
        out = run(self.a, ["ping", "-n", "-c", str(count), "-i", f"{interval:.3f}",
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
        return self.goodput(["-u", "-b", f"{offered:.0f}", "-O", str(OMIT_S), "-i", str(UDP_INTERVAL_S)], reverse)

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
        return received_mbit(result), _payload_share(result)

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
                result = iperf3_test(client, server, argv, timeout, settle_s)
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


def received_mbit(result: dict) -> float:
    """The rate an iperf3 test received, Mbit/s: a UDP test's is the median of its whole
    intervals (``UDP_INTERVAL_S``; iperf3 3.12 also reports a double-length one where its
    omitted seconds end, left out), a TCP test's (and a UDP test's without intervals) the
    whole test's."""
    whole = result["end"]["sum_received"]["bits_per_second"] / 1e6
    if result["start"]["test_start"]["protocol"] != "UDP":
        return whole
    rates = [interval["sum"]["bits_per_second"] / 1e6 for interval in result.get("intervals", [])
             if not interval["sum"].get("omitted")
             and abs(interval["sum"]["seconds"] - UDP_INTERVAL_S) <= 0.1 * UDP_INTERVAL_S]
    return statistics.median(rates) if rates else whole


def _payload_share(result: dict) -> float:
    """Payload bytes per byte htb counts, in a full-sized packet of an iperf3 test."""
    start = result["start"]
    if start["test_start"]["protocol"] == "UDP":
        payload = start["test_start"]["blksize"]
        return payload / (payload + UDP_FRAME_HEADERS)
    return start["tcp_mss_default"] / (start["tcp_mss_default"] + TCP_FRAME_HEADERS)


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
    length = int(min(1400, max(32, frame - UDP_FRAME_HEADERS)))
    datagrams_per_s = wire_bps / 8 / (length + UDP_FRAME_HEADERS)
    seconds = max(seconds, math.ceil(LOSS_DATAGRAMS / datagrams_per_s))
    return length, datagrams_per_s * length * 8, seconds
