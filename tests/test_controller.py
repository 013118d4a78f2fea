"""The OpenFlow controller: which framework runs it, and on OVS userspace switches that it connects,
forwards with its own entries, and reports port statistics that match the kernel's counters."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from edgetestbed.controller import FRAMEWORKS
from edgetestbed.controller.jsonlines import read_json_lines
from edgetestbed.controller.service import free_port, listening, managers
from test_meters import metered, nothing_left, transfer
from test_network import CAPS, SPEC, unreachable_pairs

OVS_USER = pytest.mark.skipif(not CAPS.ovs_user.ok, reason=f"ovs-user: {CAPS.ovs_user.detail}")


def test_the_app_runs_on_an_installed_framework_with_its_manager():
    from edgetestbed.controller import compat
    assert compat.FRAMEWORK in FRAMEWORKS
    assert compat.BaseApp.__module__ == f"{compat.FRAMEWORK}.base.app_manager"
    found = managers()
    assert found and found[0][0] == compat.FRAMEWORK and Path(found[0][1]).name == FRAMEWORKS[compat.FRAMEWORK]


def test_listening_reads_the_socket_table_without_connecting():
    port = free_port()
    assert not listening(port)
    with socket.create_server(("127.0.0.1", port)):
        assert listening(port)


def flows(switch: str) -> list[str]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", switch], capture_output=True, text=True,
                         check=True).stdout
    return [line.strip() for line in out.splitlines() if "priority=" in line]


def sysfs_counters(interface: str) -> dict[str, int]:
    return {f"{side}_{kind}": int(Path(f"/sys/class/net/{interface}/statistics/{side}_{kind}").read_text())
            for side in ("rx", "tx") for kind in ("bytes", "packets")}


@pytest.mark.root
@OVS_USER
def test_controller_forwards_and_its_port_stats_match_the_kernel(tmp_path):
    with metered(SPEC.replace("SWITCH", "ovs-user"), tmp_path) as (run, network, meters):
        controller = meters.controller
        assert {e["event"] for e in controller.events()} == {"connected", "ready"}
        hosts = network.net.hosts
        routes = [line for line in flows("s1") if "priority=2" in line]
        assert sorted(line.split("dl_dst=")[1].split()[0] for line in routes) == sorted(h.MAC() for h in hosts)
        assert unreachable_pairs(network.net) == []
        transfer(network, run, "w1", "root", 1_000_000)
        time.sleep(0.5)  # quiet: the counters stand still
        moment = time.time()
        assert controller.await_stats_after(moment, timeout=5)
        kernel = sysfs_counters("s1-eth1")
        reported = [line for line in read_json_lines(controller.portstats_path)
                    if line["name"] == "s1-eth1" and line["time"] > moment][0]
        for name, value in kernel.items():   # stray IPv6 solicitations aside, they are the same numbers
            assert reported[name] == pytest.approx(value, abs=300 if name.endswith("bytes") else 4), name
        miss = next(line for line in flows("s1") if "priority=0" in line)
        assert "n_packets=0," in miss   # every frame had an entry: nothing was dropped or sent up
        targets = subprocess.run(["ovs-vsctl", "get-controller", "s1"], capture_output=True, text=True).stdout
        assert targets.strip() == f"tcp:127.0.0.1:{controller.port}"
    assert not listening(controller.port)
    assert nothing_left(run) == []
    described = json.loads((run.path / "net" / "meters.json").read_text())["controller"]
    assert described["used"] and described["forwarding"] == "proactive" and described["switches"]["s1"] == \
        "0000000000000001"
