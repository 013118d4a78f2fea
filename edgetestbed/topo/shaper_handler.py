"""The user-space link shaper's packet handler: one process per run, in the root namespace.

Where the kernel has no netem, every shaped link direction sends the packets entering
its bridge port to an NFQUEUE (see :mod:`edgetestbed.topo.shaper`). This process binds
one queue per direction and, for each packet, either drops it (random loss, or tail drop
when the direction already holds its queue limit) or holds it and issues the *accept*
verdict later, at its release time (NetfilterQueue >= 1.0 allows a verdict after the
callback returned). Nothing is copied but the packet's metadata.

Started by :class:`~edgetestbed.topo.shaper.UserspaceShaper` as
``python -m edgetestbed.topo.shaper_handler CONFIG.json``. The protocol with its parent:

- stdout's first JSON line is ``{"queues": {port: queue_number}, "realtime": bool}``
  once every queue is bound, or ``{"error": "..."}`` just before exiting with status 1;
- then stdin carries live changes, one JSON line each, ``{"port": NAME, "delay_ms": x,
  "jitter_ms": y, "loss_pct": z}`` (any subset of the three), each answered by one line on
  stdout, ``{"changed": NAME, "at": UNIX_TIME}`` or ``{"error": "..."}``
  (:mod:`edgetestbed.topo.shaper_control`). A change applies at once to the packets that
  arrive from then on; packets held keep their release time. EOF on stdin ends only the
  changes;
- SIGTERM (or SIGINT) accepts every packet still held, unbinds the queues, writes the
  per-port counters to ``config["counters"]`` and exits with status 0.
"""

from __future__ import annotations

import ctypes
import functools
import heapq
import itertools
import json
import os
import random
import select
import signal
import socket
import sys
from pathlib import Path
from time import monotonic, time
from typing import Callable, Iterable, Sequence

from netfilterqueue import COPY_META, NetfilterQueue, Packet

from edgetestbed.topo.shaper import ShapedPort
from edgetestbed.topo.shaper_control import Control

PROC_QUEUES = Path("/proc/net/netfilter/nfnetlink_queue")

# Low queue numbers are what other NFQUEUE users default to (Suricata, Snort: 0);
# a run's block of consecutive numbers is searched from here.
FIRST_QUEUE = 1000
BIND_ATTEMPTS = 20

# The kernel counts held packets against the queue's own length limit and drops beyond
# it; leave room above our limit for packets still unread in the socket, so that the
# limit that bites is always ours (and counted).
KERNEL_QUEUE_MARGIN = 1024

PR_SET_TIMERSLACK = 29
REALTIME_PRIORITY = 1  # SCHED_FIFO: the lowest real-time priority is above every normal task
# select() wakes ~70 µs late here even with 1 ns timer slack; asking 60 µs early gets
# releases within a few µs of due, and rarely leaves anything to poll (measured).
WAKE_EARLY = 60e-6
SO_TIMESTAMP = 29  # asm-generic/socket.h; the socket module does not export it

# A kernel receive timestamp further back than this is not trusted (clock stepped).
MAX_STAMP_AGE = 1.0


class Direction:
    """One shaped link direction: decides each packet's fate and counts what it did.

    A packet is first subject to loss, then to the queue limit (tail drop), like netem.
    Its release time is arrival + delay + a uniform draw in ±jitter (netem's default
    distribution), but never earlier than the previous packet's release in the same
    direction: the shaper **never reorders** a direction. netem's tfifo does reorder under
    jitter, which makes TCP retransmit spuriously and is not what a real link does; the
    price is that at packet intervals shorter than the jitter, delays pile up towards
    the upper end of the range (mean delay above the configured one).

    A live :meth:`change` applies to the packets admitted after it. The rule holds across
    it: when the delay drops, packets arriving next are released no earlier than the last
    one admitted at the old delay, so for up to the old delay the new one is exceeded.
    """

    __slots__ = ("port", "shaped", "queue_num", "delay", "jitter", "loss", "limit", "rng",
                 "last_release", "held", "seen", "lost", "overflow", "held_max")

    def __init__(self, port: ShapedPort, rng: random.Random) -> None:
        self.port = port.port
        self.queue_num = -1
        self.limit = port.limit
        self.change(port)
        self.rng = rng
        self.last_release = 0.0
        self.held = self.seen = self.lost = self.overflow = self.held_max = 0

    def change(self, port: ShapedPort) -> None:
        """Shape the packets admitted from now on as ``port`` says (not its queue limit)."""
        self.shaped = port
        self.delay = port.delay_ms / 1000.0
        self.jitter = port.jitter_ms / 1000.0
        self.loss = port.loss_pct / 100.0

    def admit(self, arrived: float) -> float | None:
        """Release time of a packet that arrived at ``arrived`` (monotonic s); None: drop it."""
        self.seen += 1
        if self.loss and self.rng.random() < self.loss:
            self.lost += 1
            return None
        if self.held >= self.limit:
            self.overflow += 1
            return None
        release = arrived + self.delay
        if self.jitter:
            release += self.rng.uniform(-self.jitter, self.jitter)
        if release < self.last_release:
            release = self.last_release
        self.last_release = release
        return release

    def hold(self) -> None:
        """Count one more packet held in this direction."""
        self.held += 1
        if self.held > self.held_max:
            self.held_max = self.held

    def counters(self) -> dict[str, int]:
        """What this direction did so far (the fidelity evidence written on exit)."""
        return {"queue_num": self.queue_num, "seen": self.seen, "lost": self.lost,
                "overflow": self.overflow, "held_max": self.held_max}


