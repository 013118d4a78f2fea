"""The command line: ``python -m edgetestbed SUBCOMMAND``.

Each subcommand is a small function taking the parsed arguments and returning
an exit status. User errors (bad YAML, bad arguments, a machine that cannot
emulate what the spec asks) print one clear message and exit with status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Callable

from edgetestbed.errors import UserError

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXAMPLE = REPO / "examples" / "default.yaml"
DEFAULT_RUNS = Path("runs")


def _load(path: Path):
    from edgetestbed.spec.load import load_spec
    return load_spec(path)


# --- subcommands ------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    """Check a topology file and print its resolved tree."""
    spec = _load(args.topo)
    if args.json:
        print(json.dumps(spec.to_dict(), indent=2))
        return 0
    print(f"{args.topo}: valid — {len(spec.nodes)} nodes ({len(spec.workers)} workers, "
          f"{len(spec.parameter_servers)} parameter servers), {len(spec.sensor_ids)} sensors"
          + (", cloud baseline" if spec.cloud else ""))
    if not spec.network.emulated:
        from edgetestbed.topo.loopback import NOT_EMULATED
        print(f"  network: {spec.network.backend}: {NOT_EMULATED}; the limits and links below apply to nothing")
    for node in spec.nodes:
        link = node.link
        edge = "" if link is None else f"  link to {node.parent}: {_describe_link(link)}"
        print(f"  {'  ' * node.level}{node.id} [{node.role}] cpu {node.cpu:g} mem "
              f"{node.memory // 2**20}M{edge}")
    for event in spec.events:
        print(f"  event at {_event_text(event)}")
    return 0


def _event_text(event) -> str:
    """``10s: crash ps2``, ``window 2: w1's link set delay 200ms``."""
    from edgetestbed.spec.model import FlowEvent, NodeEvent, SensorEvent
    when = f"{event.at_s:g}s" if event.at_s is not None else f"window {event.window}"
    if isinstance(event, SensorEvent):
        return f"{when}: {event.action} sensor {event.sensor}"
    if isinstance(event, FlowEvent):
        return f"{when}: background {event.rate_mbit:g} Mbit/s from {event.sender} to {event.receiver} until {event.stop_s:g}s"
    if isinstance(event, NodeEvent):
        return f"{when}: {event.action} {event.node}" + (" (churn)" if event.source == "churn" else "")
    if event.name in ("partition", "heal"):
        return f"{when}: {event.name} {event.link} (its link {event.state})"
    change = event.state if event.change is None else "set " + ", ".join(
        f"{CHANGE_TEXT[name][0]} {value:g}{CHANGE_TEXT[name][1]}" for name, value in event.change.fields().items())
    return f"{when}: {event.link}'s link {change}"


CHANGE_TEXT = {"delay_ms": ("delay", "ms"), "jitter_ms": ("jitter", "ms"), "loss_pct": ("loss", "%"),
               "bw_mbit": ("bw", " Mbit/s")}


def _describe_link(link) -> str:
    parts = [f"{link.bw_mbit:g} Mbit/s" if link.bw_mbit is not None else "unlimited"]
    parts += [f"{value:g}{unit} {name}" for name, value, unit in
              (("delay", link.delay_ms, "ms"), ("jitter", link.jitter_ms, "ms"),
               ("loss", link.loss_pct, "%")) if value]
    return ", ".join(parts)


