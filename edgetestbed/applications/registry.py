"""Applications by name: the built-in ones, or ``module:Class`` for a user's own task.

A user's class must subclass :class:`~edgetestbed.applications.base.Application` and be
importable by the node processes (installed, or in the directory the run starts from).
``validate`` imports it too, to check the spec's parameters against its ``Params``; where
its module is not found, they pass unchecked.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from edgetestbed.applications.base import Application, parse_params
from edgetestbed.errors import UserError
from edgetestbed.params.plugins import load_class

BUILTIN = {
    "mnist_mlp": "edgetestbed.applications.mnist_mlp:MnistMLP",
    "svm": "edgetestbed.applications.svm:ParitySVM",
    "aqi": "edgetestbed.applications.aqi:AqiRegressor",
}


def application_class(name: str) -> type:
    """The :class:`Application` subclass a spec names; :class:`UserError` if there is none
    (:class:`~edgetestbed.params.plugins.PluginNotFound` if its module is not found)."""
    target = BUILTIN.get(name, name)
    if ":" not in target:
        raise UserError(f"unknown application {name!r}: built in are {', '.join(sorted(BUILTIN))}; "
                        "for your own task write module:Class")
    return load_class(target, Application, "application", name)


def create_application(name: str, params: Optional[Mapping[str, Any]] = None, seed: int = 0) -> Application:
    """A new model of application ``name`` with ``params`` and ``seed``.

    :class:`UserError` for an unknown name or bad parameters, naming the application as the
    spec does.
    """
    cls = application_class(name)
    parse_params(cls.Params, params, repr(name))
    return cls(params, seed)