class Scheduler:
    """Holds admitted packets in release order and accepts each one when it is due.

    Heap entries are ``(release, sequence, direction, packet)``; the sequence number
    keeps equal release times in arrival order and is never compared beyond that.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Direction, Packet]] = []
        self._sequence = itertools.count()

    def on_packet(self, direction: Direction, packet: Packet) -> None:
        """The NFQUEUE callback body: release what is due, then drop, pass or hold ``packet``."""
        now = monotonic()
        self.release_due(now)
        release = direction.admit(arrival(packet, now))
        if release is None:
            packet.drop()
        elif release <= now:
            packet.accept()
        else:
            direction.hold()
            heapq.heappush(self._heap, (release, next(self._sequence), direction, packet))

    def release_due(self, now: float) -> None:
        """Accept every held packet whose release time has come."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, direction, packet = heapq.heappop(heap)
            direction.held -= 1
            packet.accept()

    def release_all(self) -> None:
        """Accept everything still held, in release order (on shutdown)."""
        self.release_due(float("inf"))

    def next_release(self) -> float | None:
        """Monotonic time of the next release, or None when nothing is held."""
        return self._heap[0][0] if self._heap else None


def arrival(packet: Packet, now: float) -> float:
    """When ``packet`` entered the bridge, on the monotonic clock.

    The kernel stamps packets on receipt (see :func:`enable_receive_timestamps`), so a
    handler that reads its socket late (busy, or preempted) still delays each packet from
    its true arrival. Without a plausible stamp: ``now``, the time it was read.
    """
    age = time() - packet.get_timestamp()
    return now - age if 0.0 <= age < MAX_STAMP_AGE else now


def enable_receive_timestamps() -> socket.socket:
    """Keep the kernel stamping every received packet, for as long as the socket is open.

    One socket asking for SO_TIMESTAMP switches receive timestamps on system-wide (as a
    running ping does); NFQUEUE then passes each packet's stamp (µs) to the handler.
    """
    stamps = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stamps.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    return stamps


class BoundQueues:
    """One bound NFQUEUE per direction, numbered consecutively from a free base."""

    def __init__(self, queues: dict[int, NetfilterQueue]) -> None:
        self.by_fd = queues

    @classmethod
    def bind(cls, directions: Sequence[Direction], avoid: Iterable[int],
             callback: Callable[[Direction], Callable[[Packet], None]]) -> "BoundQueues":
        """Bind a free block of queue numbers, retrying past numbers taken meanwhile."""
        avoid = set(avoid)
        for _ in range(BIND_ATTEMPTS):
            base = free_base(len(directions), avoid | bound_queue_numbers())
            try:
                return cls._bind_block(base, directions, callback)
            except OSError as error:
                avoid.update(range(base, base + len(directions)))
                last_error = error
        raise OSError(f"no block of {len(directions)} NFQUEUE numbers could be bound in "
                      f"{BIND_ATTEMPTS} attempts; the last: {last_error}")

    @classmethod
    def _bind_block(cls, base: int, directions: Sequence[Direction],
                    callback: Callable[[Direction], Callable[[Packet], None]]) -> "BoundQueues":
        bound = cls({})
        try:
            for number, direction in enumerate(directions, start=base):
                queue = NetfilterQueue()
                bound.by_fd[queue.get_fd()] = queue
                queue.bind(number, callback(direction), mode=COPY_META, range=0,
                           max_len=direction.limit + KERNEL_QUEUE_MARGIN)
                direction.queue_num = number
        except OSError:
            bound.unbind()
            raise
        return bound

    def drain(self, fd: int) -> None:
        """Run the callback for every packet waiting on one queue's socket."""
        self.by_fd[fd].run(block=False)

    def unbind(self) -> None:
        for queue in self.by_fd.values():
            queue.unbind()


def bound_queue_numbers() -> set[int]:
    """Queue numbers some process (any) has bound in this network namespace."""
    return set(queue_stats())


