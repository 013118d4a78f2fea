"""What measuring the network costs: analysis time per GB, and training and TCP throughput with and without capture.

(a) ``analysis``: seconds :func:`edgetestbed.analysis.pcap.read_link` takes per GB of traffic
    and per GB of pcap, on a synthetic capture of a tree link (a ZeroMQ model exchange:
    64 kB models in MSS segments with their acknowledgements, requests, replies), written
    as tcpdump writes it (snaplen 96) and sized to ``--gigabytes`` of IP traffic; and
    :func:`~edgetestbed.analysis.netcost.network_cost` on the training run's directory.
(b) ``throughput``, without and with the meters (captures on every link, counters, and the
    controller with OVS switches), alternating, ``--repeats`` times each; medians compared:
    - training: ``examples/default.yaml``; samples per second of training time over every
      worker window (workers' STATISTIC ``samples`` / ``train_time``), run time, and the
      meters' own CPU seconds. Target: < 5 % slowdown.
    - TCP: iperf3 for ``--seconds`` over a tree link shaped by delay only (no bandwidth
      limit), where throughput is bound by CPU: the worst case for capture.

Prints figures and writes ``benchmarks/results/capture_cost.json``. Run as root:
``.venv/bin/python benchmarks/capture_cost.py [--part analysis|throughput] [--gigabytes 1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from edgetestbed.analysis.netcost import network_cost  # noqa: E402
from edgetestbed.analysis.pcap import read_link  # noqa: E402
from edgetestbed.measure.capture import SNAPLEN  # noqa: E402
from edgetestbed.measure.meters import NetworkMeters  # noqa: E402
from edgetestbed.runner import Experiment  # noqa: E402
from edgetestbed.spec.load import load_spec, load_spec_text  # noqa: E402
from edgetestbed.spec.model import Spec  # noqa: E402
from edgetestbed.testbed import open_testbed  # noqa: E402
from test_meters import while_busy  # noqa: E402

RESULTS = HERE / "results" / "capture_cost.json"
DEFAULT = HERE.parent / "examples" / "default.yaml"
CHILD, PARENT = ("00:00:00:00:00:02", "10.0.0.2", 40000), ("00:00:00:00:00:01", "10.0.0.1", 5555)
MSS, MODEL = 1448, 65_000
BULK_SPEC = """
name: capture-bulk
seed: 1
application: {name: mnist_mlp}
data: {dataset: mnist, partition: iid}
defaults: {cpu: 1.0, memory: 256M, link: {delay: 1ms}}
sensors: {rate: 1/s, cpu: 0.05, memory: 64M, link: {delay: 1ms}}
nodes:
  - id: root
  - {id: w1, parent: root, sensors: [0]}
