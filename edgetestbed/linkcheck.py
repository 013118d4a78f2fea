"""``edgetestbed linkcheck``: the testbed's proof of fidelity.

Builds the spec's network, measures every tree link, sensor link and the WAN
link in both directions (RTT, throughput, loss; see topo/fidelity.py for the
methods and tolerances) and every host's CPU limit, prints configured against
measured with a verdict, and writes ``linkcheck.json`` in the run directory.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edgetestbed.testbed import open_testbed
from edgetestbed.topo.fidelity import Configured, format_table, measure_cpu_share, measure_link
from edgetestbed.topo.network import EmulatedNetwork
from edgetestbed.topo.plan import HostPlan
from edgetestbed.topo.spec import Spec

CPU_TOLERANCE = 0.05       # relative, from the target
CPU_HEADROOM_CORES = 0.3   # left free for the shaper and the measuring process itself


def configured_for(link) -> Configured:
    spec = link.spec
    return Configured(delay_ms=spec.delay_ms, jitter_ms=spec.jitter_ms,
                      bw_mbit=spec.bw_mbit, loss_pct=spec.loss_pct)


def measure_links(network: EmulatedNetwork, say=print) -> list:
    """Every shaped link, one at a time so measurements do not share the shaper or the CPU."""
    results = []
    links = network.plan.shaped_links
    for number, link in enumerate(links, start=1):
        say(f"[{number}/{len(links)}] measuring {link.kind} link {link.label} ...")
        a, b = (network.host(end) for end in link.ends)
        results.append(measure_link(a, b, configured_for(link), link.ends))
    return results


def _batches(hosts: list[HostPlan], cores: float) -> list[list[HostPlan]]:
    """Groups of hosts whose busy loops can all get their share at once."""
    batches: list[list[HostPlan]] = [[]]
    load = 0.0
    for host in hosts:
        want = min(host.cpu, 1.0)  # one busy loop uses one core at most
        if batches[-1] and load + want > cores - CPU_HEADROOM_CORES:
            batches.append([])
            load = 0.0
        batches[-1].append(host)
        load += want
    return batches


def measure_cpu(network: EmulatedNetwork, cores: int, say=print) -> list[dict]:
    """A busy loop in every host gets min(cpu, 1 core) within 5 %."""
    results = []
    hosts = list(network.plan.hosts)
    for batch in _batches(hosts, cores):
        say(f"measuring CPU limits of {', '.join(h.ident for h in batch)} ...")
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            shares = list(pool.map(lambda h: measure_cpu_share(network.host(h.ident)), batch))
        for host, share in zip(batch, shares):
            expected = min(host.cpu, 1.0)
            results.append({"host": host.ident, "configured_cores": host.cpu,
                            "expected_share": expected, "measured_share": round(share, 4),
                            "ok": abs(share - expected) <= CPU_TOLERANCE * expected})
    return results


def format_cpu(results: list[dict]) -> str:
    lines = [f"{'host':<12} {'cpu (cores)':>11} {'measured':>9}  verdict"]
    lines += [f"{r['host']:<12} {r['configured_cores']:>11g} {r['measured_share']:>9.3f}  "
              f"{'ok' if r['ok'] else 'FAIL'}" for r in results]
    return "\n".join(lines)


def run_linkcheck(spec: Spec, runs_dir: Path, quiet: bool = False, cpu: bool = True) -> dict:
    """Build, measure, tear down; return and store ``{"links", "cpu", "ok"}``."""
    say = (lambda *_: None) if quiet else print
    with open_testbed(spec, runs_dir, "linkcheck") as (run, network):
        say(f"network built in {run.path} "
            f"(switch={network.backends.switch}, shaping={network.backends.shaping})")
        links = measure_links(network, say)
        cpu_results = measure_cpu(network, run.manifest["capabilities"]["cores"], say) if cpu else []
    ok = all(r.ok for r in links) and all(r["ok"] for r in cpu_results)
    report = {"links": [r.to_json() for r in links], "cpu": cpu_results, "ok": ok,
              "backends": run.manifest["backends"]}
    run.write_json("linkcheck.json", report)
    say(format_table(links))
    if cpu_results:
        say(format_cpu(cpu_results))
    say(f"{'all links and limits within tolerance' if ok else 'SOME CHECKS FAILED'}; "
        f"details in {run.path / 'linkcheck.json'}")
    return report