def queue_stats() -> dict[int, dict[str, int]]:
    """The kernel's view of every bound queue: packets it dropped and why."""
    stats = {}
    for line in PROC_QUEUES.read_text().splitlines():
        fields = [int(field) for field in line.split()]
        stats[fields[0]] = {"kernel_dropped": fields[5], "socket_dropped": fields[6]}
    return stats


def free_base(count: int, taken: set[int]) -> int:
    """The lowest number >= FIRST_QUEUE starting ``count`` consecutive numbers not taken."""
    base = FIRST_QUEUE
    while any(number in taken for number in range(base, base + count)):
        base += 1
    if base + count > 65536:
        raise OSError("NFQUEUE numbers exhausted")
    return base


class StopSignal:
    """SIGTERM/SIGINT as a flag plus a readable fd, so select() wakes up at once."""

    def __init__(self) -> None:
        self.requested = False
        self.reader, writer = socket.socketpair()
        for end in (self.reader, writer):
            end.setblocking(False)
        self._writer = writer
        signal.set_wakeup_fd(writer.fileno())
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request)

    def _request(self, signum: int, frame: object) -> None:
        self.requested = True


def serve(queues: BoundQueues, scheduler: Scheduler, stop: StopSignal,
          control: Control | None = None) -> None:
    """Until asked to stop: wait for packets, a control line or the next release.

    The queues' sockets wait in one epoll set, so finding the ready ones costs the same
    with 2 queues or 300 (a 25-worker run has 162; the handler's CPU in its first 50 s
    went from 17 s to 15 s, one run each). The epoll fd itself is waited on with
    select(), whose timeout has µs resolution where epoll's has ms. select() is asked to
    wake WAKE_EARLY before a release; if it does wake that early, the remaining µs are
    polled (select with timeout 0).
    """
    with select.epoll() as ready:
        for fd in queues.by_fd:
            ready.register(fd, select.EPOLLIN)
        readers = [stop.reader.fileno(), ready.fileno()]
        if control is not None:
            readers.append(control.fd_in)
        while not stop.requested:
            scheduler.release_due(monotonic())
            due = scheduler.next_release()
            timeout = None if due is None else max(0.0, due - monotonic() - WAKE_EARLY)
            readable = select.select(readers, [], [], timeout)[0]
            if ready.fileno() in readable:
                for fd, _ in ready.poll(0):
                    queues.drain(fd)
            if control is not None and control.fd_in in readable:
                control.on_readable()
                if not control.open:
                    readers.remove(control.fd_in)


def precise_timers() -> None:
    """Ask for 1 ns timer slack (default 50 µs) so select() wakes up when asked."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def realtime_priority() -> bool:
    """Run before the emulated hosts' processes, as netem in softirq context would.

    A run's hosts keep the CPUs busy; at normal priority the handler waits for a CPU and
    every packet it holds waits too (measured with 3 busy loops on 2 CPUs, 20 ms each way:
    RTT p95 61 ms, max 92 ms; with SCHED_FIFO: p95 40.1 ms, max 40.7 ms). Without the
    privilege (or a real-time budget in its cgroup) the handler stays at normal priority.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except OSError as error:
        print(f"shaper handler: staying at normal priority: {error}", file=sys.stderr)
        return False
    return True


def announce(message: dict) -> None:
    """Write the line the parent waits for; stdout then carries only control answers."""
    os.write(sys.stdout.fileno(), (json.dumps(message) + "\n").encode())


def write_counters(path: Path, directions: Sequence[Direction]) -> None:
    """Per-port counters, including the kernel's own drops, written atomically."""
    kernel = queue_stats()
    ports = {d.port: {**d.counters(), **kernel.get(d.queue_num, {})} for d in directions}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"ports": ports}, indent=1))
    partial.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    config = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    ports = [ShapedPort(**port) for port in config["ports"]]
    seed = config["seed"]
    # One random stream per direction: traffic on one link never shifts another's draws.
    directions = [Direction(port, random.Random(f"{seed}:{index}"))
                  for index, port in enumerate(ports)]
    scheduler = Scheduler()
    stop = StopSignal()
    precise_timers()
    realtime = realtime_priority()
    stamps = enable_receive_timestamps()
    try:
        queues = BoundQueues.bind(directions, config["avoid_queues"],
                                  lambda d: functools.partial(scheduler.on_packet, d))
    except OSError as error:
        announce({"error": f"cannot bind NFQUEUE (is nfnetlink_queue available?): {error}"})
        return 1
    announce({"queues": {d.port: d.queue_num for d in directions}, "realtime": realtime})
    try:
        serve(queues, scheduler, stop, Control({d.port: d for d in directions}))
    finally:
        scheduler.release_all()
        write_counters(Path(config["counters"]), directions)
        queues.unbind()
        stamps.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
