"""User-space delay, jitter, loss and queue limit for links, where the kernel has no netem.

How a link is shaped (bandwidth is not done here: htb on the interfaces does it):

- The topology builder (:mod:`edgetestbed.topo.shaping.userspace`) puts a small Linux
  bridge in line on every shaped link, so A—B becomes A—[p1] bridge [p2]—B. Packets
  *entering* the bridge through ``p1`` travel A→B, through ``p2`` B→A: each bridge port is
  one :class:`ShapedPort`, one link direction.
- With br_netfilter, bridged IPv4 packets traverse iptables. One chain per run in table
  ``mangle``, jumped to from ``PREROUTING``, holds one rule per port:
  ``-m physdev --physdev-in PORT -j NFQUEUE --queue-num N``. The queue's verdict ends the
  packet's traversal of the chain, so exactly one rule queues a packet per bridge crossing.
  Delay is never added in a sender's OUTPUT path, where TCP Small Queues would throttle
  the sender to a trickle.
- One handler process (:mod:`edgetestbed.topo.shaper_handler`) binds every queue of the
  run, drops or holds each packet, and accepts held packets at their release time.

The rules carry no ``--queue-bypass``: while no handler is bound, shaped links drop
everything (fail-closed) rather than run unshaped. Hence the order: the handler is
started and bound first, the rules go in last and come out first.

Compared with netem:

- a direction is never reordered, even under jitter (see ``shaper_handler.Direction``),
  where netem's tfifo reorders;
- as in netem, delay counts from the packet's arrival (the kernel's receive timestamp),
  not from when the handler read it; and the handler runs at real-time priority (netem
  runs in softirq context), so busy CPUs barely stretch delays;
- the queue limit counts wire-sized packets: hosts send no GSO super-packets here (see
  :class:`~edgetestbed.topo.shaping.userspace.UserspaceShaping`), and NFQUEUE would split
  any; netem counts each super-packet as one;
- only IPv4 is shaped (``bridge-nf-call-iptables``): ARP and IPv6 cross undelayed, where
  netem would delay them too. The testbed's own traffic is IPv4.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import select
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from time import monotonic
from typing import IO, Sequence

from edgetestbed import ledger as resources
from edgetestbed.errors import CapabilityError, LeftoverError
from edgetestbed.ledger import Ledger

log = logging.getLogger(__name__)

NETEM_DEFAULT_LIMIT = 1000
BRIDGE_NF_SYSCTL = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
READY_TIMEOUT = 5.0
CHANGE_TIMEOUT = 2.0
CHANGE_FIELDS = ("delay_ms", "jitter_ms", "loss_pct")  # what a live change may set
TABLE = "mangle"
HOOK = "PREROUTING"
CHAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,27}")  # iptables allows 28 characters
HANDLER_MODULE = "edgetestbed.topo.shaper_handler"


@dataclass(frozen=True)
class ShapedPort:
    """One shaped link direction: the packets entering the bridge through ``port``."""

    port: str  # bridge port in the root namespace whose incoming packets are shaped
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    queue: int | None = None  # max packets held in this direction; None = netem's 1000

    def __post_init__(self) -> None:
        if not 0 < len(self.port) <= 15:
            raise ValueError(f"bad interface name {self.port!r}")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError(f"{self.port}: delay and jitter must be >= 0")
        if not 0 <= self.loss_pct <= 100:
            raise ValueError(f"{self.port}: loss must be within 0..100 %")
        if self.queue is not None and self.queue < 1:
            raise ValueError(f"{self.port}: queue limit must be >= 1 packet")

    @property
    def limit(self) -> int:
        """Packets this direction may hold at once; beyond it, tail drop."""
        return NETEM_DEFAULT_LIMIT if self.queue is None else self.queue

    def changed(self, changes: dict) -> "ShapedPort":
        """This port with a live change applied (``changes``: a subset of CHANGE_FIELDS),
        validated as a new port is; ValueError names what is wrong."""
        unknown = set(changes) - set(CHANGE_FIELDS)
        if unknown:
            raise ValueError(f"{self.port}: cannot change {sorted(unknown)} "
                             f"(only {', '.join(CHANGE_FIELDS)})")
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f"{self.port}: {name} must be a finite number, not {value!r}")
        return replace(self, **{name: float(value) for name, value in changes.items()})


class UserspaceShaper:
    """The shaped ports of one run: their handler process and their iptables chain.

    Every resource is written to the run's ledger as it is created, so teardown and
    ``edgetestbed clean`` can remove it even after a crash.
    """

    def __init__(self, chain: str, ports: Sequence[ShapedPort], work_dir: Path, seed: int,
                 ledger: Ledger) -> None:
        if not CHAIN_NAME.fullmatch(chain):
            raise ValueError(f"bad iptables chain name {chain!r} (at most 28 of [A-Za-z0-9_.-])")
        names = [port.port for port in ports]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"shaped ports must be a non-empty list of distinct ports: {names}")
        self.chain = chain
        self.ports = tuple(ports)
        self.work_dir = Path(work_dir)
        self.seed = seed
        self.ledger = ledger
        self._created: list[dict] = []  # ledger entries of what start() created
        self._process: subprocess.Popen | None = None
        self._counters: dict | None = None
        self._control = threading.Lock()  # one live change at a time on the handler's pipes
        self._current = {port.port: port for port in self.ports}  # as last changed
        self.realtime: bool | None = None  # did the handler get real-time priority? (after start)

    def _path(self, suffix: str) -> Path:
        return self.work_dir / f"shaper-{self.chain}.{suffix}"

    @property
    def log_path(self) -> Path:
        """The handler's stderr."""
        return self._path("log")

    @property
    def counters_path(self) -> Path:
        """Per-port counters the handler writes when it exits."""
        return self._path("counters.json")

    def start(self) -> None:
        """Start the handler, wait until it is bound, then insert the rules."""
        if self._process is not None:
            raise RuntimeError(f"shaper {self.chain} was already started")
        require_bridge_netfilter()
        for port in self.ports:
            require_bridge_port(port.port)
        if resources.exists(self._chain_fields()):
            raise LeftoverError(f"iptables chain {TABLE}/{self.chain} already exists "
                                "(left by a crashed run? see `edgetestbed clean`)")
        try:
            queues = self._start_handler()
            self._insert_rules(queues)
        except BaseException:
            self._remove_created()
            self._close_pipes()
            raise

    def stop(self) -> dict:
        """Remove rules and chain, stop the handler; return its per-port counters.

        Idempotent: later calls return the same counters. Empty if the handler never
        ran or had to be killed before it could write them.
        """
        if self._counters is None:
            with self._control:
                self._remove_created()
                self._close_pipes()
            self._counters = self._read_counters()
        return self._counters

    def change(self, port: str, delay_ms: float | None = None, jitter_ms: float | None = None,
               loss_pct: float | None = None) -> float:
        """Change one shaped port's delay, jitter and/or loss while the handler runs.

        Packets already held keep their release time; packets arriving from then on get
        the new values (never released before the previous packet: see
        ``shaper_handler.Direction``). Returns the unix time the handler applied it.
        Thread-safe. ValueError: unknown port or bad value (the handler's answer included);
        RuntimeError: the handler is not running; TimeoutError: no answer in time.
        """
        changes = {name: value for name, value in
                   zip(CHANGE_FIELDS, (delay_ms, jitter_ms, loss_pct)) if value is not None}
        if port not in self._current:
            raise ValueError(f"{port} is not a port of shaper {self.chain} "
                             f"(its ports: {', '.join(self._current)})")
        if not changes:
            raise ValueError(f"{port}: nothing to change (give delay_ms, jitter_ms or loss_pct)")
        updated = self._current[port].changed(changes)
        with self._control:
            answer = self._ask({"port": port, **changes})
            if "error" in answer:
                raise ValueError(f"shaper {self.chain} refused to change {port}: {answer['error']}")
            if answer.get("changed") != port or not isinstance(answer.get("at"), (int, float)):
                raise RuntimeError(f"shaper {self.chain}: unexpected answer {answer!r}")
            self._current[port] = updated
            return float(answer["at"])

    def current(self, port: str) -> ShapedPort:
        """A port's shaping as configured at start and changed since."""
        return self._current[port]

    def _ask(self, request: dict) -> dict:
        """Send one control line to the handler and return its one-line answer."""
        process = self._process
        if process is None or self._counters is not None or process.poll() is not None \
                or process.stdin is None or process.stdout is None:
            raise RuntimeError(f"shaper {self.chain}: its handler is not running "
                               f"({self.failure() or 'not started, or stopped'})")
        # An answer that came after an earlier request timed out would pass for this one's.
        while select.select([process.stdout], [], [], 0)[0] and os.read(process.stdout.fileno(), 4096):
            pass
        try:
            process.stdin.write((json.dumps(request) + "\n").encode())
            process.stdin.flush()
        except OSError as error:
            raise RuntimeError(f"shaper {self.chain}: cannot reach its handler: {error}") from None
        line = read_line(process.stdout, CHANGE_TIMEOUT)
        if line is None:
            raise TimeoutError(f"shaper {self.chain}: no answer to {request} within "
                               f"{CHANGE_TIMEOUT:g} s; see {self.log_path}")
        try:
            answer = json.loads(line.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"shaper {self.chain}: handler gone or garbled "
                               f"({line!r}; {self._log_tail()})") from None
        if not isinstance(answer, dict):
            raise RuntimeError(f"shaper {self.chain}: unexpected answer {answer!r}")
        return answer

    def _close_pipes(self) -> None:
        if self._process is not None:
            for pipe in (self._process.stdin, self._process.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:  # its reader is gone: what was unsent does not matter
                        pass

    @property
    def pid(self) -> int | None:
        """The handler's process id (None before start)."""
        return self._process.pid if self._process is not None else None

    def failure(self) -> str | None:
        """Why the links are no longer shaped, if the handler exited while the rules are in
        place (NFQUEUE then drops every packet of every shaped link); else None."""
        if self._process is None or self._counters is not None or self._process.poll() is None:
            return None
        return (f"the user-space link shaper exited with status {self._process.returncode} "
                f"({self._log_tail()}): shaped links carry nothing any more")

    def _start_handler(self) -> dict[str, int]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.counters_path.unlink(missing_ok=True)  # only this handler's counters count
        config = self._path("config.json")
        config.write_text(json.dumps({
            "ports": [asdict(port) for port in self.ports],
            "seed": self.seed,
            "avoid_queues": sorted(queues_in_iptables()),
            "counters": str(self.counters_path),
        }, indent=1))
        argv = [sys.executable, "-m", HANDLER_MODULE, str(config)]
        with open(self.log_path, "ab") as stderr:
            # Own session: a terminal's Ctrl-C reaches the run, which stops us in order.
            self._process = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=stderr,
                                             start_new_session=True)
        self._created.append(self.ledger.record_process(self._process.pid, argv))
        return self._await_ready()

    def _await_ready(self) -> dict[str, int]:
        line = read_line(self._process.stdout, READY_TIMEOUT)
        if line is None:
            raise TimeoutError(f"shaper handler not ready within {READY_TIMEOUT:g} s; "
                               f"see {self.log_path}")
        try:
            message = json.loads(line)
        except ValueError:
            message = {"error": f"handler exited: {self._log_tail()}"}
        if "error" in message:
            raise CapabilityError(f"user-space link shaping unavailable: {message['error']}")
        self.realtime = message["realtime"]
        if not self.realtime:
            log.warning("shaper %s: handler runs at normal priority; delays will stretch under "
                        "CPU load (see %s)", self.chain, self.log_path)
        return message["queues"]

    def _insert_rules(self, queues: dict[str, int]) -> None:
        self._created.append(self.ledger.record(**self._chain_fields()))
        iptables("-N", self.chain)
        for port in self.ports:
            iptables("-A", self.chain, "-m", "physdev", "--physdev-in", port.port,
                     "-j", "NFQUEUE", "--queue-num", str(queues[port.port]))
        iptables("-I", HOOK, "-j", self.chain)

    def _chain_fields(self) -> dict:
        return {"kind": "iptables-chain", "table": TABLE, "chain": self.chain, "hooks": [HOOK]}

    def _remove_created(self) -> None:
        """Rules and chain first (newest first), then the handler, which releases what it holds."""
        leftovers = resources.remove_all(self._created)
        if leftovers:
            log.warning("shaper %s could not remove: %s", self.chain, leftovers)
        self._created = []
        if self._process is not None:
            self._process.poll()  # settle its exit status (the ledger's remover reaped it)

    def _read_counters(self) -> dict:
        try:
            return json.loads(self.counters_path.read_text())["ports"]
        except (OSError, ValueError, KeyError):
            if self._process is not None:
                log.warning("shaper %s: no counters from the handler; see %s",
                            self.chain, self.log_path)
            return {}

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"no output (see {self.log_path})"


