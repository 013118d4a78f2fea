"""Applications by name: the built-in ones, or ``module:Class`` for a user's own task.

A user's class must subclass :class:`~edgetestbed.applications.base.Application` and be
importable by the node processes (installed, or in the directory the run starts from).
``validate`` imports it too, to check the spec's parameters against its ``Params``; where
its module is not found, they pass unchecked.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping, Optional

from edgetestbed.applications.base import Application, parse_params
from edgetestbed.errors import UserError

BUILTIN = {
    "mnist_mlp": "edgetestbed.applications.mnist_mlp:MnistMLP",
    "svm": "edgetestbed.applications.svm:ParitySVM",
    "aqi": "edgetestbed.applications.aqi:AqiRegressor",
}


class ApplicationNotFound(UserError):
    """The module of a ``module:Class`` application is not installed here (or misspelt)."""


def application_class(name: str) -> type:
    """The :class:`Application` subclass a spec names; :class:`UserError` if there is none
    (:class:`ApplicationNotFound` if its module is not found)."""
    target = BUILTIN.get(name, name)
    if ":" not in target:
        raise UserError(f"unknown application {name!r}: built in are {', '.join(sorted(BUILTIN))}; "
                        "for your own task write module:Class")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:   # a user's module may fail in any way as it is imported
        # Not found is the module itself (or its package) missing, not one it imports.
        missing = isinstance(error, ModuleNotFoundError) and f"{module_name}.".startswith(f"{error.name}.")
        raise (ApplicationNotFound if missing else UserError)(
            f"application {name!r}: cannot import module {module_name!r} ({error})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Application)) or inspect.isabstract(cls):
        raise UserError(f"application {name!r}: {module_name}.{class_name} is not a concrete subclass "
                        "of edgetestbed.applications.Application")
    return cls


def create_application(name: str, params: Optional[Mapping[str, Any]] = None, seed: int = 0) -> Application:
    """A new model of application ``name`` with ``params`` and ``seed``.

    :class:`UserError` for an unknown name or bad parameters, naming the application as the
    spec does.
    """
    cls = application_class(name)
    parse_params(cls.Params, params, repr(name))
    return cls(params, seed)
