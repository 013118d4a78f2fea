"""``edgetestbed linkcheck``: the testbed's proof of fidelity.

Builds the spec's network, measures every tree link, sensor link and the WAN link
(or, with ``--one-per-shape``, one link of each kind and shape) in both directions
(RTT, throughput, loss; see measure/linkmeasure.py for the methods, measure/fidelity.py
for the tolerances) and every host's CPU limit, prints configured against measured with a
verdict, and writes ``linkcheck.json`` in the run directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from edgetestbed.errors import UserError
from edgetestbed.measure.cpushare import measure_cpu_share, window_for
from edgetestbed.measure.fidelity import STEAL_WORTH_SAYING, Configured, LinkResult, format_table
from edgetestbed.measure.hosttools import MeasurementError
from edgetestbed.measure.linkmeasure import cpu_steal, measure_link, steal_share
from edgetestbed.spec.model import Spec
from edgetestbed.spec.plan import LinkPlan, plan_network
from edgetestbed.testbed import open_testbed
from edgetestbed.topo.loopback import NOT_EMULATED

if TYPE_CHECKING:  # Mininet's: a spec linkcheck refuses must not need it
    from edgetestbed.topo.network import EmulatedNetwork

CPU_TOLERANCE = 0.05       # relative, from the target
MEASUREMENTS = 3           # at most, of a link that misses a check
QUIET_STEAL = 0.01         # a second with less CPU stolen than this is quiet enough to measure
QUIET_WAIT_S = 30          # at most, before measuring again a link that missed with much stolen


def configured_for(link) -> Configured:
    spec = link.spec
    return Configured(delay_ms=spec.delay_ms, jitter_ms=spec.jitter_ms,
                      bw_mbit=spec.bw_mbit, loss_pct=spec.loss_pct)


def measure_links(network: EmulatedNetwork, links: Sequence[LinkPlan], say=print) -> list[tuple]:
    """``links`` of ``network``, one at a time so measurements do not share the shaper or
    the CPU.

    A link that misses a check, or cannot be measured at all, is measured again, up to
    ``MEASUREMENTS`` times in all (a throughput test can lose a second to the host's CPU
    limit, or to a hypervisor that stole the CPU, after which it waits for a quiet second):
    the verdict is the last attempt's, and the earlier ones are kept beside it. Returns
    (result, earlier) per measured link.
    """
    results = []
    for number, link in enumerate(links, start=1):
        say(f"[{number}/{len(links)}] measuring {link.kind} link {link.label} ...")
        result, earlier = _measure(network, link), []
        while not result.ok and len(earlier) + 1 < MEASUREMENTS:
            say(f"  {link.label} {_shortfall(result)}; measuring it again")
            if result.measured is not None and result.measured.cpu_steal_share >= STEAL_WORTH_SAYING:
                wait_for_the_cpu(say)
            result, earlier = _measure(network, link), [*earlier, result]
        results.append((result, earlier))
    return results


def wait_for_the_cpu(say=print) -> None:
    """Wait, up to ``QUIET_WAIT_S``, for a second in which a hypervisor stole less than
    ``QUIET_STEAL`` of the CPU: a link measured while its timers were late measures the
    machine's neighbours, and steal comes in spells (a benchmark saw 0.0-0.6 % for minutes,
    then 2-13 % for a minute; benchmarks/results/cpu_idle.json)."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while time.monotonic() < deadline:
        before = cpu_steal()
        time.sleep(1)
        stolen = steal_share(before, cpu_steal())
        if stolen < QUIET_STEAL:
            return
        say(f"  waiting for the CPU: the hypervisor took {stolen:.1%} of it in the last second")


def links_to_measure(links: Sequence[LinkPlan], one_per_shape: bool,
                     only: Sequence[str] = ()) -> tuple[list[LinkPlan], dict[str, str]]:
    """The links to measure (``only`` those labels, when given), and each link left out for
    sharing its shape with one measured (``one_per_shape``: the first of each kind,
    configured rate, delay, jitter, loss and queue, and whether events change it; the
    others are built by the same code with the same parameters) mapped to that one's label.
    UserError for a label in ``only`` that is no link of the spec."""
    labels = [link.label for link in links]
    unknown = [label for label in only if label not in labels]
    if unknown:
        raise UserError(f"--link {', '.join(unknown)}: no such link; the spec's links are {', '.join(labels)}")
    measured, same_as, first = [], {}, {}
    for link in (link for link in links if not only or link.label in only):
        shape = (link.kind, link.spec, link.dynamic)
        if one_per_shape and shape in first:
            same_as[link.label] = first[shape]
        else:
            first.setdefault(shape, link.label)
            measured.append(link)
    return measured, same_as


