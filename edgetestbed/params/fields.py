"""The values a spec holds, as pydantic field types: parsed, bounded, and written back.

Shared by the spec's own schema (:mod:`edgetestbed.spec.schema`) and by every plugin's
parameter model (exchange policies, data partitions), so that a plugin's ``push: 2s`` or
``bias: 1.5`` is read and refused in the same words as a link's ``delay``. A refused value
raises ``ValueError("what is wrong; expected ...")``, which the spec reports with file,
line and field. Nothing here knows the spec's layout.
"""

from __future__ import annotations

import difflib
import math
import re
import types
from typing import Annotated, Any, Callable, Mapping, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, PlainSerializer, Tag

from edgetestbed.params.units import (format_bandwidth, format_duration, number_text, parse_bandwidth,
                                      parse_duration, quote)


def bounded(parse: Callable[[object], float], low: float, high: float, *, show: Callable = number_text,
             low_open: bool = False, high_open: bool = False) -> Callable[[object], float]:
    """``parse``, then refuse what lies outside [low, high] (or the open ends)."""
    def check(value: object) -> float:
        number = parse(value)
        too_small = number < low or (low_open and number == low)
        too_large = number > high or (high_open and number == high)
        if too_small or too_large:
            lower = f"{'more than' if low_open else 'at least'} {show(low)}"
            upper = f"{'less than' if high_open else 'at most'} {show(high)}"
            raise ValueError(f"{quote(value)} is too {'small' if too_small else 'large'}; "
                             f"expected {lower} and {upper}")
        return number
    return check


def unit(kind: type, parse: Callable, fmt: Callable, low: float, high: float, **ends: bool) -> Any:
    """A quantity with a unit: parsed and bounded on input, written back with ``fmt``."""
    check = bounded(parse, low, high, show=fmt, **ends)
    return Annotated[kind, BeforeValidator(check), PlainSerializer(fmt)]


def number(expected: str) -> Callable[[object], float]:
    """A parser for a plain finite number (bool is not a number here)."""
    def parse(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{quote(value)} is not a number; expected {expected}")
        return float(value)
    return parse


def integer(expected: str) -> Callable[[object], int]:
    """A parser for a whole number (bool is not a number here)."""
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{quote(value)} is not a whole number; expected {expected}")
        return value
    return parse


def count(low: int, high: int, expected: str) -> Any:
    """A whole number in [low, high]; ``expected`` describes one, with an example."""
    return Annotated[int, BeforeValidator(bounded(integer(expected), low, high))]


def share(expected: str) -> Any:
    """A number from 0 to 1; ``expected`` describes one, with an example."""
    return Annotated[float, BeforeValidator(bounded(number(expected), 0, 1))]


# Words people write for our keys; a near miss of one of these suggests the key.
SYNONYMS = {"bandwidth": "bw", "latency": "delay", "packet_loss": "loss", "queue_size": "queue",
            "max_queue_size": "queue", "cores": "cpu", "cpus": "cpu", "mem": "memory",
            "interval_s": "interval", "windows_limit": "limit", "epochs_per_window": "epochs",
            "lr": "learning_rate"}


def closest(word: object, choices: list[str]) -> str | None:
    """The choice ``word`` most likely meant (by spelling, or as a synonym), if any."""
    candidates = {choice: choice for choice in choices}
    candidates.update((alias, key) for alias, key in SYNONYMS.items() if key in choices)
    close = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return candidates[close[0]] if close else None


def did_you_mean(word: object, choices: list[str]) -> str:
    guess = closest(word, choices)
    return f" (did you mean {guess!r}?)" if guess else ""


def choice(noun: str, *options: str) -> Any:
    """A string that must be one of ``options``; a near miss gets a did-you-mean."""
    def check(value: object) -> str:
        if value not in options:
            raise ValueError(f"{quote(value)} is not {noun}{did_you_mean(value, list(options))}; "
                             f"expected one of {', '.join(options)}")
        return value
    return Annotated[str, BeforeValidator(check)]


def matching(pattern: re.Pattern, noun: str, expected: str) -> Any:
    """A string that must match ``pattern`` completely."""
    def check(value: object) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"{quote(value)} is not {noun}; expected {expected}")
        return value
    return Annotated[str, BeforeValidator(check)]


def describe(value: object) -> str:
    """What a YAML value is, for "got ..." messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {quote(value)}"
    return quote(value)


def thaw(value: Any) -> Any:
    """Plain dicts and lists, deeply: a resolved spec freezes the YAML's mappings and lists
    (FrozenMap, tuples), and a strict model accepts only lists where the YAML had them."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value


