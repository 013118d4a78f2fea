"""The simple policy's cost model of a tree link: the model transfers its protocol makes, in wire bytes.

:func:`cost_model` is called by :mod:`edgetestbed.analysis.netcost` for every tree link whose
child runs the ``simple`` policy (other policies get ``{"policy": ..., "applies": false}``).

What it assumes, from the protocol as the nodes implement it (``edgetestbed/nodes``: the
worker's ``run`` and ``_synchronise``, the parameter server's ``run`` and ``_merge``,
:class:`~edgetestbed.nodes.upstream.Exchange`, the ``simple`` policy):

- **joining**: the child pulls its parent's model once when its process starts (``joins``: the
  ``START`` events in its log, so a restarted child joins again);
- **steps**: it pulls before and pushes after each step, a worker's window or a parameter
  server's merge (``steps``: the child's ``STATISTIC`` events, one per step): 2 × ``steps``;
- **final synchronisation**: after its last step the child pulls every quarter window until its
  model holds every worker's last window, or ``sync_wait`` is over. How many pulls that takes is
  not fixed by the protocol: it depends on when the other workers' last windows reach the root
  and come back down (more in a deeper tree or behind a slow link; none when the child's own last
  step completes the model, as with a single worker). So the model does not assume it:
  ``final_sync_pulls`` is the number of pulls the parent answered with a MODEL after the child's
  last step, as the parent logged them (the child, if the parent left no log). In a run cut short
  these are the pulls of a step the child never finished.
- a push after the last step (of the final synchronisation, or before ``DONE``) carries a model
  only when an earlier push failed, and a resent request (same ``seq``) goes on the wire again:
  the model counts neither; ``logged_transfers`` does;
- ``DONE`` and its ``ACK`` carry no model and are left out (a few hundred bytes).

So ``transfers`` = ``joins`` + 2 × ``steps`` + ``final_sync_pulls``. Only the last term comes
from counting the logs' model messages; a link whose capture holds more or fewer model messages
than that (a retry, a lost capture, traffic the logs do not explain) is off by about
1 / ``transfers`` per message in ``ratio``, and shows in ``extra_transfers``.

Bytes: ``expected_bytes`` = ``transfers`` × (``message_bytes`` × (1 + ``TCP_OVERHEAD``) +
``small_message_bytes`` + 2 × 52), i.e. each model message (``message_bytes``: the median logged
size, incl. header and ZMTP framing) cut into 1448-byte segments with 52 bytes of IPv4+TCP
headers each and one 52-byte acknowledgement per two segments (5.4 %), plus the small request or
reply of its exchange (PULL or ACK: their logged median size, in one segment, acknowledged
once). Against it ``measured_bytes`` (the capture's ``wire_bytes``, both directions), ``ratio``
= measured / expected and ``within_tolerance`` (|ratio − 1| ≤ ``COST_TOLERANCE``, 10 %).

Other fields: ``windows`` (the spec's), ``model_bytes`` (the arrays of one model, median of the
logs), ``simulator_estimate`` = 2 × windows × ``model_bytes`` (what simulators report),
``logged_transfers`` (model messages the senders logged on the link), ``captured_transfers``
(model-sized bursts in the capture), ``extra_transfers`` = captured − ``transfers`` (0 in a run
without retries).
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from edgetestbed.analysis.runlogs import Event, RunLogs
from edgetestbed.measure.headers import SEGMENT_HEADERS
from edgetestbed.process.eventlog import START, STATISTIC
from edgetestbed.process.protocol import ACK, MODEL, PULL, PUSH

COST_TOLERANCE = 0.10
MSS = 1500 - SEGMENT_HEADERS
TCP_OVERHEAD = (SEGMENT_HEADERS + SEGMENT_HEADERS / 2) / MSS
MODEL_CARRIERS = (MODEL, PUSH)


def cost_model(run: RunLogs, child: str, item: Mapping[str, Any], to_child: Sequence[Event],
               from_child: Sequence[Event]) -> dict:
    """The simple policy's expected bytes on the tree link ``item`` against the measured
    (uncoded: a child whose pushes or pulled models are coded has messages of two sizes, which
    it does not model).

    ``to_child`` and ``from_child``: the CONNECTION events of what the parent sent the child and
    the child sent the parent, as :mod:`~edgetestbed.analysis.netcost` reads them for the payload.
    """
    policy = run.spec.node(child).policy.type
    if policy != "simple" or run.spec.node(child).codec or run.spec.node(child).pull_codec:
        return {"policy": policy, "applies": False}
    logged = [e.payload for e in (*to_child, *from_child)]
    if not any(_carries_model(m) for m in logged):
        return {"policy": policy, "applies": True, "expected_bytes": None, "note": "no model messages logged"}
    if not run.logs.get(child):
        return {"policy": policy, "applies": True, "expected_bytes": None,
                "note": f"{child} left no log: its joins and steps are unknown"}
    phases = protocol_transfers(run, child, to_child)
    transfers = phases["joins"] + 2 * phases["steps"] + phases["final_sync_pulls"]
    sizes = message_sizes(logged)
    expected = transfers * (sizes["message_bytes"] * (1 + TCP_OVERHEAD) + sizes["small_message_bytes"]
                            + 2 * SEGMENT_HEADERS)
    ratio = item["wire_bytes"] / expected
    captured = sum(item["model_messages"].values())
    windows = run.spec.windows.limit
    return {"policy": policy, "applies": True, "windows": windows, **phases, "transfers": transfers, **sizes,
            "simulator_estimate": 2 * windows * sizes["model_bytes"], "expected_bytes": round(expected),
            "measured_bytes": item["wire_bytes"], "ratio": ratio,
            "within_tolerance": abs(ratio - 1) <= COST_TOLERANCE, "tolerance": COST_TOLERANCE,
            "logged_transfers": len([m for m in logged if _carries_model(m)]), "captured_transfers": captured,
            "extra_transfers": captured - transfers}


def message_sizes(logged: Sequence[Mapping[str, Any]]) -> dict:
    """Median logged sizes: ``model_bytes`` (arrays), ``message_bytes`` (a model message) and
    ``small_message_bytes`` (the PULL or ACK of a model's exchange)."""
    models = [m for m in logged if _carries_model(m)]
    small = [m["bytes"] for m in logged if m.get("kind") in (PULL, ACK)]
    return {"model_bytes": int(statistics.median(m["payload_bytes"] for m in models)),
            "message_bytes": int(statistics.median(m["bytes"] for m in models)),
            "small_message_bytes": statistics.median(small) if small else 0}


def _carries_model(message: Mapping[str, Any]) -> bool:
    return message.get("kind") in MODEL_CARRIERS and bool(message.get("payload_bytes"))


def protocol_transfers(run: RunLogs, child: str, to_child: Sequence[Event]) -> dict:
    """``joins``, ``steps`` and ``final_sync_pulls`` of ``child`` from the run's logs (see above)."""
    steps = run.events(child, STATISTIC)
    joins = len(run.events(child, START)) or 1  # a log cut before its START still joined once
    # The child's last step ends with its STATISTIC (a worker's, after the push) or its push (a
    # server's, after the STATISTIC): a MODEL sent after it answers a pull of neither its joins nor
    # its steps. Sender and child share the host's clock (Mininet hosts are namespaces).
    last_step = max((e.ts for e in steps), default=None)
    # One pull per seq: the replies to a resent PULL share its seq.
    pulls = {e.payload.get("seq") for e in to_child
             if e.payload.get("kind") == MODEL and last_step is not None and e.ts > last_step}
    return {"joins": joins, "steps": len(steps), "final_sync_pulls": len(pulls)}
