"""A link's delivered rate, from a short train of UDP datagrams sent back to back across it.

The sender (in the child's host) sends the whole train at once; the link's rate limiter (htb)
lets the first packets through at line rate, up to its burst, and spaces the rest at its rate.
The receiver (in the parent's host) stamps each datagram with the kernel's arrival time
(``SO_TIMESTAMPNS``, so its own scheduling adds nothing); the rate is the frames that arrived
after the first :data:`SKIP_BYTES` of the train: one frame over the median spacing of their
arrivals (see :func:`delivered_rate`). Lost datagrams take no link time (the shapers drop before
the rate limiter), so a loss lengthens one gap only. Jitter spreads arrivals and biases the rate
low.

The train is light: at least :data:`MIN_MEASURED` datagrams after the skipped ones, or
:data:`MEASURED_S` of the link's configured rate if that is more (at most :data:`MAX_PACKETS`
in all): 24 datagrams, 35 kB, 0.28 s of a 1 Mbit/s link; 28 ms of a 10 Mbit/s one.

Run as ``python -m edgetestbed.dynamics.train receive|send ...`` in the hosts' namespaces
(outside their CPU limits, :mod:`edgetestbed.measure.hosttools`). Each datagram carries only
the train's 8-byte id and its index; the receiver counts a datagram of another train, or a
short one, as not part of the train.
"""

from __future__ import annotations

import argparse
import json
import math
import select
import socket
import statistics
import struct
import sys
from typing import Optional, Sequence

from edgetestbed.measure.headers import UDP_FRAME_HEADERS

PAYLOAD = 1400                      # bytes per datagram: one frame of 1,442 bytes on the link
FRAME_BITS = (PAYLOAD + UDP_FRAME_HEADERS) * 8
SKIP_BYTES = 16 * 1024              # beyond htb's 15 kB burst (edgetestbed.topo.htb.HTB_BURST)
MIN_MEASURED = 12                   # datagrams after the skipped ones
MEASURED_S = 0.01                   # of the configured rate, when that is more
MAX_PACKETS = 128
HEADER = struct.Struct("!QI")        # train id, index
FIRST_WAIT_S = 3.0                  # the receiver gives up when nothing arrives for this long
# Linux's option (asm-generic/socket.h), which Python names only from 3.13 on; on 64-bit
# Linux its control message is a struct timespec of two 64-bit integers.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def skipped_packets() -> int:
    """The train's first datagrams, which may pass at line rate within htb's burst."""
    return math.ceil(SKIP_BYTES * 8 / FRAME_BITS)


def train_length(rate_mbit: float) -> int:
    """How many datagrams to send across a link of ``rate_mbit``."""
    measured = max(MIN_MEASURED, math.ceil(rate_mbit * 1e6 * MEASURED_S / FRAME_BITS))
    return min(MAX_PACKETS, skipped_packets() + measured)


def idle_wait(rate_mbit: float) -> float:
    """How long the receiver waits after a datagram for the next: a few datagrams' link
    time, and long enough for a lost last one not to keep it waiting long."""
    return 0.3 + 4 * FRAME_BITS / (rate_mbit * 1e6)


def delivered_rate(arrivals: Sequence[tuple[int, float]]) -> Optional[float]:
    """The link's rate in Mbit/s of frames, from ``(index, arrival time in s)`` of the
    datagrams that arrived: one frame over the median spacing of consecutive arrivals after
    the skipped ones. A median, not the span: a competing flow's packets queued between two
    of the train's lengthen only those gaps. None when fewer than 3 arrived after the
    skipped ones."""
    measured = sorted(at for index, at in arrivals if index >= skipped_packets())
    gaps = [later - earlier for earlier, later in zip(measured, measured[1:])]
    if len(gaps) < 2 or statistics.median(gaps) <= 0:
        return None
    return FRAME_BITS / statistics.median(gaps) / 1e6


def receive(port: int, train: int, packets: int, idle_s: float, out=sys.stdout) -> None:
    """Print ``ready``, then collect train ``train``'s datagrams on ``port`` until all
    ``packets`` arrived or none did for ``idle_s`` (:data:`FIRST_WAIT_S` before the first);
    print ``{"arrivals": [[index, seconds], ...]}`` with kernel arrival times."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MAX_PACKETS * PAYLOAD)
        sock.bind(("0.0.0.0", port))
        print("ready", file=out, flush=True)
        arrivals: list[tuple[int, float]] = []
        wait = FIRST_WAIT_S
        while len(arrivals) < packets and select.select([sock], [], [], wait)[0]:
            data, ancillary, _, _ = sock.recvmsg(PAYLOAD, 64)
            if len(data) != PAYLOAD:   # not the train's, and maybe too short to hold a header
                continue
            ident, index = HEADER.unpack_from(data)
            arrived = _kernel_time(ancillary)
            if ident == train and arrived is not None:
                arrivals.append((index, arrived))
                wait = idle_s
        print(json.dumps({"arrivals": arrivals}), file=out, flush=True)


def send(address: str, port: int, train: int, packets: int) -> None:
    """Send train ``train``: ``packets`` datagrams back to back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MAX_PACKETS * PAYLOAD)
        padding = bytes(PAYLOAD - HEADER.size)
        for index in range(packets):
            sock.sendto(HEADER.pack(train, index) + padding, (address, port))


def _kernel_time(ancillary: list) -> Optional[float]:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return None


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgetestbed.dynamics.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("receive", "send"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--train", type=int, required=True, help="the train's id")
    parser.add_argument("--packets", type=int, required=True)
    parser.add_argument("--to", help="the receiver's address (send)")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds without a datagram that end the train")
    args = parser.parse_args(argv)
    if args.role == "send" and not args.to:
        parser.error("send needs --to")
    if args.role == "receive":
        receive(args.port, args.train, args.packets, args.idle)
    else:
        send(args.to, args.port, args.train, args.packets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
