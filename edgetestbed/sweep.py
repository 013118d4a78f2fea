"""``edgetestbed sweep``: one base topology over a grid of overrides, one run per point, compared.

A sweep file (YAML, read with SafeLoader only)::

    name: workers                  # the sweep directory: <runs-dir>/sweep-<name>/
    base: ../seeds-1ps-3w.yaml     # the base topology, relative to the sweep file
    set:                           # optional: overrides applied to every point
      windows.limit: 6
      total_rate: 240/s
    grid:                          # axes: every combination of their values is a point
      workers: [3, 5, 7]

Override keys go in ``set`` (one value) and ``grid`` (a non-empty list of values); what each
one does is in :mod:`edgetestbed.sweeppoints`. Every point's spec is validated before anything
runs; an invalid one is reported at the line of the override that made it. Running the points
and comparing them: :mod:`edgetestbed.sweeprun`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from edgetestbed.errors import SpecError
from edgetestbed.params.fields import did_you_mean
from edgetestbed.params.units import parse_rate, quote
from edgetestbed.spec.load import load_spec, load_spec_text
from edgetestbed.spec.model import Spec
from edgetestbed.spec.problems import DocPath, Problems
from edgetestbed.spec.schema import NAME_PATTERN, SpecIn
from edgetestbed.spec.yamldoc import read_yaml
from edgetestbed.sweeppoints import NAMED_KEYS, apply_overrides, point_name, value_name

TOP_KEYS = ("name", "base", "set", "grid")
EXPECTED = "a sweep like {name: workers, base: ../default.yaml, grid: {workers: [3, 5]}}"
MAX_WORKERS = 1000
MAX_LEVELS = 8
# Where in the spec each named key acts, as a regular expression over the spec's error paths.
TARGETS = {"workers": r"nodes", "levels": r"nodes", "servers": r"nodes", "total_rate": r"sensors\.rate",
           "delay": r"nodes\[\d+\]\.link\.delay", "policy": r"nodes\[\d+\]\.policy", "seed": r"seed"}


@dataclass(frozen=True)
class Point:
    """One combination of the grid: its name, its overrides in file order, its spec."""

    name: str
    overrides: tuple[tuple[str, Any], ...]
    spec: Spec


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: every point's spec already valid."""

    name: str
    source: str
    points: tuple[Point, ...]


# --- loading and validation ------------------------------------------------------------------

def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file and its base topology; SpecError names file, line and field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read the sweep file: {error}") from None
    return load_sweep_text(text, str(path), Path(path).resolve().parent)


def load_sweep_text(text: str, source: str, directory: Path) -> Sweep:
    """Validate sweep ``text``; ``base`` is read relative to ``directory``."""
    data, problems = _read_sweep_yaml(text, source)
    _check_top(data, problems)
    problems.raise_if_any()
    base_path = directory / data["base"]
    if not base_path.is_file():
        problems.add(("base",), f"{base_path} is not a file; expected a topology YAML, relative to the sweep file")
    problems.raise_if_any()
    load_spec(base_path)   # the base alone must be valid: its own errors, its own lines
    base = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    fixed, axes = data.get("set") or {}, data.get("grid") or {}
    points = [_point(source, base, fixed, combination, problems, base_path.parent) for combination in expand(axes)]
    _check_names(points, problems)
    problems.raise_if_any()
    return Sweep(data["name"], source, tuple(points))


def _read_sweep_yaml(text: str, source: str) -> tuple[dict, Problems]:
    """The spec module's safe reader (lines, duplicate keys, alias bombs); a sweep must be a mapping."""
    try:
        document = read_yaml(text, source)
    except SpecError as error:
        message = str(error)
        if "the file is empty" not in message and "the top level is" not in message:
            raise
        raise SpecError(message.split("; expected")[0] + "; expected " + EXPECTED) from None
    problems = Problems(source, document.lines)
    for path, message, line in document.duplicates:
        problems.add(path, message, line)
    return document.data, problems


def _check_top(data: dict, problems: Problems) -> None:
    """Known top-level keys; name, base and grid present and well-formed."""
    for key in data:
        if key not in TOP_KEYS:
            problems.add((key,), f"unknown key {quote(key)}{did_you_mean(key, list(TOP_KEYS))}; "
                         f"expected one of {', '.join(TOP_KEYS)}")
    for key in ("name", "base", "grid"):
        if key not in data:
            problems.add((key,), "missing; expected " + {
                "name": "a sweep name like workers", "base": "the base topology file, like ../default.yaml",
                "grid": "a mapping of override keys to lists of values, like {workers: [3, 5]}"}[key])
    name = data.get("name")
    if "name" in data and not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        problems.add(("name",), f"{quote(name)} is not a valid name; expected letters, digits, '.', '_' "
                     "or '-', like workers")
    if "base" in data and not isinstance(data["base"], str):
        problems.add(("base",), f"{quote(data['base'])} is not a file name; expected a path like ../default.yaml")
    for section in ("set", "grid"):
        _check_section(data, section, problems)