network: {switch: auto, shaping: userspace}
"""


# --- (a) analysis ---------------------------------------------------------------------------------

def frame(up: bool, payload: int) -> bytes:
    """One Ethernet/IPv4/TCP frame of the model exchange, child → parent if ``up``."""
    (smac, sip, sport), (dmac, dip, dport) = (CHILD, PARENT) if up else (PARENT, CHILD)
    layer = Ether(src=smac, dst=dmac) / IP(src=sip, dst=dip) / TCP(
        sport=sport, dport=dport, flags="PA" if payload else "A", options=[("Timestamp", (1, 1))])
    return bytes(layer / Raw(bytes(payload)) if payload else layer)


def exchange_template() -> list[bytes]:
    """A pull (request, model, acknowledgements) and a push (update, acknowledgements, reply)."""
    frames = [frame(True, 150)]
    for up in (False, True):                           # the MODEL down, then the PUSH up
        for index, offset in enumerate(range(0, MODEL, MSS)):
            frames.append(frame(up, min(MSS, MODEL - offset)))
            if index % 2:
                frames.append(frame(not up, 0))
    return frames + [frame(False, 90)]


def write_capture(path: Path, gigabytes: float) -> int:
    """A pcap as tcpdump writes it (snaplen ``SNAPLEN``) of at least ``gigabytes`` of IP traffic."""
    template = exchange_template()
    traffic_per_round = sum(len(f) - 14 for f in template)
    rounds = int(gigabytes * 1e9 / traffic_per_round) + 1
    records = b"".join(struct.pack("<IIII", 0, 0, min(len(f), SNAPLEN), len(f)) + f[:SNAPLEN] for f in template)
    with open(path, "wb") as stream:
        stream.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        for _ in range(rounds):
            stream.write(records)
    return rounds * traffic_per_round


def analysis(gigabytes: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="etb-capture-bench-") as tmp:
        path = Path(tmp) / "link.pcap"
        traffic = write_capture(path, gigabytes)
        began = time.perf_counter()
        result = read_link(path, [CHILD[0]], [PARENT[0]], {(PARENT[1], PARENT[2]): "node"}, MODEL // 2)
        seconds = time.perf_counter() - began
        packets = sum(t.packets for t in result.directions.values())
        size = path.stat().st_size
    return {"traffic_bytes": traffic, "pcap_bytes": size, "packets": packets, "seconds": round(seconds, 2),
            "seconds_per_gb_traffic": round(seconds / (traffic / 1e9), 2),
            "seconds_per_gb_pcap": round(seconds / (size / 1e9), 2),
            "packets_per_second": round(packets / seconds)}


# --- (b) throughput ------------------------------------------------------------------------------------

@contextlib.contextmanager
def network(spec: Spec, runs_dir: Path, measured: bool):
    """The spec's network (waiting while another run holds the machine), metered if ``measured``;
    yields ``(run, network, meters or None)``."""
    with contextlib.ExitStack() as stack:
        run, built = while_busy(lambda: stack.enter_context(open_testbed(spec, runs_dir, "bench")))
        meters = None
        if measured:
            meters = NetworkMeters(built, run.path, run.ledger)
            meters.start()
            stack.callback(meters.stop)
        yield run, built, meters


def training(runs_dir: Path, measured: bool) -> dict:
    """One run of the default example; training samples per second of training time."""
    spec = load_spec(DEFAULT)
    began = time.time()
    with network(spec, runs_dir, measured) as (run, built, meters):
        with Experiment(spec, run, built, lambda line: None) as experiment:
            completed = experiment.wait(experiment.start_at + spec.timeout)
    windows = [json.loads(line)["payload"] for worker in spec.workers
               for line in (run.path / "logs" / f"{worker.id}.jsonl").read_text().splitlines()
               if '"STATISTIC"' in line]
    rates = [w["samples"] / w["train_time"] for w in windows if w.get("train_time")]
    result = {"measured": measured, "completed": completed, "run_dir": str(run.path),
              "run_seconds": round(time.time() - began, 1), "worker_windows": len(rates),
              "samples_per_train_second": round(statistics.mean(rates), 1),
              "median_samples_per_train_second": round(statistics.median(rates), 1)}
    if measured:
        result["meters_cpu_seconds"] = json.loads((run.path / "net" / "meters.json").read_text())["cpu_seconds"]
    return result


def bulk(runs_dir: Path, measured: bool, seconds: int) -> dict:
    """iperf3 w1 → root over a tree link with delay only: TCP bound by CPU."""
    spec = load_spec_text(BULK_SPEC, "capture-bulk.yaml")
    with network(spec, runs_dir, measured) as (run, built, meters):
        root, w1 = built.host("root"), built.host("w1")
        server = root.popen(["iperf3", "-s", "-1"])
        run.ledger.record_process(server.pid, "iperf3 -s -1")
        time.sleep(0.5)
        report = json.loads(w1.cmd(f"iperf3 -c {root.IP()} -t {seconds} --json"))
        server.wait(timeout=30)
    return {"measured": measured, "switch": built.backends.switch,
            "tcp_mbit_s": round(report["end"]["sum_received"]["bits_per_second"] / 1e6, 1)}


def slowdown(runs: list[dict], figure: str) -> float:
    """Per cent less ``figure`` with the meters than without (medians over the repeats)."""
    def median(measured: bool) -> float:
        return statistics.median(r[figure] for r in runs if r["measured"] == measured)
    return round(100 * (1 - median(True) / median(False)), 1)


def throughput(runs_dir: Path, seconds: int, repeats: int) -> dict:
    """Without and with the meters, alternating, ``repeats`` times each."""
    modes = [measured for _ in range(repeats) for measured in (False, True)]
    runs = [training(runs_dir, measured) for measured in modes]
    tcp = [bulk(runs_dir, measured, seconds) for measured in modes]
    measured_run = Path(next(r["run_dir"] for r in runs if r["measured"]))
    began = time.perf_counter()
    cost = network_cost(measured_run)
    analysed = time.perf_counter() - began
    return {"training": runs, "training_slowdown_pct": slowdown(runs, "samples_per_train_second"),
            "tcp": tcp, "tcp_slowdown_pct": slowdown(tcp, "tcp_mbit_s"),
            "default_example": {"run_dir": str(measured_run), "analysis_seconds": round(analysed, 2),
                                "traffic_bytes": cost["total_bytes"], "max_disagreement": cost["max_disagreement"],
                                "flagged": cost["flagged"],
                                "links": {item["link"]: {"bytes": item["bytes"],
                                                         "disagreement": item["total"]["disagreement"],
                                                         "cost_ratio": item.get("cost_model", {}).get("ratio")}
                                          for item in cost["items"]}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("analysis", "throughput", "all"), default="all")
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=Path(tempfile.gettempdir()) / "etb-capture-bench")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.part in ("analysis", "all"):
        results["analysis"] = analysis(args.gigabytes)
        print(json.dumps(results["analysis"], indent=1))
    if args.part in ("throughput", "all"):
        results["throughput"] = throughput(args.runs_dir, args.seconds, args.repeats)
        print(json.dumps(results["throughput"], indent=1))
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
