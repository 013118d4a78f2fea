"""``window``: exchange every ``every`` windows."""

from __future__ import annotations

from pydantic import Field

from edgetestbed.params.fields import count
from edgetestbed.params.plugins import PluginParams
from edgetestbed.policies.base import POLICIES
from edgetestbed.policies.counting import CountingPolicy


WINDOWS = "a number of windows like 2"
Windows = count(1, 10_000, WINDOWS)


class WindowParams(PluginParams):
    every: Windows = Field(description=WINDOWS)


@POLICIES.register
class Window(CountingPolicy):
    """Like ``simple``, every ``every`` windows: pulls before windows 0, k, 2k, ..., pushes
    after windows k-1, 2k-1, ... (a parameter server counts its merges)."""

    name = "window"
    rank = 2
    rounds = True
    Params = WindowParams

    def __init__(self, params: WindowParams, trains: bool) -> None:
        super().__init__(params, int(params.every), int(params.every))
