"""tcpdump on a link's capture interface, headers only, to one pcap file, and the counts tcpdump
reports when it stops (what ``net/<link label>.pcap`` and ``meters.json``'s ``captures`` hold:
:mod:`edgetestbed.measure.meters`).
"""

from __future__ import annotations

import select
import signal
import subprocess
from pathlib import Path

from edgetestbed.ledger import Ledger

SNAPLEN = 96                 # Ethernet 14 + IPv4 20 + TCP with every option 60, rounded up
CAPTURE_BUFFER_KIB = 4096
CAPTURE_START_TIMEOUT = 10.0


class Capture:
    """tcpdump on one root-namespace interface, headers only, to one pcap file."""

    def __init__(self, interface: str, path: Path, ledger: Ledger) -> None:
        self.interface = interface
        self.path = path
        self.ledger = ledger
        self._process: subprocess.Popen | None = None
        self.stats: dict = {}

    def start(self) -> None:
        """Start tcpdump; return once it says it is listening (the capture is then live)."""
        argv = ["tcpdump", "-i", self.interface, "-s", str(SNAPLEN), "-B", str(CAPTURE_BUFFER_KIB), "-n",
                "-Z", "root", "-w", str(self.path)]
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.ledger.record_process(self._process.pid, argv)
        line = _read_line(self._process.stderr, CAPTURE_START_TIMEOUT)
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"tcpdump on {self.interface} did not start: {line.strip() or 'no output'}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> dict:
        """Stop tcpdump (it flushes the file and reports its counts); return those counts."""
        if self._process is None:
            return self.stats
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            _, report = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, report = self._process.communicate()
        self._process = None
        self.stats = parse_tcpdump_report(report)
        return self.stats


def _read_line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def parse_tcpdump_report(text: str) -> dict:
    """tcpdump's closing counts: ``N packet(s) captured``, ``received by filter``, ``dropped by kernel``."""
    keys = {"captured": "captured", "received": "received by filter", "dropped": "dropped by kernel"}
    stats = {}
    for line in text.splitlines():
        words = line.split(maxsplit=2)
        if len(words) == 3 and words[0].isdigit() and words[1] in ("packet", "packets"):
            stats.update({key: int(words[0]) for key, phrase in keys.items() if words[2] == phrase})
    return stats