def bare(shape: Any) -> Any:
    """``shape`` without ``Annotated[...]`` and ``Optional[...]`` around it."""
    while True:
        if get_origin(shape) is Annotated:
            shape = get_args(shape)[0]
            continue
        members = [member for member in get_args(shape) if member is not type(None)]
        if get_origin(shape) in (Union, types.UnionType) and len(members) == 1:
            shape = members[0]
            continue
        return shape


# A duration between exchanges, windows or events, like 3s.
Interval = unit(float, parse_duration, format_duration, 0.01, 3600)
# A link's bandwidth (or one to compare links with), like 10Mbit, in Mbit/s.
Bandwidth = unit(float, parse_bandwidth, format_bandwidth, 0.001, 100_000)


# pydantic's type errors as the noun the value should have been
NOUNS = {"int_type": "a whole number", "int_from_float": "a whole number", "float_type": "a number",
         "finite_number": "a finite number", "bool_type": "true or false", "string_type": "text",
         "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
         "model_attributes_type": "a mapping"}
# a bound pydantic reports in ``ctx``: (too what, how the expected range reads)
BOUNDS = {"gt": ("small", "above"), "ge": ("small", "of at least"), "lt": ("large", "below"),
          "le": ("large", "of at most")}


def explain(problem: Mapping[str, Any], model: type, noun: str) -> str:
    """One pydantic error of a plugin's parameter ``model`` as "what is wrong; expected ...",
    as the spec words it; ``noun`` names the plugin's kind ("application")."""
    kind, loc, value, ctx = problem["type"], problem["loc"], problem.get("input"), problem.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = list(parent.model_fields) if parent is not None else []
        expected = f"one of {', '.join(known)}" if known else f"no parameters for this {noun}"
        return f"unknown key {quote(loc[-1])}{did_you_mean(loc[-1], known)}; expected {expected}"
    if kind == "missing":
        return f"missing; expected {_description(model, loc) or 'a value'} (the {noun} has no default)"
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx["expected"]) or [ctx["expected"]]
        key = loc[-1] if loc and isinstance(loc[-1], str) else "value"
        return (f"{quote(value)} is not a known {key}{did_you_mean(value, choices)}; "
                f"expected one of {', '.join(choices)}")
    bound = next((key for key in BOUNDS if key in ctx), None)
    if bound is not None:
        return f"{quote(value)} is too {BOUNDS[bound][0]}; expected {_range(bound, ctx[bound])}"
    return f"got {describe(value)}; expected {_expected(kind, problem['msg'], model, loc)}"


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
    if len(loc) > 1 and _tagged(_shape_at(model, loc[:-1]), loc[-1]) is not None:
        loc = loc[:-1]   # a member of a tagged union: its field says what the value should be
    parent = _model_at(model, loc[:-1])
    if parent is None or not loc or not isinstance(loc[-1], str):
        return None
    info = parent.model_fields.get(loc[-1])
    return info.description if info is not None else None


def _model_at(model: type, loc: tuple) -> type | None:
    """The model nested in ``model`` at ``loc`` (through fields, lists and tagged unions), if
    there is one."""
    shape = _shape_at(model, loc)
    return shape if isinstance(shape, type) and issubclass(shape, BaseModel) else None


def _shape_at(model: type, loc: tuple) -> Any:
    """The type nested in ``model`` at ``loc``, bare; None where ``loc`` leads nowhere."""
    shape: Any = model
    for key in loc:
        shape = bare(shape)
        member = _tagged(shape, key)
        if member is not None:   # pydantic puts the tag of the union's member it chose in loc
            shape = member
        elif isinstance(shape, type) and issubclass(shape, BaseModel) and isinstance(key, str):
            info = shape.model_fields.get(key)
            shape = info.annotation if info is not None else None
        elif get_origin(shape) is list and isinstance(key, int):
            shape = get_args(shape)[0]
        else:
            return None
    return bare(shape)


def _tagged(shape: Any, key: object) -> Any:
    """The member of the tagged union ``shape`` whose ``Tag`` is ``key``; None if there is none."""
    if get_origin(shape) not in (Union, types.UnionType):
        return None
    return next((member for member in get_args(shape)
                 if any(isinstance(mark, Tag) and mark.tag == key for mark in getattr(member, "__metadata__", ()))),
                None)