def cmd_check(args: argparse.Namespace) -> int:
    """Report what this machine can emulate and which backends 'auto' picks."""
    from edgetestbed.topo.probe import choose_backends, probe
    caps = probe()
    try:
        chosen = choose_backends("auto", "auto", caps)
        verdict, status = f"auto chooses switch={chosen.switch}, shaping={chosen.shaping}, " \
                          f"cgroups={chosen.cgroups}", 0
    except UserError as error:
        verdict, status = f"no run possible: {error}", 1
    if args.json:
        print(json.dumps({**caps.as_dict(), "userspace_shaping": vars(caps.userspace_shaping),
                          "run_possible": status == 0, "verdict": verdict}, indent=2))
        return status
    rows = [(name, feature) for name, feature in caps.as_dict().items() if isinstance(feature, dict)]
    rows.append(("userspace_shaping", vars(caps.userspace_shaping)))
    width = max(len(name) for name, _ in rows)
    for name, feature in rows:
        print(f"{name:<{width}}  {'yes' if feature['ok'] else 'NO ':<3}  {feature['detail']}")
    print(f"{'cores':<{width}}  {caps.cores}")
    print(verdict)
    return status


def cmd_linkcheck(args: argparse.Namespace) -> int:
    """Build the network and measure every link against the spec."""
    from edgetestbed.linkcheck import run_linkcheck
    results = run_linkcheck(_load(args.topo), args.runs_dir, quiet=args.json,
                            cpu=not args.no_cpu, one_per_shape=args.one_per_shape,
                            only=args.link)
    if args.json:
        print(json.dumps(results["links"], indent=2))
    return 0 if results["ok"] else 1


def cmd_run(args: argparse.Namespace) -> int:
    """Train across the emulated hierarchy and leave a complete run directory."""
    from edgetestbed.runner import StatusLine, run_experiment
    spec = _load(args.topo)
    if args.loopback:
        spec = dataclasses.replace(spec, network=dataclasses.replace(spec.network, backend="loopback"))
    status = StatusLine()
    try:
        summary = run_experiment(spec, args.runs_dir, say=_after(status), progress=status)
    finally:
        status.end()
    return 0 if summary["completed"] else 1


def _after(status) -> Callable[[str], None]:
    """Print a message on its own line, below a live status line."""
    def say(text: str) -> None:
        status.end()
        print(text, flush=True)
    return say


