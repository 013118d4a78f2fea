"""The parameter server process (the root is one without a parent).

It binds a ROUTER socket and serves its children: ``PULL`` gets its current model
(``MODEL`` with its version and coverage), ``PUSH`` an ``ACK`` after the update is
queued, ``DONE`` an ``ACK``. Every request is validated first (the weights' shapes, and
that it comes from one of its children); a bad one is logged as ``MALFORMED`` and
dropped, and serving goes on.

Updates queue in arrival order with the version each was computed from
(:mod:`edgetestbed.nodes.pending`). When to merge and how is the server's aggregation's
(:mod:`edgetestbed.aggregation`; by default ``average``: when every child that is not done
has something queued, or half a window after the oldest queued update arrived, so that a
slow or absent child delays nobody for long, the sample-weighted average of the queued
updates, a child's several ones added up). It is asked at every tick and again after each
merge, so that an aggregation that merges one update at a time (``async``) merges all that
arrived. Policy events ``STEP_START`` before a merge, ``STEP_END`` after, so ``simple`` pulls
from the parent before and pushes to it after each merge; ``TICK`` events are reported
between requests.

Under a parent whose aggregation runs rounds (``sync``) a server is one of that parent's
children in its rounds, and passes them down: after a merge whose update its parent
acknowledged it merges nothing more, and keeps serving its children the model they had
(:class:`Shown`: the version, weights and coverage from before the merge), until the
parent's round has closed (it pulls every ``ROUND_POLL`` seconds, for at most the parent's
patience, logging ``ROUND`` like a worker). Only then do its children see a new version, the
parent's merged model: the root opens each round down the tree, and every worker begins its
next window from a model that holds every worker's last one.

On start a server with a parent pulls the parent's current model (a server restarted
from scratch thus resumes from its parent). Once its model holds the last window of
every worker below it, it pushes what is left and pulls until its model is complete,
so the final model reaches its children. It finishes when every child has said DONE, or
when the run should be over and no child has been heard from for a while.

Log events: ``STATISTIC`` per merge ``{merge, children, samples, version, coverage,
<evaluation after the merge>, before: <evaluation before>, staleness, wall_time, cpu_time,
cpu_total, memory_peak}`` (``staleness``: per child merged, the staleness of each of its
PUSHes, in arrival order; an aggregation that weighs updates adds ``weights``, per child;
``sync`` adds ``missing``, the live children it gave up waiting for); ``DONE`` ``{merges,
samples, complete, coverage, children_done, <evaluation>, exchange_time, cpu_total,
memory_peak}`` (and ``codec_*`` if it decoded: :mod:`edgetestbed.codecs.usage`);
``CONNECTION`` per message in and out; ``MALFORMED`` ``{peer, reason, bytes}`` (peer: the claimed sender, or the
socket identity in hex).

A child's PUSH may be coded (:mod:`edgetestbed.codecs`): it is decoded with the chain its
header declares, among the built-in codecs and the ``module:Class`` ones the spec gives
this server's children (never one only the message names), and then checked like any.
The MODEL replying to a child's PULL is coded by the child's ``pull_codec`` chain, if it
has one (stateless codecs only: the reply is never acknowledged), built once per child.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Mapping, Optional, Set, Tuple

import numpy as np
import zmq

from edgetestbed.aggregation import create_aggregation
from edgetestbed.nodes.model import ModelState, Update, covers
from edgetestbed.nodes.pending import PendingUpdates
from edgetestbed.nodes.notmodified import PullGate
from edgetestbed.nodes.upstream import Exchange, accepting, pull_chain
from edgetestbed.policies import Moment, create_policy
from edgetestbed.process import protocol
from edgetestbed.process.eventlog import STATISTIC, Stopwatch
from edgetestbed.process.protocol import ACK, DONE, MODEL, NOT_MODIFIED, PULL, PUSH, Message, Schema
from edgetestbed.process.runtime import Runtime
from edgetestbed.spec.model import Spec

TICK_SECONDS = 0.05


@dataclass(frozen=True)
class Shown:
    """The model a server answers pulls with: its version, weights and coverage."""

    version: int
    weights: Tuple[np.ndarray, ...]
    coverage: Mapping[str, int]

    @classmethod
    def of(cls, model: ModelState) -> "Shown":
        return cls(model.version, tuple(model.app.get_weights()), dict(model.coverage))


def workers_below(spec: Spec, node_id: str) -> list:
    """The workers in the subtree of ``node_id``."""
    node = spec.node(node_id)
    if node.is_worker:
        return [node.id]
    return [worker for child in node.children for worker in workers_below(spec, child)]


class ParameterServer:
    """An inner node of the tree: merges its children's updates and serves its model."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        node = runtime.node
        self.children = set(node.children)
        self.workers_below = workers_below(runtime.spec, node.id)
        self.model = ModelState(runtime.new_application(runtime.spec.nodes.index(node)))
        children = [runtime.spec.node(child) for child in node.children]
        self.schema = Schema.for_model(self.model.app.get_weights(), protocol.REQUESTS,
                                       accepting(*(child.codec for child in children)))
        self.pull_codecs = {child.id: pull_chain(runtime.spec, child) for child in children}
        self.pull_gate = PullGate(runtime, self.model)
        self.router = runtime.sockets.open(zmq.ROUTER, self.schema.max_frame_bytes())
        self.router.bind(runtime.wiring.bind_address(node.id))
        policy = create_policy(node.policy.type, node.policy.params, trains=False)
        self.exchange = Exchange(runtime, self.model, policy)
        self.aggregation = create_aggregation(node.aggregation.type, node.aggregation.params)
        self.pending = PendingUpdates()
        self.done: Set[str] = set()
        self.last_seq: Dict[str, int] = {}
        self.merges = self.samples = 0
        self.syncing = False  # every worker below has delivered its last window
        self.held: Optional[Shown] = None   # shown while the parent's round of our last push is open
        self.held_since = 0.0
        self.last_heard = time.time()
        self.patience = max(10.0, 5 * runtime.interval)

    @property
    def run_end(self) -> float:
        """When the last window's final synchronisation may end."""
        return self.runtime.window_end(self.runtime.spec.windows.limit - 1) + self.runtime.sync_wait

    def run(self) -> Dict[str, Any]:
        """Serve, merge and exchange until every child is done; the DONE summary."""
        self.exchange.begin(self.runtime.start_at)
        self.exchange.pull()
        while not self._finished():
            self._serve(time.time() + TICK_SECONDS)
            if self.held is not None and self.exchange.poll_round(self.held_since):
                self.held = None
            while self.held is None and self.aggregation.due(self.pending.queue(), self._live(),
                                                             self.runtime.interval):
                self._merge()
            self.exchange.at(Moment.TICK, self.merges)
            # Latched: the final sync's first pull may bring a parent model that has not
            # merged our last window yet, lowering our coverage; syncing must go on anyway.
            self.syncing = self.syncing or covers(self.model.coverage, self.workers_below,
                                                  self.runtime.spec.windows.limit - 1)
            if self.syncing:
                self.exchange.sync_step()
        while self.pending:
            self._merge()
        self.exchange.leave()
        return {"merges": self.merges, "samples": self.samples, "complete": self.exchange.complete(),
                "coverage": dict(self.model.coverage), "children_done": sorted(self.done),
                **self.runtime.evaluate(self.model.app), **self.exchange.usage(), **self.pull_gate.summary()}

    def _live(self) -> FrozenSet[str]:
        """The children that have not said DONE."""
        return frozenset(self.children - self.done)

    def _finished(self) -> bool:
        if self.children <= self.done:
            return True
        now = time.time()
        return now > self.run_end and now - self.last_heard > self.patience

    # -- serving
    def _serve(self, until: float) -> None:
        while (remaining := until - time.time()) > 0 and self.runtime.poll(self.router, remaining):
            identity, *frames = self.router.recv_multipart(copy=False)
            self._handle(identity.bytes, frames)

    def _handle(self, identity: bytes, frames: list) -> None:
        request = self.runtime.decode(frames, self.schema, identity.hex())
        if request is None:
            return
        if request.sender not in self.children:
            self.runtime.log_malformed(f"{request.type} from {request.sender!r}, which is not a child of "
                                       f"{self.runtime.ident!r}", request.sender, frames)
            return
        self.runtime.log_message("received", request.sender, request, frames)
        self.last_heard = time.time()
        reply = {PULL: self._model, PUSH: self._queue, DONE: self._child_done}[request.type](request)
        reply_frames = protocol.encode(reply)
        self.router.send_multipart([identity, *reply_frames], copy=False)
        self.runtime.log_message("sent", request.sender, reply, reply_frames)

    def _model(self, request: Message) -> Message:
        """The reply to a pull: the model, or ``NOT_MODIFIED`` if the child waits for a newer
        version than this one or its policy lets it go without (:mod:`edgetestbed.nodes.notmodified`)."""
        shown = self.held or Shown.of(self.model)
        if request.waiting and request.version == shown.version:   # nothing newer than the child holds
            return request.reply(NOT_MODIFIED, self.runtime.ident, version=shown.version,
                                 coverage=dict(shown.coverage))
        not_modified = self.held is None and self.pull_gate.not_modified_for(request.sender, request.version)
        self.pull_gate.answered(request.sender, not_modified)
        if not_modified:
            return request.reply(NOT_MODIFIED, self.runtime.ident, version=self.model.version,
                                 coverage=dict(self.model.coverage))
        return request.reply(MODEL, self.runtime.ident, version=shown.version, coverage=dict(shown.coverage),
                             arrays=shown.weights, codec=self.pull_codecs[request.sender])

    def _queue(self, request: Message) -> Message:
        """Queue a child's update, once: a resent PUSH (same seq) is acknowledged again only."""
        if self.last_seq.get(request.sender) != request.seq:
            self.last_seq[request.sender] = request.seq
            self.pending.add(request.sender, Update(list(request.arrays), request.samples, dict(request.coverage)),
                             request.version)
        return request.reply(ACK, self.runtime.ident, version=self.model.version)

    def _child_done(self, request: Message) -> Message:
        self.done.add(request.sender)
        return request.reply(ACK, self.runtime.ident, version=self.model.version)

    # -- merging
    def _merge(self) -> None:
        watch = Stopwatch()
        self.exchange.at(Moment.STEP_START, self.merges)
        before_merge = Shown.of(self.model) if self.exchange.round_patience is not None else None
        queue = self.pending.queue()
        described = self.aggregation.describe(queue, self._live())
        batch = self.pending.take(self.model.version, self.aggregation.taking(queue))
        updates = list(batch.updates.values())
        weights = self.aggregation.weights([u.samples for u in updates], batch.stalest())
        before = self.runtime.evaluate(self.model.app)
        self.model.merge(updates, weights)
        samples = sum(update.samples for update in updates)
        self.samples += samples
        weighed = {} if weights is None else {"weights": dict(zip(batch.updates, weights))}
        self.runtime.log.write(STATISTIC, merge=self.merges, children=sorted(batch.updates), samples=samples,
                               version=self.model.version, coverage=dict(self.model.coverage),
                               **self.runtime.evaluate(self.model.app), before=before, staleness=batch.staleness,
                               **weighed, **described, **watch.fields())
        self.exchange.at(Moment.STEP_END, self.merges)
        self.merges += 1
        if not self.exchange.round_open():   # our update is in the parent's open round
            self.held, self.held_since = before_merge, self.exchange.wait_round()
