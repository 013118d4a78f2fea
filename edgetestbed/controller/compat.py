"""The Ryu API from whichever framework runs the app: Ryu, or os-ken (same API, ``os_ken.*``).

Under ``ryu-manager`` or ``osken-manager`` the framework's ``base.app_manager`` is already
imported when the app loads, and that framework is used even if the other is installed too
(an app must subclass the running framework's base class). Imported on its own, the first
installed framework of :data:`edgetestbed.controller.FRAMEWORKS` is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from edgetestbed.controller import FRAMEWORKS


def _framework() -> str:
    for name in FRAMEWORKS:
        if f"{name}.base.app_manager" in sys.modules:
            return name
    for name in FRAMEWORKS:
        if importlib.util.find_spec(name) is not None:
            return name
    raise ImportError("neither ryu nor os_ken is installed (apt install python3-os-ken)")


def _load(module: str):
    return importlib.import_module(f"{FRAMEWORK}.{module}")


FRAMEWORK = _framework()
app_manager = _load("base.app_manager")
ofp_event = _load("controller.ofp_event")
handler = _load("controller.handler")
ofproto_v1_3 = _load("ofproto.ofproto_v1_3")
hub = _load("lib.hub")
BaseApp = getattr(app_manager, "RyuApp", None) or app_manager.OSKenApp
set_ev_cls = handler.set_ev_cls
CONFIG_DISPATCHER, MAIN_DISPATCHER, DEAD_DISPATCHER = (
    handler.CONFIG_DISPATCHER, handler.MAIN_DISPATCHER, handler.DEAD_DISPATCHER)
