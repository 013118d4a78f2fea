"""The shaper handler's control lines: live changes of a port's delay, jitter and loss.

The parent (:meth:`edgetestbed.topo.shaper.UserspaceShaper.change`) writes one JSON line
per change on the handler's stdin, ``{"port": NAME, "delay_ms": x, "jitter_ms": y,
"loss_pct": z}`` (any non-empty subset of the three values), and reads one answer line on
its stdout: ``{"changed": NAME, "at": UNIX_TIME}`` once the change is applied, or
``{"error": "..."}`` when the line is not valid JSON, names no shaped port or carries a
bad value (nothing changed then). EOF on stdin only ends the control channel: the
handler keeps shaping until SIGTERM.
"""

from __future__ import annotations

import json
import os
from time import time
from typing import Protocol

from edgetestbed.topo.shaper import ShapedPort

MAX_LINE = 65536  # a control line is ~80 bytes; longer ones are refused, not buffered forever


class Changeable(Protocol):
    """What a control line changes: one shaped direction of the handler."""

    shaped: ShapedPort

    def change(self, port: ShapedPort) -> None: ...


class Control:
    """Reads control lines from ``fd_in`` as they come, answers each on ``fd_out``."""

    def __init__(self, directions: dict[str, Changeable], fd_in: int = 0, fd_out: int = 1) -> None:
        self.directions = directions
        self.fd_in, self.fd_out = fd_in, fd_out
        self.open = True
        self._buffer = b""

    def on_readable(self) -> None:
        """Read what is there (select said so) and apply every complete line in it."""
        try:
            chunk = os.read(self.fd_in, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            self.open = False  # EOF: no more changes, shaping goes on
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
            lines.append(b"")  # answered with an error below
        for line in lines:
            self.answer(self.apply(line))

    def apply(self, line: bytes) -> dict:
        """Apply one control line; the answer to write back."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError(f"expected a JSON object, got {request!r}")
            name = request.pop("port", None)
            if name not in self.directions:
                raise ValueError(f"no shaped port {name!r}")
            if not request:
                raise ValueError(f"{name}: nothing to change")
            direction = self.directions[name]
            direction.change(direction.shaped.changed(request))
        except (ValueError, TypeError) as error:
            return {"error": str(error)}
        return {"changed": name, "at": time()}

    def answer(self, message: dict) -> None:
        """One answer line; a parent that stopped reading is no reason to stop shaping."""
        try:
            os.write(self.fd_out, (json.dumps(message) + "\n").encode())
        except OSError:
            pass
