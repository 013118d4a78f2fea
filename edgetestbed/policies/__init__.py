"""Exchange policies: when a node pulls its parent's model and pushes its own update.

Each policy is one class in one module of this package, registered by name
(``@POLICIES.register``): ``simple`` (every window), ``time`` (on the clock), ``window``
(every ``every`` windows), ``downpour`` (every so many mini-batches), and the learning-based
triggers ``significance``, ``relevance`` and ``accuracy`` (push when the model says the update
is worth it: :mod:`edgetestbed.policies.trigger`; they see the model through a read-only
:class:`~edgetestbed.policies.view.ModelView`). The spec's
``policy: {type: NAME, ...}`` picks one and its other keys are the policy's ``Params``,
checked by ``validate`` with file, line and field. ``type: module.path:ClassName`` picks a
researcher's own :class:`Policy` subclass, importable where the run starts; it needs no
change here. The events a node reports, and when: :mod:`edgetestbed.policies.base`.
Adding one: ``docs/architecture.md``.
"""

from __future__ import annotations

from typing import Mapping

from edgetestbed.policies.base import POLICIES, Event, Moment, Policy
from edgetestbed.policies.view import ModelView

__all__ = ["POLICIES", "Event", "Moment", "ModelView", "Policy", "create_policy"]


def create_policy(kind: str, params: Mapping[str, object], trains: bool) -> Policy:
    """The policy a resolved spec's ``policy: {type: kind, **params}`` describes, for a node
    that ``trains`` (a worker: mini-batches exist) or not (a parameter server).

    ``params`` are the spec's resolved values (seconds, not ``2s``), which loading the
    spec validated with the policy's own model; they are not checked again here.
    """
    cls = POLICIES.get(kind)
    return cls(cls.Params.model_construct(**params), trains)
