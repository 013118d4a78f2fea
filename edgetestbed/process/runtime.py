"""What every testbed process shares: its run directory, spec, wiring, clock, sockets and log.

A process is started as ``python -m edgetestbed.nodes --run-dir R --node ID`` (or
``python -m edgetestbed.sensors --run-dir R --sensor K``). It reads ``R/spec.yaml`` and
``R/wiring.json`` (see :mod:`edgetestbed.process.wiring`) and logs to ``R/logs/ID.jsonl``.
Window 0's start ``T``, from the start barrier (:mod:`edgetestbed.process.start`), aligns
every process: window ``j`` covers ``[T + j·interval, T + (j+1)·interval)``.

:func:`run_process` builds a role (data, sockets), logs ``READY``, waits for ``T``, logs
``START`` and runs the role's main loop, then logs ``DONE`` with the role's summary, or
``STOP`` on SIGTERM/SIGINT (exit 0), or ``ERROR`` (exit 2 for a user's mistake, 1 for a
crash); sockets are closed with linger 0 and the log is closed on every path. Roles wait only through :meth:`Runtime.poll` and :meth:`Runtime.sleep_until`,
where a stop request takes effect (see :mod:`edgetestbed.process.stopping`).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Protocol

import numpy as np
import zmq

from edgetestbed.applications import Application, create_application
from edgetestbed.codecs.usage import USAGE as CODEC_USAGE
from edgetestbed.data.schedule import window_grace
from edgetestbed.errors import UserError
from edgetestbed.process import protocol
from edgetestbed.process.eventlog import (CONNECTION, DONE, ERROR, MALFORMED, READY, START, STATISTIC, STOP,
                                       EventLog, Stopwatch, usage)
from edgetestbed.process.sampling import stream_definition
from edgetestbed.process.start import POLL_S, read_start
from edgetestbed.process.stopping import Stopped, StopRequest
from edgetestbed.process.wiring import Wiring
from edgetestbed.spec.load import load_spec
from edgetestbed.spec.model import NodeSpec, Spec
from edgetestbed.spec.plan import CLOUD_ID, sensor_id

TRAINING_SEED_WORD = 7  # keeps nodes' training-order seeds apart from the streams' seeds


class Sockets:
    """The process's ZeroMQ sockets; all closed with linger 0 at the end."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self._open: list = []

    def open(self, kind: int, max_frame_bytes: Optional[int] = None, **options: int) -> zmq.Socket:
        """A new socket with linger 0, ``MAXMSGSIZE`` if given, and ``options`` (e.g. ``rcvhwm=0``)."""
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if max_frame_bytes is not None:
            sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name.upper()), value)
        self._open.append(sock)
        return sock

    def close(self, sock: zmq.Socket) -> None:
        sock.close(linger=0)
        self._open.remove(sock)

    def close_all(self) -> None:
        for sock in list(self._open):
            self.close(sock)
        self.context.term()


