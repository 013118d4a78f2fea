"""A ``sync`` server's children must be able to keep its rounds.

An aggregation that runs rounds (``sync``, :mod:`edgetestbed.aggregation.sync`) merges once
per round with an update from every child, and its workers wait for each round to open; a
child whose policy does not pull before and push after the same steps (``time``,
``downpour``, a trigger that holds updates back) would leave every round waiting for its
timeout. Checked on the resolved nodes, since a node's policy and its parent's aggregation
may both come from ``defaults``; reported where the child's policy was written::

    topo.yaml:9: nodes[1].policy.type: 'time' cannot keep the rounds of 'root' (aggregation sync);
        expected a policy that pulls before and pushes after the same steps: simple, window
"""

from __future__ import annotations

from typing import Optional, Sequence

from edgetestbed.aggregation import AGGREGATIONS
from edgetestbed.errors import UserError
from edgetestbed.params.plugins import Registry
from edgetestbed.policies import POLICIES
from edgetestbed.spec.model import NodeSpec
from edgetestbed.spec.problems import Problems
from edgetestbed.spec.schema import SpecIn


def _rounds(registry: Registry, name: str) -> Optional[bool]:
    """The class's ``rounds``, or None when it is not found here (left to the processes)."""
    try:
        return bool(registry.get(name).rounds)
    except UserError:
        return None


def check_rounds(model: SpecIn, nodes: Sequence[NodeSpec], problems: Problems) -> None:
    """Every child of a server whose aggregation runs rounds has a policy that keeps them."""
    by_id = {node.id: node for node in nodes}
    keeping = ", ".join(name for name in POLICIES.names() if POLICIES.get(name).rounds)
    for index, (given, node) in enumerate(zip(model.nodes, nodes)):
        parent = by_id.get(node.parent) if node.parent else None
        if parent is None or not _rounds(AGGREGATIONS, parent.aggregation.type):
            continue
        if _rounds(POLICIES, node.policy.type) is False:
            path = ("nodes", index, "policy", "type") if given.policy is not None else ("defaults", "policy", "type")
            problems.add(path, f"{node.policy.type!r} cannot keep the rounds of {parent.id!r} (aggregation "
                         f"{parent.aggregation.type}); expected a policy that pulls before and pushes after the "
                         f"same steps: {keeping}")