def require_bridge_netfilter(sysctl: Path = BRIDGE_NF_SYSCTL) -> None:
    """Bridged IPv4 packets must traverse iptables, or no rule ever sees them."""
    try:
        value = sysctl.read_text().strip()
    except FileNotFoundError:
        raise CapabilityError("user-space link shaping needs br_netfilter, which is not loaded "
                              "(modprobe br_netfilter)") from None
    if value != "1":
        raise CapabilityError("user-space link shaping needs net.bridge.bridge-nf-call-iptables"
                              f"=1, it is {value} (sysctl -w net.bridge.bridge-nf-call-iptables=1)")


def require_bridge_port(name: str) -> None:
    """Only packets entering a bridge through a port match ``--physdev-in``."""
    if not Path("/sys/class/net", name, "brport").is_dir():
        raise ValueError(f"{name} is not a Linux bridge port in this namespace")


def queues_in_iptables() -> set[int]:
    """Queue numbers some iptables rule (any table) sends packets to, bound or not."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    numbers = {int(number) for number in re.findall(r"--queue-num (\d+)", rules)}
    for low, high in re.findall(r"--queue-balance (\d+):(\d+)", rules):
        numbers.update(range(int(low), int(high) + 1))
    return numbers


def iptables(*args: str) -> None:
    """One change to our table; a failure means this machine lacks a needed feature."""
    done = subprocess.run(["iptables", "-w", "-t", TABLE, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise CapabilityError(f"iptables {' '.join(args)} failed: {done.stderr.strip()} "
                              "(NFQUEUE and physdev are needed for user-space link shaping)")


def read_line(stream: IO[bytes], timeout: float) -> str | None:
    """One line from a pipe within ``timeout`` seconds: None on timeout, partial at EOF."""
    deadline = monotonic() + timeout
    fd = stream.fileno()
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")
