"""Who listens where: ``wiring.json`` in the run directory.

::

    {"endpoints": {"root": {"host": "10.0.0.1", "port": 5555},
                   "sensor0": {"host": "10.1.0.1", "port": 5556, "bind": "127.0.0.1"}, ...}}

keyed by node id, ``sensor<K>`` or ``cloud``. A process binds on its own endpoint's
port, on ``bind`` if given (the loopback backend binds 127.0.0.1 only) else on every interface
(``*``), and connects to the others' ``host:port``. The run writes it from its network's
endpoints (:class:`~edgetestbed.spec.plan.Endpoint`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from edgetestbed.errors import UserError
from edgetestbed.spec.plan import Endpoint


class Wiring:
    """Who listens where, from ``wiring.json``."""

    def __init__(self, endpoints: Mapping[str, Endpoint]) -> None:
        self.endpoints = dict(endpoints)

    @classmethod
    def load(cls, path: Path) -> "Wiring":
        """Read ``wiring.json``; UserError naming the file if it is not as documented above."""
        try:
            data = json.loads(path.read_text())
            return cls({ident: _endpoint(entry) for ident, entry in data["endpoints"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{path}: expected {{\"endpoints\": {{ident: {{\"host\": ..., \"port\": ...}}}}}}: "
                            f"{error}") from None

    def write(self, path: Path) -> None:
        """Write ``wiring.json`` as :meth:`load` reads it."""
        endpoints = {ident: asdict(endpoint) for ident, endpoint in self.endpoints.items()}
        path.write_text(json.dumps({"endpoints": endpoints}, indent=1) + "\n")

    def _get(self, ident: str) -> Endpoint:
        if ident not in self.endpoints:
            raise UserError(f"wiring.json has no endpoint for {ident!r}")
        return self.endpoints[ident]

    def address(self, ident: str) -> str:
        """Where to connect to reach ``ident``."""
        endpoint = self._get(ident)
        return f"tcp://{endpoint.host}:{endpoint.port}"

    def bind_address(self, ident: str) -> str:
        """Where ``ident`` binds."""
        endpoint = self._get(ident)
        return f"tcp://{endpoint.bind}:{endpoint.port}"


def _endpoint(entry: Mapping[str, Any]) -> Endpoint:
    endpoint = Endpoint(entry["host"], entry["port"], entry.get("bind", "*"))
    port = endpoint.port
    if not isinstance(endpoint.host, str) or not isinstance(endpoint.bind, str) or not (
            isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
        raise ValueError(f"bad endpoint {dict(entry)!r}")
    return endpoint
