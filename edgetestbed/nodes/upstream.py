"""A child's side of the child → parent link: requests with timeouts, and the exchanges.

:class:`Parent` sends one request at a time on a DEALER socket and waits for the reply
whose ``seq`` matches. Without a reply within the timeout (see
:meth:`~edgetestbed.process.runtime.Runtime.request_timeout`) it logs ``RETRY``, throws the
socket away (so the lost request can never be delivered late) and resends on a fresh
one; after the last attempt it logs ``UNREACHABLE`` and gives the parent a rest of one
window interval, during which requests fail at once, so that a worker keeps training at
its pace while its parent is away. A resent PUSH keeps its ``seq``: the parent applies a
sender's push only once. Sequence numbers start at the process's start time in
milliseconds, so a restarted child's requests are never mistaken for resent ones.

:class:`Exchange` is what a node does with its parent: pull (adopt the parent's model,
keeping unpushed work; log ``MODEL_RECEIVED`` with its coverage), push (the update since
the last push; committed only when acknowledged, so nothing is lost while the parent is
away), join (a pull at start), the final synchronisation and leaving (``DONE``). A node
with a ``codec`` chain sends its pushes coded by it: one chain for the node's whole life,
so that state such as top-k's error feedback carries from push to push, and advanced
(:meth:`~edgetestbed.codecs.Codec.commit`) only by an acknowledged push. A node with a
``pull_codec`` chain gets the models it pulls coded by it (its parent encodes them,
:func:`pull_chain`), decodes them with the codecs its own spec names and adopts them as any.

A node whose parent's aggregation runs rounds (``sync``) waits until the parent's version has
passed the one its last acknowledged push was computed from (that round has closed),
pulling every ``ROUND_POLL`` seconds (each such PULL says it is ``waiting`` with the version it
holds, and the parent answers ``NOT_MODIFIED``, no weights, until it has a newer one: a poll
costs a header, not a model), for at most the aggregation's patience; ``ROUND``
``{version, pushed_from, waited, opened}`` logs each wait. A worker waits after each pull its
policy asks for (:meth:`Exchange.await_round`); a parameter server, which must go on serving
its children, waits a poll at a time (:meth:`Exchange.poll_round`, see
:mod:`edgetestbed.nodes.server`).

Log events: ``CONNECTION`` per message, ``RETRY`` ``{peer, kind, seq, attempt, waited}``,
``UNREACHABLE`` ``{peer, kind, seq, attempts}``, ``MALFORMED`` ``{peer, reason, bytes}``
for a bad reply, ``MODEL_RECEIVED`` ``{peer, version, coverage, model_coverage, complete}``:
the coverage of the model received, that of this node's model after adopting it (with
its own work not yet pushed), and whether the latter holds every worker's last window.

A node under the ``accuracy`` policy names in its ``PULL`` the version of the model it
holds; its parent may answer ``NOT_MODIFIED`` (:mod:`edgetestbed.nodes.notmodified`). The
node then keeps its model and logs ``KEPT_MODEL`` ``{peer, version, parent_coverage,
model_coverage, complete}`` (the parent's version and coverage, its own model's) — not a
``MODEL_RECEIVED``, whose coverage would tell the latency metric that a model arrived —
and its DONE counts them, ``not_modified_received``.
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple, Type

import zmq

from edgetestbed.aggregation import create_aggregation
from edgetestbed.codecs import Codec, commit_chain, create_codec, stateful_problem
from edgetestbed.errors import UserError
from edgetestbed.nodes.model import ModelState, covers
from edgetestbed.nodes.notmodified import gets_not_modified
from edgetestbed.nodes.view import NodeModelView
from edgetestbed.policies import Event, Moment, Policy
from edgetestbed.process import protocol
from edgetestbed.process.coded import accepted_codecs
from edgetestbed.process.eventlog import KEPT_MODEL, MODEL_RECEIVED, RETRY, ROUND, UNREACHABLE
from edgetestbed.process.protocol import ACK, DONE, MODEL, NOT_MODIFIED, PULL, PUSH, Message, Schema
from edgetestbed.process.runtime import Runtime
from edgetestbed.spec.model import CodecSpec, NodeSpec, Spec

ATTEMPTS = 2
CODEC_SEED_WORD = 11  # keeps nodes' codec seeds (stochastic rounding) apart from other seeds
PULL_CODEC_SEED_WORD = 12  # and the chains a parent codes a child's pulled models by apart from the child's own
REPLY_TO = {PULL: (MODEL, NOT_MODIFIED), PUSH: (ACK,), DONE: (ACK,)}
ROUND_POLL = 0.1   # seconds between a waiting node's pulls


def build_chain(spec: Spec, node: NodeSpec, chain: Sequence[CodecSpec], seed_word: int) -> Tuple[Codec, ...]:
    """One of ``node``'s codec chains, built once for the run, seeded by the spec's seed,
    ``seed_word`` (which chain) and the node."""
    seed = [spec.seed, seed_word, spec.nodes.index(node)]
    return tuple(create_codec(codec.type, codec.params, seed) for codec in chain)


def pull_chain(spec: Spec, child: NodeSpec) -> Tuple[Codec, ...]:
    """The chain a parent codes the models it sends ``child`` by (``child``'s ``pull_codec``).
    :class:`UserError` if a codec of it keeps state: ``validate`` says so, but cannot for a
    ``module:Class`` it did not find."""
    codecs = build_chain(spec, child, child.pull_codec, PULL_CODEC_SEED_WORD)
    for codec in codecs:
        if not codec.stateless:
            raise UserError(f"{child.id}'s pull_codec: {stateful_problem(codec.type)}")
    return codecs


def round_patience(spec: Spec, node: NodeSpec, interval: float) -> Optional[float]:
    """How long ``node`` waits for a round to open: its parent aggregation's patience and a
    window more if it runs rounds, else None (no waiting). The window more lets the parent
    give up on a dead sibling first: a child late by a window starts waiting as soon as its
    push arrives, when the parent's clock for the round starts too (with equal patience the
    two raced, and a child that lost ran a window ahead of the round)."""
    if node.parent is None:
        return None
    parent = spec.node(node.parent).aggregation
    aggregation = create_aggregation(parent.type, parent.params)
    return aggregation.patience(interval) + interval if aggregation.rounds else None


def accepting(*chains: Sequence[CodecSpec]) -> Dict[str, Type[Codec]]:
    """The codecs a receiver decodes: the built-ins, and the ``module:Class`` ones ``chains``
    (its spec's chains for what it receives) name; never one only a message names."""
    return accepted_codecs(sorted({codec.type for chain in chains for codec in chain}))


class Parent:
    """Request/reply with the parent over a DEALER socket, surviving its absence."""

    def __init__(self, runtime: Runtime, parent_id: str, schema: Schema) -> None:
        self.runtime = runtime
        self.parent_id = parent_id
        self.schema = schema
        self.address = runtime.wiring.address(parent_id)
        self.timeout = runtime.request_timeout(schema.max_payload_bytes())
        self.seq = int(time.time() * 1000)  # never reused by a restarted process (see ``_queue`` in server)
        self.resting_until = 0.0
        self.busy = 0.0   # wall seconds spent in requests: the node's communication time
        self.socket = self._connect()

    def _connect(self) -> zmq.Socket:
        sock = self.runtime.sockets.open(zmq.DEALER, self.schema.max_frame_bytes())
        sock.connect(self.address)
        return sock

    def _reconnect(self) -> None:
        self.runtime.sockets.close(self.socket)
        self.socket = self._connect()

    def request(self, kind: str, **fields) -> Optional[Message]:
        """Send a ``kind`` request; its reply, or None if the parent did not answer."""
        if time.time() < self.resting_until:
            return None
        started = time.time()
        try:
            return self._request(kind, fields)
        finally:
            self.busy += time.time() - started

    def _request(self, kind: str, fields: dict) -> Optional[Message]:
        self.seq += 1
        message = Message(kind, self.runtime.ident, seq=self.seq, **fields)
        frames = protocol.encode(message)
        for attempt in range(1, ATTEMPTS + 1):
            self.socket.send_multipart(frames, copy=False)
            self.runtime.log_message("sent", self.parent_id, message, frames)
            reply = self._await_reply(message, time.time() + self.timeout)
            if reply is not None:
                return reply
            self.runtime.log.write(RETRY, peer=self.parent_id, kind=kind, seq=message.seq, attempt=attempt,
                                   waited=self.timeout)
            self._reconnect()
        self.runtime.log.write(UNREACHABLE, peer=self.parent_id, kind=kind, seq=message.seq, attempts=ATTEMPTS)
        self.resting_until = time.time() + self.runtime.interval
        return None

    def _await_reply(self, request: Message, deadline: float) -> Optional[Message]:
        """The reply to ``request`` if it comes before ``deadline``; other messages are dropped."""
        while (remaining := deadline - time.time()) > 0:
            if not self.runtime.poll(self.socket, remaining):
                return None
            frames = self.socket.recv_multipart(copy=False)
            reply = self.runtime.decode(frames, self.schema, self.parent_id)
            if reply is None:
                continue
            self.runtime.log_message("received", self.parent_id, reply, frames)
            if reply.seq == request.seq and reply.type in REPLY_TO[request.type]:
                return reply
        return None


class Exchange:
    """A node's model traffic with its parent, as its policy asks (a root has no parent)."""

    def __init__(self, runtime: Runtime, model: ModelState, policy: Policy) -> None:
        self.runtime = runtime
        self.model = model
        self.policy = policy
        node, spec = runtime.node, runtime.spec
        parent_id = node.parent
        # The parent's replies: pulled models coded by this node's pull_codec, if it has one.
        schema = Schema.for_model(model.app.get_weights(), protocol.REPLIES, accepting(node.pull_codec))
        self.parent = Parent(runtime, parent_id, schema) if parent_id else None
        self.next_sync_pull = 0.0
        self.codecs = build_chain(spec, node, node.codec, CODEC_SEED_WORD) \
            if parent_id else ()   # a codec codes pushes, and the root pushes to no one
        policy.attach(NodeModelView(runtime, model))
        self.round_patience = round_patience(spec, node, runtime.interval)
        self.pushed_from: Optional[int] = None   # the parent version the last acknowledged push came from
        self.next_round_poll = 0.0
        self.names_version = gets_not_modified(node.policy.type)   # in its pulls, for NOT_MODIFIED
        self.not_modified = 0   # NOT_MODIFIED replies received

    def begin(self, start_at: float) -> None:
        """The run's clock started at ``start_at`` (time-based policies count from it)."""
        self.policy.begin(start_at)

    def at(self, moment: Moment, index: int) -> None:
        """Report an event to the policy; push and pull if it says so (push first)."""
        if self.parent is None:
            return
        event = Event(moment, index, time.time())
        if self.policy.wants_push(event):
            self.policy.pushed(event.now)
            self.push()
        elif self.policy.wants_discard(event):
            self.model.discard()
        if self.policy.wants_pull(event):
            self.policy.pulled(event.now)
            self.pull()
            if self.runtime.node.is_worker:
                self.await_round()

    def await_round(self) -> None:
        """Under a parent that runs rounds: pull until the round of the last push has closed."""
        if self.round_patience is None or self.pushed_from is None:
            return
        started = self.wait_round()
        while not self.poll_round(started):
            self.runtime.sleep_until(self.next_round_poll)

    def wait_round(self) -> float:
        """A wait for the parent's round begins now (after a pull); when, for :meth:`poll_round`."""
        started = time.time()
        self.next_round_poll = started + ROUND_POLL
        return started

    def round_open(self) -> bool:
        """Whether the parent's round of this node's last acknowledged push has closed (always,
        under a parent without rounds)."""
        return self.round_patience is None or self.pushed_from is None or self.model.base_version > self.pushed_from

    def poll_round(self, started: float) -> bool:
        """One step of a wait for a round begun at ``started``, never blocking longer than a
        request: pull if a poll is due; True (and ``ROUND`` logged) once the round has closed
        or the wait has lasted the aggregation's patience."""
        if not self.round_open() and time.time() >= self.next_round_poll:
            self.next_round_poll = time.time() + ROUND_POLL
            self.pull(waiting=True)
        waited = time.time() - started
        if not self.round_open() and waited < self.round_patience:
            return False
        self.runtime.log.write(ROUND, version=self.model.base_version, pushed_from=self.pushed_from,
                               waited=waited, opened=self.round_open())
        return True

    def pull(self, waiting: bool = False) -> bool:
        """Adopt the parent's current model; False if the parent did not answer. ``waiting``: a
        poll for a newer model than the one held, whose ``NOT_MODIFIED`` says only that there
        is none yet (not logged: a round's wait logs ``ROUND``)."""
        if self.parent is None:
            return False
        named = {"version": self.model.base_version} if self.names_version or waiting else {}
        reply = self.parent.request(PULL, waiting=waiting, **named)
        if reply is None:
            return False
        if reply.type == NOT_MODIFIED and waiting:
            return True
        if reply.type == NOT_MODIFIED:
            self.not_modified += 1
            self.runtime.log.write(KEPT_MODEL, peer=self.parent.parent_id, version=reply.version,
                                   parent_coverage=dict(reply.coverage), model_coverage=dict(self.model.coverage),
                                   complete=self.complete())
            return True
        self.model.adopt(reply.arrays, reply.coverage, reply.version)
        self.runtime.log.write(MODEL_RECEIVED, peer=self.parent.parent_id, version=reply.version,
                               coverage=dict(reply.coverage), model_coverage=dict(self.model.coverage),
                               complete=self.complete())
        return True

    def push(self) -> bool:
        """Send the update since the last push, if there is one; False if the parent did not
        acknowledge it (it stays pending)."""
        if self.parent is None:
            return False
        if not self.model.has_pending():
            return True
        update = self.model.pending()
        latest = max(update.coverage.values(), default=-1)
        reply = self.parent.request(PUSH, version=self.model.base_version, window=latest, samples=update.samples,
                                    coverage=update.coverage, arrays=tuple(update.delta), codec=self.codecs)
        if reply is None:
            return False
        commit_chain(self.codecs)
        self.model.committed(update)
        self.pushed_from = self.model.base_version
        return True

    def usage(self) -> dict:
        """DONE fields: ``exchange_time``, the wall seconds this node spent waiting on its
        parent (requests from encoding to reply, retries included), and the policy's own
        (a trigger's counts; ``not_modified_received`` for ``accuracy``); none for the root."""
        if self.parent is None:
            return {}
        received = {"not_modified_received": self.not_modified} if self.names_version else {}
        return {"exchange_time": self.parent.busy, **self.policy.summary(), **received}

    def complete(self) -> bool:
        """Whether the model holds the last window of every worker of the run."""
        return covers(self.model.coverage, self.runtime.all_workers, self.runtime.spec.windows.limit - 1)

    def sync_step(self) -> bool:
        """One step of the final synchronisation, never blocking longer than a request:
        push what is pending, then pull now and then until the model is complete."""
        if self.parent is None or self.complete():
            return self.complete()
        self.push()
        if time.time() >= self.next_sync_pull:
            self.next_sync_pull = time.time() + max(self.runtime.interval / 4, 0.1)
            self.pull()
        return self.complete()

    def leave(self) -> None:
        """Tell the parent this node is done (after a last push of anything pending)."""
        if self.parent is None:
            return
        self.push()
        self.parent.request(DONE)
