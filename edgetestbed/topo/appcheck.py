"""The spec's ``application:`` keys, checked against the chosen application's ``Params`` model.

:func:`load_spec` calls :func:`check_application` on the raw document, next to the tree
checks, so that a misspelt or out-of-range parameter is reported with file, line and
field at ``validate`` time, with every other problem, instead of by the nodes once the
network is built::

    topo.yaml:4: application.hiden: unknown key 'hiden' (did you mean 'hidden'?); expected one of ...
    topo.yaml:5: application.learning_rate: -3 is too small; expected a number above 0

The model is the one the application itself builds from (see
:mod:`edgetestbed.applications.base`), so ``validate`` accepts exactly what the nodes
accept. Reading it imports the application's module (numpy, for the built-in ones). A
``module:Class`` whose module is not found here, or whose ``Params`` is ``None``, keeps its
parameters unchecked.
"""

from __future__ import annotations

import re
from typing import Any, Callable, get_args, get_origin

from pydantic import BaseModel, ValidationError

from edgetestbed.applications.registry import BUILTIN, ApplicationNotFound, application_class
from edgetestbed.errors import UserError
from edgetestbed.topo.spec import (CLASS_PATTERN, DocPath, _bare, _describe, _did_you_mean,
                                   _document_path)
from edgetestbed.topo.units import number_text, quote

Report = Callable[[DocPath, str], None]   # _Problems.add: a place in the document, a message

# pydantic's type errors as the noun the value should have been
NOUNS = {"int_type": "a whole number", "int_from_float": "a whole number", "float_type": "a number",
         "finite_number": "a finite number", "bool_type": "true or false", "string_type": "text",
         "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
         "model_attributes_type": "a mapping"}
# a bound pydantic reports in ``ctx``: (too what, how the expected range reads)
BOUNDS = {"gt": ("small", "above"), "ge": ("small", "of at least"), "lt": ("large", "below"),
          "le": ("large", "of at most")}


def check_application(data: object, report: Report) -> None:
    """Report every problem of ``data['application']``'s parameters through ``report``.

    ``data`` is the whole document as plain data. What the schema already refuses (no
    mapping, a bad ``name``, keys that are not text) is left to it.
    """
    section = data.get("application") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return
    model = _params_model(section.get("name"), report)
    if model is None:
        return
    params = {key: value for key, value in section.items() if key != "name" and isinstance(key, str)}
    try:
        model.model_validate(params)
    except ValidationError as error:
        for problem in error.errors():
            keep_key = problem["type"] in ("missing", "extra_forbidden")
            report(_document_path(("application", *problem["loc"]), data, keep_key),
                   _explain(problem, model))


def _params_model(name: object, report: Report) -> type | None:
    """The ``Params`` model of application ``name``, or None when there is none to check."""
    if not isinstance(name, str) or not (name in BUILTIN or CLASS_PATTERN.fullmatch(name)):
        return None   # the schema reports the name
    try:
        model = application_class(name).Params
    except ApplicationNotFound:
        return None   # perhaps installed only where it runs; the nodes say so if not
    except UserError as error:   # the path names the application already
        problem = str(error).removeprefix(f"application {name!r}: ")
        report(("application", "name"), f"{problem}; expected module.path:ClassName of a concrete "
               "Application subclass that imports")
        return None
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        report(("application", "name"), f"{name}.Params is {quote(model)}; expected a pydantic "
               "model (a subclass of edgetestbed.applications.ApplicationParams) or None")
        return None
    return model


def _explain(problem: dict, model: type) -> str:
    """One pydantic error of ``model`` as "what is wrong; expected ...", as the spec words it."""
    kind, loc, value, ctx = problem["type"], problem["loc"], problem.get("input"), problem.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = list(parent.model_fields) if parent is not None else []
        expected = f"one of {', '.join(known)}" if known else "no parameters for this application"
        return f"unknown key {quote(loc[-1])}{_did_you_mean(loc[-1], known)}; expected {expected}"
    if kind == "missing":
        return f"missing; expected {_description(model, loc) or 'a value'} (the application has no default)"
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"]) or [ctx["expected"]]
        noun = loc[-1] if loc and isinstance(loc[-1], str) else "value"
        return (f"{quote(value)} is not a known {noun}{_did_you_mean(value, choices)}; "
                f"expected one of {', '.join(choices)}")
    bound = next((key for key in BOUNDS if key in ctx), None)
    if bound is not None:
        return f"{quote(value)} is too {BOUNDS[bound][0]}; expected {_range(bound, ctx[bound])}"
    return f"got {_describe(value)}; expected {_expected(kind, problem['msg'], model, loc)}"


def _range(bound: str, limit: float) -> str:
    """The values a bound allows: ``a number above 0``, ``a whole number of at least 1``."""
    if isinstance(limit, int) and bound in ("gt", "lt"):   # gt 0 is ge 1 in whole numbers
        bound, limit = ("ge", limit + 1) if bound == "gt" else ("le", limit - 1)
    noun = "a whole number" if isinstance(limit, int) else "a number"
    return f"{noun} {BOUNDS[bound][1]} {number_text(limit)}"


def _expected(kind: str, message: str, model: type, loc: tuple) -> str:
    """What the value should have been: the field's own words, or its type's, with an example."""
    description = _description(model, loc)
    if description:
        return description
    noun = NOUNS.get(kind) or message.removeprefix("Input should be ")
    info = model.model_fields.get(loc[0]) if len(loc) == 1 else None
    if info is None or info.is_required() or info.default in (None, [], {}, ""):
        return noun   # no default, or one that shows nothing
    return f"{noun} like {quote(info.default)}"


def _description(model: type, loc: tuple) -> str | None:
    """The ``description`` a field of ``model`` (at ``loc``) was declared with, if any."""
    parent = _model_at(model, loc[:-1])
    if parent is None or not loc or not isinstance(loc[-1], str):
        return None
    info = parent.model_fields.get(loc[-1])
    return info.description if info is not None else None


def _model_at(model: type, loc: tuple) -> type | None:
    """The model nested in ``model`` at ``loc`` (through fields and lists), if there is one."""
    shape: Any = model
    for key in loc:
        shape = _bare(shape)
        if isinstance(shape, type) and issubclass(shape, BaseModel) and isinstance(key, str):
            info = shape.model_fields.get(key)
            shape = info.annotation if info is not None else None
        elif get_origin(shape) is list and isinstance(key, int):
            shape = get_args(shape)[0]
        else:
            return None
    shape = _bare(shape)
    return shape if isinstance(shape, type) and issubclass(shape, BaseModel) else None
