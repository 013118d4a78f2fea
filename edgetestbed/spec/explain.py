"""Schema errors, in the user's words: what is wrong, where in the document, what was expected."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from edgetestbed.params.fields import bare, closest, describe, did_you_mean
from edgetestbed.params.units import quote
from edgetestbed.spec.problems import DocPath, Problems
from edgetestbed.spec.schema import SpecIn, InputModel


def validate_input(data: dict, problems: Problems) -> SpecIn | None:
    """The validated input, or None after adding every schema error to ``problems``."""
    try:
        return SpecIn.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
    misspelt = set()
    explained = []
    for error in errors:
        keep_key = error["type"] in ("missing", "extra_forbidden")
        path = document_path(error["loc"], data, keep_key)
        if error["type"] == "extra_forbidden":
            guess = closest(error["loc"][-1], _allowed_keys(error["loc"][:-1]))
            misspelt.update([(*path[:-1], guess)] if guess else [])
        explained.append((error["type"], path, _explain(error)))
    for kind, path, message in explained:
        if not (kind == "missing" and path in misspelt):   # already said: "did you mean ...?"
            problems.add(path, message)
    return None


def document_path(loc: tuple, data: object, keep_key: bool) -> DocPath:
    """Pydantic's ``loc`` as a path in the document: union tags dropped, list indices kept.

    A key the document lacks is kept only at the end of a "missing" or "unknown key" error.
    """
    path, value = [], data
    for position, key in enumerate(loc):
        if isinstance(value, dict) and key in value or (
                isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)):
            path.append(key)
            value = value[key]
        elif keep_key and position == len(loc) - 1:
            path.append(key)
    return tuple(path)


def _explain(error: dict) -> str:
    """One pydantic error as "what is wrong; expected ..."."""
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return (f"unknown key {quote(loc[-1])}{did_you_mean(loc[-1], allowed)}; "
                f"expected one of {', '.join(allowed)}")
    if kind == "invalid_key":
        return f"the key {quote(error['input'])} is not text; expected a name (quote it if need be)"
    if kind == "missing":
        return f"missing; expected {_expected_at(loc)}"
    return f"got {describe(error['input'])}; expected {_expected_at(loc)}"


def _expected_at(loc: tuple) -> str:
    shape, info = _schema_at(loc)
    if isinstance(shape, type) and issubclass(shape, InputModel):
        return shape.expected()
    return info.description if info is not None and info.description else "a valid value"


def _allowed_keys(loc: tuple) -> list[str]:
    shape, _ = _schema_at(loc)
    return list(shape.model_fields) if isinstance(shape, type) and issubclass(shape, BaseModel) else []


def _schema_at(loc: tuple) -> tuple[Any, Any]:
    """The input type pydantic validated at ``loc`` and the model field it came from."""
    shape, info = SpecIn, None
    for key in loc:
        shape = bare(shape)
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            info = shape.model_fields.get(key) if isinstance(key, str) else None
            shape = info.annotation if info is not None else None
        elif get_origin(shape) is list:
            shape = get_args(shape)[0]
    return bare(shape), info