def _check_section(data: dict, section: str, problems: Problems) -> None:
    overrides = data.get(section)
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        problems.add((section,), f"got {quote(overrides)}; expected a mapping of override keys to "
                     f"{'lists of values' if section == 'grid' else 'values'}")
        return
    for key, value in overrides.items():
        place = (section, key)
        if not isinstance(key, str):
            problems.add(place, f"the key {quote(key)} is not text; expected an override key like workers")
        elif key not in NAMED_KEYS and key.split(".")[0] not in SpecIn.model_fields:
            problems.add(place, f"unknown key {quote(key)}{did_you_mean(key, [*NAMED_KEYS, *SpecIn.model_fields])}; "
                         f"expected one of {', '.join(NAMED_KEYS)} or a dotted path into the spec like "
                         "windows.limit")
        elif section == "grid" and not (isinstance(value, list) and value):
            problems.add(place, f"got {quote(value)}; expected a non-empty list of values, like [3, 5]")
        elif section == "grid" and len(set(map(value_name, value))) < len(value):
            problems.add(place, "a value is listed twice; expected each value once")
        elif section == "set" and key in (data.get("grid") or {}):
            problems.add(place, "also in grid; expected each key in set or in grid, not both")
        else:
            for item in value if section == "grid" else [value]:
                _check_value(key, item, place, problems)


def _check_value(key: str, value: Any, place: DocPath, problems: Problems) -> None:
    """The sweep's own keys; the others are checked by validating each point's spec."""
    if key in ("workers", "servers") and not _whole(value, 1, MAX_WORKERS):
        problems.add(place, f"{quote(value)} is not a count; expected a whole number from 1 to {MAX_WORKERS}")
    elif key == "levels" and not _whole(value, 2, MAX_LEVELS):
        problems.add(place, f"{quote(value)} is not a number of levels; expected 2 (workers under the "
                     f"root), 3 (root, parameter servers, workers) or more, up to {MAX_LEVELS}")
    elif key == "total_rate":
        try:
            parse_rate(value)
        except ValueError as error:
            problems.add(place, str(error))
    elif key == "policy" and not (isinstance(value, dict) and "type" in value):
        problems.add(place, f"got {quote(value)}; expected a policy like {{type: time, push: 2s}}")


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def expand(axes: dict[str, list]) -> Iterator[dict[str, Any]]:
    """Every combination of the axes' values, in file order, the last axis varying fastest."""
    for values in itertools.product(*axes.values()):
        yield dict(zip(axes, values))


def _point(source: str, base: dict, fixed: dict[str, Any], combination: dict[str, Any],
           problems: Problems, directory: Path) -> Point | None:
    """The point's spec from ``base`` and its overrides; None (with the problems added) if invalid."""
    name = point_name(combination)
    overrides = {**fixed, **combination}
    try:
        document = apply_overrides(base, overrides)
        document["name"] = name
        spec = load_spec_text(yaml.safe_dump(document, sort_keys=False), f"{source} point {name}",
                              directory)   # a churn trace's path is relative to the base spec's directory
    except (SpecError, LookupError) as error:
        for line in str(error).splitlines():
            problem = re.sub(r"^.* point [^:]*:\d+: ", "", line)
            key = _culprit(problem, overrides)
            place = ("grid" if key in combination else "set", key) if key else ("base",)
            problems.add(place, f"point {name}: {problem}")
        return None
    return Point(name, tuple(overrides.items()), spec)


def _culprit(problem: str, overrides: dict[str, Any]) -> str | None:
    """The override whose target the problem's spec path lies in (the most specific one)."""
    path = problem.split(": ")[0]
    matches = [key for key in overrides
               if re.match(TARGETS.get(key, re.escape(key)) + r"(\b|\[|\.|$)", path)]
    return max(matches, key=lambda key: len(TARGETS.get(key, key)), default=None)


def _check_names(points: list[Point | None], problems: Problems) -> None:
    names = [point.name for point in points if point is not None]
    for name in {name for name in names if names.count(name) > 1}:
        problems.add(("grid",), f"two points are both named {name!r}; expected values that differ "
                     "in letters or digits")


def describe_points(sweep: Sweep) -> str:
    """One line per point: its name and overrides (``sweep --list``)."""
    return "\n".join(f"{point.name}: " + ", ".join(f"{key}={value}" for key, value in point.overrides)
                     for point in sweep.points)
