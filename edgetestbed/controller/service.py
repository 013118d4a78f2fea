"""Start a run's OpenFlow controller on loopback, attach its switches, and stop it.

The controller is ``ryu-manager`` where Ryu runs, else ``osken-manager`` (the first of
:data:`edgetestbed.controller.FRAMEWORKS` that is installed and comes up: PyPI's Ryu
installs on Python >= 3.10 but its manager dies at start) running
:mod:`edgetestbed.controller.app`, listening on 127.0.0.1 only, on a free port. Its process
is recorded in the run's ledger as soon as it exists. Attaching gives each OVS bridge a
controller row (out-of-band: no hidden in-band flows) and waits until the app has installed
every switch's entries (its ``ready`` events). Files, in the run's ``net/``:
``controller-config.json`` (the app's configuration), ``controller.jsonl`` (its events),
``portstats.jsonl`` (see the app) and ``controller.log`` (the manager's output).

The bridges keep Mininet's ``standalone`` fail mode: before the controller connects and
after it is detached they forward as learning switches, so a network without a controller
(``linkcheck``, the network tests) behaves as before.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import edgetestbed
from edgetestbed import ledger as resources
from edgetestbed.controller import CONFIG_ENV, FRAMEWORKS
from edgetestbed.controller.jsonlines import read_json_lines
from edgetestbed.errors import CapabilityError
from edgetestbed.ledger import Ledger

LISTEN_HOST = "127.0.0.1"
APP_MODULE = "edgetestbed.controller.app"
START_TIMEOUT = 120.0   # the manager imports eventlet and the OpenFlow parsers: seconds on a busy machine;
                        # in the TCG-emulated stock-kernel guest once more than 30 s (the earlier limit)
READY_TIMEOUT = 30.0
POLL = 0.1
TCP_LISTEN = "0A"       # socket state in /proc/net/tcp


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LISTEN_HOST, 0))
        return probe.getsockname()[1]


def managers() -> list[tuple[str, str]]:
    """``(framework, manager script)`` of every installed framework, in order of preference.

    Scripts are looked up next to this interpreter first (a virtualenv's ``bin``), then on PATH.
    """
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = []
    for framework, script in FRAMEWORKS.items():
        path = shutil.which(script, path=search)
        if path and importlib.util.find_spec(framework) is not None:
            found.append((framework, path))
    return found


def listening(port: int) -> bool:
    """Is a TCP socket listening on ``LISTEN_HOST:port`` in this namespace? (Read from /proc,
    so that checking does not open an OpenFlow connection.)"""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(fields[1] == local and fields[3] == TCP_LISTEN for fields in (line.split() for line in lines))


class ControllerService:
    """The controller process of one run and the OVS bridges attached to it.

    ``switches`` maps bridge name to ``{"dpid": 16 hex digits, "routes": {host MAC: port}}``.
    """

    def __init__(self, net_dir: Path, switches: dict[str, dict], ledger: Ledger, interval: float) -> None:
        self.net_dir = Path(net_dir)
        self.switches = switches
        self.ledger = ledger
        self.interval = interval
        self.port: int | None = None
        self.framework: str | None = None
        self.manager: str | None = None
        self._process: subprocess.Popen | None = None
        self._entry: dict | None = None
        self.attached = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def events_path(self) -> Path:
        return self.net_dir / "controller.jsonl"

    @property
    def portstats_path(self) -> Path:
        return self.net_dir / "portstats.jsonl"

    @property
    def log_path(self) -> Path:
        return self.net_dir / "controller.log"

    def describe(self) -> dict:
        """For the run's manifest."""
        return {"used": True, "framework": self.framework, "manager": self.manager, "listen": LISTEN_HOST,
                "port": self.port, "interval": self.interval, "forwarding": "proactive",
                "switches": {name: switch["dpid"] for name, switch in self.switches.items()}}

    # --- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the controller, attach every switch, return once all have their entries and a
        first port-statistics sample (the baseline, before any traffic)."""
        config = self._write_config()
        candidates = managers()
        if not candidates:
            raise CapabilityError("no OpenFlow controller: neither ryu nor os_ken is installed with its "
                                  "manager script (apt install python3-os-ken)")
        failures = []
        for framework, manager in candidates:
            if self._launch(framework, manager, config):
                break
            failures.append(f"{manager}: {self.start_failure}: {self._log_tail()}")
        else:
            raise CapabilityError("the OpenFlow controller did not start: " + "; ".join(failures))
        self._attach()
        self._await_ready()
        if not self.await_stats_after(0.0, READY_TIMEOUT):
            raise CapabilityError(f"the OpenFlow controller got no port statistics (see {self.log_path})")

    def _write_config(self) -> Path:
        self.net_dir.mkdir(parents=True, exist_ok=True)
        path = self.net_dir / "controller-config.json"
        switches = {str(int(s["dpid"], 16)): {"name": name, "routes": s["routes"]} for name, s in self.switches.items()}
        path.write_text(json.dumps({"interval": self.interval, "portstats": str(self.portstats_path),
                                    "events": str(self.events_path), "switches": switches}, indent=1) + "\n")
        return path

    def _launch(self, framework: str, manager: str, config: Path) -> bool:
        """Start ``manager``; True once it listens, False (process removed) if it died first."""
        self.port = free_port()
        package_root = str(Path(edgetestbed.__file__).resolve().parent.parent)
        pythonpath = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, CONFIG_ENV: str(config), "PYTHONPATH": pythonpath}
        argv = [manager, "--ofp-listen-host", LISTEN_HOST, "--ofp-tcp-listen-port", str(self.port), APP_MODULE]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        self._entry = self.ledger.record_process(self._process.pid, argv)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self._process.poll() is None:
            if listening(self.port):
                self.framework, self.manager = framework, manager
                return True
            time.sleep(POLL)
        timed_out = self._process.poll() is None
        self._end_process()
        self.start_failure = (f"not listening after {START_TIMEOUT:g} s, stopped" if timed_out
                              else f"exited with status {self._process.returncode}")
        return False

    def _attach(self) -> None:
        command = ["ovs-vsctl", "--timeout=10"]
        for index, name in enumerate(self.switches):
            command += ["--", f"--id=@c{index}", "create", "Controller", f"target=\"tcp:{LISTEN_HOST}:{self.port}\"",
                        "connection-mode=out-of-band", "--", "set", "Bridge", name, f"controller=@c{index}"]
        subprocess.run(command, capture_output=True, text=True, check=True)
        self.attached = True

    def _await_ready(self) -> None:
        expected = {s["dpid"] for s in self.switches.values()}
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            ready = {e["dpid"] for e in self.events() if e["event"] == "ready"}
            if expected <= ready:
                return
            if self._process.poll() is not None:
                break
            time.sleep(POLL)
        missing = sorted(name for name, s in self.switches.items() if s["dpid"] not in ready)
        raise CapabilityError(f"the OpenFlow controller did not get every switch ready (missing: "
                              f"{', '.join(missing)}; see {self.log_path})")

    # --- while running ------------------------------------------------------------------------

    def events(self) -> list[dict]:
        return read_json_lines(self.events_path)

    def await_stats_after(self, moment: float, timeout: float) -> bool:
        """Wait until every switch has reported port statistics taken after ``moment``."""
        expected = {s["dpid"] for s in self.switches.values()}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = {line["dpid"] for line in read_json_lines(self.portstats_path) if line["time"] > moment}
            if expected <= fresh:
                return True
            time.sleep(POLL)
        return False

    # --- stopping ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Detach the bridges (they go back to standalone learning) and end the controller."""
        if self.attached:
            command = ["ovs-vsctl", "--timeout=10"]
            for name in self.switches:
                command += ["--", "--if-exists", "clear", "Bridge", name, "controller"]
            subprocess.run(command, capture_output=True, check=False)
            self.attached = False
        self._end_process()

    def _end_process(self) -> None:
        if self._entry is not None:
            resources.remove(self._entry)
            self._process.wait()
            self._entry = None

    def _log_tail(self, lines: int = 3) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:]) or "no output"

