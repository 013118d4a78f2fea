"""``downpour``: Downpour SGD, exchanging every so many mini-batches."""

from __future__ import annotations

from pydantic import Field

from edgetestbed.params.fields import count
from edgetestbed.params.plugins import PluginParams
from edgetestbed.policies.base import POLICIES
from edgetestbed.policies.counting import CountingPolicy

STEPS = "a number of training steps like 5"
Steps = count(1, 1_000_000, STEPS)


class DownpourParams(PluginParams):
    n_fetch: Steps = Field(description=STEPS)
    n_push: Steps = Field(description=STEPS)


@POLICIES.register
class Downpour(CountingPolicy):
    """Downpour SGD: pulls before every ``n_fetch``-th and pushes after every ``n_push``-th
    mini-batch; on a parameter server (no mini-batches) the same counts apply to its merges."""

    name = "downpour"
    rank = 3
    Params = DownpourParams

    def __init__(self, params: DownpourParams, trains: bool) -> None:
        super().__init__(params, int(params.n_fetch), int(params.n_push), batched=trains)