def cmd_report(args: argparse.Namespace) -> int:
    """Analyse a run directory again (no root needed): metrics.json, plots, report.html/.md."""
    from edgetestbed.analysis.report import report_main
    return report_main(args.run_dir)


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare runs: a table (Markdown, CSV) and a cost-vs-accuracy plot."""
    from edgetestbed.analysis.compare import compare_main
    return compare_main(args.run_dirs, args.out)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a topology over a grid of overrides: one run directory per point, then a comparison."""
    from edgetestbed.runner import StatusLine
    from edgetestbed.sweep import describe_points, load_sweep
    from edgetestbed.sweeprun import run_sweep
    sweep = load_sweep(args.sweep)
    if args.list:
        print(describe_points(sweep))
        return 0
    status = StatusLine()
    try:
        result = run_sweep(sweep, args.runs_dir, say=_after(status), progress=status)
    finally:
        status.end()
    return 0 if result.complete else 1


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove the leftovers of a crashed run, from its records."""
    from edgetestbed.rundir import clean
    run, removed, leftovers = clean(args.run_dir)
    if run is None:
        print("nothing to clean: no active run is recorded")
        return 0
    print(f"{run.path}: removed {len(removed)} leftover resources")
    for entry in removed:
        print("  removed", _describe_entry(entry))
    for entry in leftovers:
        print("  COULD NOT REMOVE", _describe_entry(entry), file=sys.stderr)
    return 1 if leftovers else 0


def cmd_data(args: argparse.Namespace) -> int:
    """Fetch, verify and cache the datasets (offline afterwards)."""
    from edgetestbed.data.sources import cache_dir, fetch_all
    fetch_all(quiet=args.quiet)
    if not args.quiet:
        print(f"datasets cached in {cache_dir()}")
    return 0


def _describe_entry(entry: dict) -> str:
    fields = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "kind")
    return f"{entry['kind']}: {fields}"


# --- parser ---------------------------------------------------------------------------------

def _topo_argument(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    if optional:
        parser.add_argument("topo", type=Path, nargs="?", default=DEFAULT_EXAMPLE,
                            help=f"topology YAML (default: {DEFAULT_EXAMPLE.relative_to(REPO)})")
    else:
        parser.add_argument("topo", type=Path, help="topology YAML")


def _runs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS,
                        help="where run directories are created (default: ./runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edgetestbed",
        description="Emulate a hierarchy of edge nodes on a real network, train across it, "
                    "and measure what it costs and buys.")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    commands: dict[str, tuple[Callable, str]] = {
        "run": (cmd_run, "build the network (--loopback: none, no root), train across it, measure, "
                         "and write a run directory"),
        "validate": (cmd_validate, "check a topology YAML and print the resolved tree"),
        "check": (cmd_check, "report what this machine can emulate and the backends 'auto' picks"),
        "linkcheck": (cmd_linkcheck, "build the network and measure every link against the spec"),
        "report": (cmd_report, "analyse a run directory: metrics.json, plots, report.html and report.md"),
        "compare": (cmd_compare, "compare runs: a table (Markdown, CSV) and a cost-vs-accuracy plot"),
        "sweep": (cmd_sweep, "run a topology over a grid of overrides, one run each, and compare them"),
        "clean": (cmd_clean, "remove the leftovers of a crashed run, from its records"),
        "data": (cmd_data, "fetch, verify (sha256) and cache the datasets: MNIST, Beijing PM2.5"),
    }
    parsers = {}
    for name, (function, summary) in commands.items():
        parsers[name] = sub.add_parser(name, help=summary, description=summary)
        parsers[name].set_defaults(function=function)
    _topo_argument(parsers["run"], optional=True)
    _runs_argument(parsers["run"])
    parsers["run"].add_argument(
        "--loopback", action="store_true",
        help="run the same processes on 127.0.0.1, without Mininet and without root (as "
             "network: {backend: loopback}): no network emulation, links unshaped, hosts "
             "unlimited, costs are message bytes only; for iterating on a strategy in seconds")
    _topo_argument(parsers["validate"])
    parsers["validate"].add_argument("--json", action="store_true", help="print the resolved spec as JSON")
    parsers["check"].add_argument("--json", action="store_true", help="machine-readable output")
    _topo_argument(parsers["linkcheck"], optional=True)
    _runs_argument(parsers["linkcheck"])
    parsers["linkcheck"].add_argument("--json", action="store_true",
                                      help="print one JSON object per link")
    parsers["linkcheck"].add_argument("--no-cpu", action="store_true",
                                      help="skip measuring the hosts' CPU limits")
    parsers["linkcheck"].add_argument("--one-per-shape", action="store_true",
                                      help="measure one link of each kind and shape (rate, delay, jitter, "
                                           "loss, queue); list the others as not measured")
    parsers["linkcheck"].add_argument("--link", action="append", default=[], metavar="CHILD-PARENT",
                                      help="measure only this link (repeatable), e.g. --link w4-ps2")
    parsers["report"].add_argument("run_dir", type=Path, help="a run directory (runs/<name>-<time>)")
    parsers["compare"].add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run directories")
    parsers["compare"].add_argument("--out", type=Path, default=Path("."),
                                    help="where comparison.md, .csv and cost_vs_accuracy.png go (default: .)")
    parsers["sweep"].add_argument("sweep", type=Path, help="sweep YAML (see docs/experiments.md)")
    _runs_argument(parsers["sweep"])
    parsers["sweep"].add_argument("--list", action="store_true", help="print the points and run nothing")
    parsers["clean"].add_argument("run_dir", type=Path, nargs="?",
                                  help="run directory to clean (default: the active run)")
    parsers["data"].add_argument("--quiet", action="store_true", help="print nothing when cached")
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends us quietly, like any CLI tool
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.function(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt as interrupt:
        print(f"interrupted ({str(interrupt) or 'Ctrl-C'}); what the run started was stopped and removed",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
