"""The ``accuracy`` trigger's pull side: when a parent may answer a pull ``NOT_MODIFIED``.

The seed simulator skips a model pull too when the parent's model is no better than the
one the child has. A parent cannot know the child's policy from the wire, but every node
reads the same spec: for a child whose policy is ``accuracy``, the parent evaluates its
own model on the same fixed validation sample the child's trigger uses
(:meth:`~edgetestbed.nodes.view.NodeModelView.validation_accuracy`, drawn with the spec's
seed; once per model version, since a parent serves many pulls between merges) and
remembers, per child, what it last sent. It answers ``NOT_MODIFIED`` (no weights) when

* the child still holds that model: its ``PULL`` names the version it last adopted, so a
  restarted child, or one whose ``MODEL`` reply was lost, gets the model again;
* the accuracy moved by less than the child's ``threshold`` since;
* the model brings the child no worker's last window it has not had: the final
  synchronisation needs every last window to reach every node, and a model that adds one
  may score no better (the run would then never complete); and
* fewer than ``max_wait - 1`` of the child's pulls in a row were answered ``NOT_MODIFIED``:
  as on the push side, no child goes without its parent's model forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Tuple

from edgetestbed.nodes.model import ModelState
from edgetestbed.nodes.view import NodeModelView
from edgetestbed.policies.accuracy import Accuracy
from edgetestbed.process.runtime import Runtime

ACCURACY_POLICY = Accuracy.name


@dataclass(frozen=True)
class Sent:
    """What a parent last sent a child: the model's version, accuracy and coverage."""

    version: int
    accuracy: float
    coverage: Mapping[str, int]


@dataclass(frozen=True)
class Rule:
    """A child's ``accuracy`` parameters that bear on its pulls."""

    threshold: float
    sample: int
    max_wait: int

    @classmethod
    def of(cls, params: Mapping[str, object]) -> "Rule":
        """From the child's resolved policy parameters (the trigger's defaults already applied)."""
        return cls(float(params["threshold"]), int(params["sample"]), int(params["max_wait"]))


class PullGate:
    """Decides, per pull, between a ``MODEL`` and a ``NOT_MODIFIED`` reply; counts the latter."""

    def __init__(self, runtime: Runtime, model: ModelState) -> None:
        self.model = model
        self.view = NodeModelView(runtime, model)
        self.last_window = runtime.spec.windows.limit - 1
        self.rules: Dict[str, Rule] = {}
        for child in runtime.node.children:
            policy = runtime.spec.node(child).policy
            if gets_not_modified(policy.type):
                self.rules[child] = Rule.of(policy.params)
        self.sent: Dict[str, Sent] = {}
        self.in_a_row: Dict[str, int] = {}   # NOT_MODIFIED replies since the child's last model
        self._scores: Dict[Tuple[int, int, int], float] = {}
        self.not_modified = 0

    def not_modified_for(self, child: str, held_version: int) -> bool:
        """Whether ``child``, holding the model of ``held_version``, gets ``NOT_MODIFIED`` now."""
        rule, sent = self.rules.get(child), self.sent.get(child)
        if rule is None or sent is None or sent.version != held_version:
            return False
        if self._adds_last_window(sent.coverage) or self.in_a_row.get(child, 0) >= rule.max_wait - 1:
            return False
        return abs(self._accuracy(rule.sample) - sent.accuracy) < rule.threshold

    def answered(self, child: str, not_modified: bool) -> None:
        """Record a reply to ``child``'s pull: a model sent, or one more ``NOT_MODIFIED``."""
        if not_modified:
            self.not_modified += 1
            self.in_a_row[child] = self.in_a_row.get(child, 0) + 1
        elif child in self.rules:
            self.in_a_row[child] = 0
            self.sent[child] = Sent(self.model.version, self._accuracy(self.rules[child].sample),
                                    dict(self.model.coverage))

    def _adds_last_window(self, sent: Mapping[str, int]) -> bool:
        return any(window >= self.last_window and sent.get(worker) != window
                   for worker, window in self.model.coverage.items())

    def _accuracy(self, sample: int) -> float:
        # A server's version counts its merges; adopting its parent's model changes the
        # weights but only the base version.
        key = (self.model.version, self.model.base_version, sample)
        if key not in self._scores:
            self._scores[key] = self.view.validation_accuracy(sample)
        return self._scores[key]

    def summary(self) -> Dict[str, int]:
        """DONE fields: ``pulls_not_modified`` when some child's policy could get one."""
        return {"pulls_not_modified": self.not_modified} if self.rules else {}


def gets_not_modified(policy_type: str) -> bool:
    """Whether a parent may answer the pulls of a child with this policy ``NOT_MODIFIED``; only
    such a child names its model's version in its ``PULL`` (the others' keep their bytes)."""
    return policy_type == ACCURACY_POLICY
