"""``simple``: pull before and push after every window (a parameter server: every merge)."""

from __future__ import annotations

from edgetestbed.params.plugins import PluginParams
from edgetestbed.policies.base import POLICIES
from edgetestbed.policies.counting import CountingPolicy


@POLICIES.register
class Simple(CountingPolicy):
    """Pulls before and pushes after every window (a parameter server: every merge)."""

    name = "simple"
    rank = 0   # the default policy, listed first
    rounds = True

    def __init__(self, params: PluginParams, trains: bool) -> None:
        super().__init__(params, 1, 1)