class Runtime:
    """One process's view of the run."""

    def __init__(self, run_dir: Path, ident: str, stop: StopRequest) -> None:
        self.run_dir = Path(run_dir)
        self.ident = ident
        self.start_at: float = float("nan")  # window 0's start, known after wait_for_start
        self.stop = stop
        self.spec: Spec = load_spec(self.run_dir / "spec.yaml")
        _check_ident(self.spec, ident)
        self.wiring = Wiring.load(self.run_dir / "wiring.json")
        self.log = EventLog(self.run_dir / "logs" / f"{ident}.jsonl", ident)
        self.sockets = Sockets()
        self._evaluation: Optional[tuple] = None

    # -- waiting, where a stop request takes effect
    def poll(self, sock: zmq.Socket, seconds: float) -> bool:
        """Whether ``sock`` has a message to read within ``seconds``."""
        return bool(self.stop.waiting(lambda: sock.poll(seconds * 1000)))

    def sleep_until(self, moment: float) -> None:
        self.stop.waiting(lambda: time.sleep(max(0.0, moment - time.time())))

    def wait_for_start(self) -> None:
        """Say READY, then wait until the run publishes window 0's start."""
        self.log.write(READY, pid=os.getpid())
        while (start_at := read_start(self.run_dir)) is None:
            self.stop.waiting(lambda: time.sleep(POLL_S))
        self.start_at = start_at

    # -- the spec, seen from this process
    @property
    def node(self) -> NodeSpec:
        return self.spec.node(self.ident)

    @property
    def interval(self) -> float:
        return self.spec.windows.interval

    def window_end(self, window: int) -> float:
        return self.start_at + (window + 1) * self.interval

    def window_now(self) -> int:
        """The window in progress: 0 before window 0 began; later for a process restarted
        after a crash, which joins the running clock rather than replay windows it missed."""
        return max(0, int((time.time() - self.start_at) // self.interval))

    @property
    def grace(self) -> float:
        """How long after a window's end its last samples may still be on the way."""
        return window_grace(self.interval)

    def request_timeout(self, model_bytes: int) -> float:
        """How long a child waits for its parent's reply before retrying: half a window
        (0.5 to 5 s), plus four times what a model takes at the bandwidth of the link to
        the parent, plus ten one-way delays (TCP's slow start, a lost segment)."""
        link = self.node.link
        transfer = 4 * model_bytes * 8 / (link.bw_mbit * 1e6) if link and link.bw_mbit else 0.0
        delays = 10 * (link.delay_ms + link.jitter_ms) / 1000 if link else 0.0
        return min(max(0.5 * self.interval, 0.5), 5.0) + transfer + delays

    @property
    def sync_wait(self) -> float:
        """How long after the last window a node waits for a model covering every worker."""
        return max(3 * self.interval, 5.0)

    @property
    def all_workers(self) -> list:
        return [node.id for node in self.spec.workers]

    # -- learning
    def new_application(self, index: int) -> Application:
        """The spec's application, initialised alike on every node (seeded by the spec's seed)
        and trained in an order seeded by the spec's seed and ``index``."""
        spec = self.spec
        app = create_application(spec.application.name, spec.application.params, seed=spec.seed)
        if app.dataset != spec.data.dataset:
            raise UserError(f"application {spec.application.name!r} learns from {app.dataset!r}, "
                            f"but the sensors stream {spec.data.dataset!r}")
        app.rng = np.random.default_rng([spec.seed, TRAINING_SEED_WORD, index])
        return app

    @property
    def evaluation_data(self) -> tuple:
        """The held-out test set ``(x, y)``, loaded once."""
        if self._evaluation is None:
            self._evaluation = stream_definition(self.spec).evaluation_data()
        return self._evaluation

    def evaluate(self, app: Application) -> Dict[str, Any]:
        """``app`` on the test set, as STATISTIC fields (``test_samples``, ``test_loss`` are the
        application's ``samples`` and ``loss``, renamed to keep them apart from training's)."""
        renames = {"samples": "test_samples", "loss": "test_loss"}
        return {renames.get(key, key): value for key, value in app.evaluate(*self.evaluation_data).items()}

    def log_window(self, app: Application, watch: Stopwatch, window: int, **fields: Any) -> None:
        """A worker's or the cloud's STATISTIC for one window: ``fields``, then ``app`` on the
        test set, then the window's wall and CPU time and the process's peak memory."""
        self.log.write(STATISTIC, window=window, **fields, **self.evaluate(app), **watch.fields())

    # -- logging
    def log_message(self, direction: str, peer: str, message: protocol.Message, frames: Any) -> None:
        """A CONNECTION event for one message sent or received on a tree link; a coded one's
        also has ``codec`` (the chain's types) and ``raw_bytes``, its tensors' bytes uncoded, and
        a ``waiting`` PULL says so."""
        payload_bytes = sum(protocol.frame_bytes(f) for f in list(frames)[1:])
        coded = {}
        if message.codec:
            coded = {"codec": [codec.type for codec in message.codec],
                     "raw_bytes": sum(np.asarray(a).nbytes for a in message.arrays)}
        self.log.write(CONNECTION, direction=direction, peer=peer, kind=message.type,
                       bytes=protocol.wire_bytes(frames), payload_bytes=payload_bytes, seq=message.seq,
                       version=message.version, window=message.window, samples=message.samples, **coded,
                       **({"waiting": True} if message.waiting else {}))

    def log_malformed(self, reason: str, peer: Optional[str], frames: Any) -> None:
        """A MALFORMED event for a message that was dropped."""
        self.log.write(MALFORMED, peer=peer, reason=reason, bytes=protocol.wire_bytes(frames))

    def decode(self, frames: Any, schema: protocol.Schema, peer: Optional[str] = None) -> Optional[protocol.Message]:
        """``frames`` as a validated message; else None, logged as MALFORMED from the sender the
        header claims or, if it could not be read, from ``peer``."""
        try:
            return protocol.decode(frames, schema)
        except protocol.MalformedMessage as error:
            self.log_malformed(error.reason, error.sender or peer, frames)
            return None

    def describe(self) -> Dict[str, Any]:
        """START fields: who this process is and where it listens."""
        fields: Dict[str, Any] = {"pid": os.getpid(), "start_at": self.start_at, "argv": sys.argv,
                                  "spec": self.spec.name, "seed": self.spec.seed,
                                  "interval": self.interval, "limit": self.spec.windows.limit,
                                  "endpoint": self.wiring.bind_address(self.ident)}
        sensors = {sensor_id(index): index for index in self.spec.sensor_ids}
        if self.ident in sensors:
            fields.update(sensor=sensors[self.ident], worker=self.spec.sensor_owner(sensors[self.ident]),
                          rate=self.spec.sensors.rate)
        if self.ident in {node.id for node in self.spec.nodes}:
            node = self.node
            fields.update(role=node.role, parent=node.parent, children=list(node.children),
                          sensors=list(node.sensors), level=node.level,
                          policy={"type": node.policy.type, **node.policy.params})
            for key in ("codec", "pull_codec"):
                if getattr(node, key):
                    fields[key] = [{"type": codec.type, **codec.params} for codec in getattr(node, key)]
        return fields

    def close(self) -> None:
        self.sockets.close_all()
        self.log.close()


def _check_ident(spec: Spec, ident: str) -> None:
    """UserError unless ``ident`` names a process of the run."""
    nodes = [node.id for node in spec.nodes]
    sensors = [sensor_id(index) for index in spec.sensor_ids]
    known = nodes + sensors + ([CLOUD_ID] if spec.cloud is not None else [])
    if ident not in known:
        raise UserError(f"{ident!r} is not a process of this run: {spec.source} has the nodes {', '.join(nodes)}, "
                        f"the sensors {', '.join(sensors)}" + (f" and {CLOUD_ID}" if spec.cloud else " and no cloud"))


class Role(Protocol):
    """A process's work once the run has started (sensor, worker, parameter server, cloud)."""

    def run(self) -> Mapping[str, Any]:
        """Every window; the DONE summary."""


def run_process(run_dir: Path, ident: str, role: str, build: Callable[[Runtime], Role]) -> int:
    """Build ``ident``'s role, pass the start barrier and run it, with READY/START/DONE/STOP/ERROR
    logging; the exit status."""
    stop = StopRequest().install()
    try:
        runtime = Runtime(run_dir, ident, stop)
    except UserError as error:
        print(f"edgetestbed {ident}: {error}", file=sys.stderr)
        return error.exit_status
    try:
        work = build(runtime)
        runtime.wait_for_start()
        runtime.log.write(START, **{"role": role, **runtime.describe()})
        summary = work.run()
        runtime.log.write(DONE, **{**summary, **usage(), **CODEC_USAGE.fields()})
        return 0
    except Stopped as stop:
        runtime.log.write(STOP, signal=str(stop), **usage(), **CODEC_USAGE.fields())
        return 0
    except UserError as error:
        runtime.log.write(ERROR, error=str(error))
        print(f"edgetestbed {ident}: {error}", file=sys.stderr)
        return error.exit_status
    except Exception as error:  # a crash: record it, then let the traceback reach stderr
        runtime.log.write(ERROR, error=repr(error), traceback=traceback.format_exc())
        raise
    finally:
        runtime.close()