def _measure(network: EmulatedNetwork, link) -> LinkResult:
    """One measurement of ``link``; if a tool fails, an unmeasured (failed) result saying why."""
    (a, b), configured = (network.host(end) for end in link.ends), configured_for(link)
    try:
        return measure_link(a, b, configured, link.ends)
    except MeasurementError as error:  # tools name Mininet's hosts: say which ends they are
        why = f"hosts {a.name} ({link.ends[0]}), {b.name} ({link.ends[1]}): {error}"
        return LinkResult.unmeasured(link.ends, configured, why)


def _shortfall(result: LinkResult) -> str:
    if result.measured is None:
        return f"could not be measured ({result.error.splitlines()[0]})"
    return "missed " + ", ".join(result.failed_checks)


def measure_cpu(network: EmulatedNetwork, say=print) -> list[dict]:
    """A busy loop in every host gets min(cpu, 1 core) within 5 %.

    One host at a time: concurrent loops would also measure whatever else the
    machine is doing, and a busy machine would look like a wrong limit.
    """
    results = []
    for host in network.plan.hosts:
        say(f"measuring the CPU limit of {host.ident} ...")
        expected = min(host.cpu, 1.0)  # one busy loop uses one core at most
        share = measure_cpu_share(network.host(host.ident), window_for(expected))
        results.append({"host": host.ident, "configured_cores": host.cpu,
                        "expected_share": expected, "measured_share": round(share, 4),
                        "ok": abs(share - expected) <= CPU_TOLERANCE * expected})
    return results


def format_cpu(results: list[dict]) -> str:
    lines = [f"{'host':<12} {'cpu (cores)':>11} {'measured':>9}  verdict"]
    lines += [f"{r['host']:<12} {r['configured_cores']:>11g} {r['measured_share']:>9.3f}  "
              f"{'ok' if r['ok'] else 'FAIL'}" for r in results]
    return "\n".join(lines)


def run_linkcheck(spec: Spec, runs_dir: Path, quiet: bool = False, cpu: bool = True,
                  one_per_shape: bool = False, only: Sequence[str] = ()) -> dict:
    """Build, measure, tear down; return and store ``{"links", "same_shape_as", "cpu", "ok"}``
    (``same_shape_as``: each link ``one_per_shape`` left out, mapped to the link measured in its
    stead); ``only``: measure just the links with these labels (``child-parent``). UserError,
    before anything is made, for a network that is not emulated (it has no links to measure)
    or an unknown label."""
    if not spec.network.emulated:
        raise UserError(f"{spec.source}: linkcheck measures an emulated network's links, but this spec's "
                        f"network is {spec.network.backend} ({NOT_EMULATED}); nothing to check. "
                        "Leave out network.backend (or set it to mininet) to check the emulated links.")
    measured, same_shape_as = links_to_measure(plan_network(spec).shaped_links, one_per_shape, only)
    say = (lambda *_: None) if quiet else print
    with open_testbed(spec, runs_dir, "linkcheck") as (run, network):
        say(f"network built in {run.path} "
            f"(switch={network.backends.switch}, shaping={network.backends.shaping})")
        links = measure_links(network, measured, say)
        cpu_results = measure_cpu(network, say) if cpu else []
    ok = all(r.ok for r, _ in links) and all(r["ok"] for r in cpu_results)
    report = {"links": [{**r.to_json(), "earlier_attempts": [e.to_json() for e in earlier]}
                        for r, earlier in links],
              "same_shape_as": same_shape_as,
              "cpu": cpu_results, "ok": ok, "backends": run.manifest["backends"]}
    run.write_json("linkcheck.json", report)
    say(format_table([r for r, _ in links]))
    if same_shape_as:
        say(f"not measured, each the same kind and shape as a link above: {len(same_shape_as)} links")
    if cpu_results:
        say(format_cpu(cpu_results))
    say(f"{'all links and limits within tolerance' if ok else 'SOME CHECKS FAILED'}; "
        f"details in {run.path / 'linkcheck.json'}")
    return report
