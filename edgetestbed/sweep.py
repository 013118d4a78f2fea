"""``edgetestbed sweep``: one base topology over a grid of overrides, one run per point, compared.

A sweep file (YAML, read with SafeLoader only)::

    name: workers                  # the sweep directory: <runs-dir>/sweep-<name>/
    base: ../seeds-1ps-3w.yaml     # the base topology, relative to the sweep file
    set:                           # optional: overrides applied to every point
      windows.limit: 6
      total_rate: 240/s
    grid:                          # axes: every combination of their values is a point
      workers: [3, 5, 7]

Override keys, in ``set`` (one value) and ``grid`` (a non-empty list of values):

- ``workers``: how many workers. The tree is regenerated from the base's templates: the
  root as it is, the first parameter server, the first worker (its cpu, memory, link and
  policy; each new worker gets as many sensors as it has, numbered from 0). Workers are
  ``w1..wN``; parameter servers ``ps1..psM``, each over a contiguous block of workers.
- ``levels``: 2 (workers directly under the root, which is their one parameter server),
  3 (a root over ``servers`` parameter servers over the workers), or more, up to
  ``MAX_LEVELS``: every level between the root and the workers has ``servers`` parameter
  servers, each under a contiguous block of the level above as workers are (with equal
  counts, one each: depth adds hops without changing any server's fan-in); regenerates
  the tree too.
- ``servers``: parameter servers in each middle level when ``levels`` is 3 or more
  (default: the base's, or 2), numbered ``ps1..`` level by level from the root.
- ``total_rate``: the sum of all sensors' rates, like ``240/s``; each sensor streams
  ``total_rate / sensors``, so the data reaching the tree stays fixed as workers vary.
- ``delay``: the delay of every tree edge (node to parent), like ``50ms``; sensor and cloud
  links keep theirs.
- ``policy``: every node's exchange policy, like ``{type: time, push: 2s}``.
- ``seed``: the spec's seed.
- any other key is a dotted path into the spec, set after the keys above: ``windows.limit``,
  ``application.learning_rate``, ``nodes.w1.cpu`` (a list is indexed by number or by ``id``);
  missing mappings on the way are created.

Overrides are applied to the base file's data (not its resolved form), so ``defaults.*``
paths act as they would in the file. Every point's spec is validated before anything runs;
an invalid one is reported at the line of the override that made it.

Each point runs in ``sweep-<name>/<point>/`` (the point's name is made from its grid values,
e.g. ``workers-5``), which holds the run directory ``<point>-<UTC time>/``. A re-run skips a
point whose run has ``summary.json`` with ``completed: true`` and runs the others again (an
incomplete attempt stays, with its records for ``clean``). At the end ``comparison.md``,
``comparison.csv`` and ``cost_vs_accuracy.png`` compare the points' completed runs.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from edgetestbed.analysis.compare import compare_runs, format_comparison, write_comparison
from edgetestbed.errors import LeftoverError, SpecError
from edgetestbed.rundir import RunDir
from edgetestbed.runner import run_experiment
from edgetestbed.signals import signals_as_interrupts
from edgetestbed.spec.fields import did_you_mean
from edgetestbed.spec.load import load_spec, load_spec_text
from edgetestbed.spec.model import Spec
from edgetestbed.spec.problems import DocPath, Problems
from edgetestbed.spec.schema import NAME_PATTERN, SpecIn
from edgetestbed.spec.units import format_rate, parse_rate, quote
from edgetestbed.spec.yamldoc import read_yaml

Say = Callable[[str], None]
TREE_KEYS = ("workers", "levels", "servers")
NAMED_KEYS = (*TREE_KEYS, "total_rate", "delay", "policy", "seed")
TOP_KEYS = ("name", "base", "set", "grid")
EXPECTED = "a sweep like {name: workers, base: ../default.yaml, grid: {workers: [3, 5]}}"
MAX_WORKERS = 1000
MAX_LEVELS = 8
BUSY_WAIT = 600.0        # seconds to wait while another run holds the machine
BUSY_POLL = 5.0
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


@dataclass(frozen=True)
class SweepResult:
    """Where the sweep lives, the completed run of each point, and which points did not complete."""

    directory: Path
    runs: dict[str, Path]
    incomplete: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.incomplete


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
    points = [_point(source, base, fixed, combination, problems) for combination in expand(axes)]
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
        elif section == "grid" and len(set(map(_value_name, value))) < len(value):
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
           problems: Problems) -> Point | None:
    """The point's spec from ``base`` and its overrides; None (with the problems added) if invalid."""
    name = point_name(combination)
    overrides = {**fixed, **combination}
    try:
        document = apply_overrides(base, overrides)
        document["name"] = name
        spec = load_spec_text(yaml.safe_dump(document, sort_keys=False), f"{source} point {name}")
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


# --- points: names and overrides ---------------------------------------------------------------

def point_name(overrides: dict[str, Any]) -> str:
    """``key-value`` per grid axis joined by ``_`` (``base`` for none), safe as a file and run
    name; longer than 64 characters, it is cut and ends in a hash of the whole."""
    name = "_".join(f"{key}-{_value_name(value)}" for key, value in overrides.items()) or "base"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "point"
    if len(name) > 64:
        name = f"{name[:55]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def _value_name(value: Any) -> str:
    if isinstance(value, dict):
        return "-".join(str(v) if k == "type" else f"{k}{_value_name(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "-".join(map(_value_name, value))
    return str(value)


def apply_overrides(base: dict, overrides: dict[str, Any]) -> dict:
    """A copy of the base file's data with ``overrides`` applied: tree, rates, links, paths."""
    document = copy.deepcopy(base)
    if any(key in overrides for key in TREE_KEYS):
        document["nodes"] = regenerate_tree(document["nodes"], overrides)
    if "total_rate" in overrides:
        sensors = sum(len(node.get("sensors") or ()) for node in document["nodes"])
        document.setdefault("sensors", {})["rate"] = format_rate(parse_rate(overrides["total_rate"]) / sensors)
    for node in document["nodes"]:
        if "delay" in overrides and node.get("parent") is not None:
            node["link"] = {**(node.get("link") or {}), "delay": overrides["delay"]}
        if "policy" in overrides:
            node["policy"] = copy.deepcopy(overrides["policy"])
    if "seed" in overrides:
        document["seed"] = overrides["seed"]
    for key, value in overrides.items():
        if key not in NAMED_KEYS:
            set_path(document, key.split("."), copy.deepcopy(value))
    return document


def regenerate_tree(nodes: list[dict], overrides: dict[str, Any]) -> list[dict]:
    """A root, optional parameter servers and ``workers`` workers, from the base's first of each."""
    root = next(node for node in nodes if node.get("parent") is None)
    workers = [node for node in nodes if node.get("sensors")]
    servers = [node for node in nodes if node.get("parent") == root["id"] and not node.get("sensors")]
    count = overrides.get("workers", len(workers))
    width = overrides.get("servers", len(servers) or 2)
    tree, parents = [copy.deepcopy(root)], [root["id"]]
    for level in range(overrides.get("levels", 3 if servers else 2) - 2):
        ids = [f"ps{level * width + i + 1}" for i in range(width)]
        tree += [{**_template(servers[0] if servers else {}), "id": ident, "parent": _block(parents, i, width)}
                 for i, ident in enumerate(ids)]
        parents = ids
    per_worker = len(workers[0]["sensors"])
    tree += [{**_template(workers[0]), "id": f"w{i + 1}", "parent": _block(parents, i, count),
              "sensors": list(range(i * per_worker, (i + 1) * per_worker))} for i in range(count)]
    return tree


def _block(parents: list[str], index: int, count: int) -> str:
    """The parent of child ``index`` of ``count``: children split into contiguous blocks."""
    return parents[index * len(parents) // count]


def _template(node: dict) -> dict:
    """A node's settings without its place in the tree."""
    return {key: copy.deepcopy(value) for key, value in node.items() if key not in ("id", "parent", "sensors")}


def set_path(document: dict, keys: list[str], value: Any) -> None:
    """Set ``document[k1][k2]...`` to ``value``; lists are indexed by number or by an item's ``id``.
    LookupError names the path and the part of it that leads nowhere."""
    here: Any = document
    for key in keys[:-1]:
        here = _step(here, key, keys)
    if isinstance(here, list):
        here[_index(here, keys[-1], keys)] = value
    else:
        here[keys[-1]] = value


def _step(here: Any, key: str, keys: list[str]) -> Any:
    if isinstance(here, list):
        return here[_index(here, key, keys)]
    if not isinstance(here.get(key), (dict, list)):
        here[key] = {}
    return here[key]


def _index(items: list, key: str, keys: list[str]) -> int:
    if key.isdigit() and int(key) < len(items):
        return int(key)
    for position, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") == key:
            return position
    raise LookupError(f"{'.'.join(keys)}: no item {key!r}; expected an index below {len(items)} or an id")


def describe_points(sweep: Sweep) -> str:
    """One line per point: its name and overrides (``sweep --list``)."""
    return "\n".join(f"{point.name}: " + ", ".join(f"{key}={value}" for key, value in point.overrides)
                     for point in sweep.points)


# --- running -------------------------------------------------------------------------------------

def completed_run(point_dir: Path) -> Path | None:
    """The newest run directory in ``point_dir`` whose summary says it completed."""
    for run_dir in sorted(point_dir.glob("*/summary.json"), reverse=True):
        try:
            if json.loads(run_dir.read_text()).get("completed") is True:
                return run_dir.parent
        except (OSError, ValueError):
            continue
    return None


def run_sweep(sweep: Sweep, runs_dir: Path, say: Say = print, progress: Say | None = None) -> SweepResult:
    """Run every point not completed before, then compare the completed ones.

    Ctrl-C or SIGTERM stops the running point (its network torn down) and the sweep; finished
    runs stay and a re-run skips them.
    """
    directory = Path(runs_dir) / f"sweep-{sweep.name}"
    directory.mkdir(parents=True, exist_ok=True)
    _record(sweep, directory)
    runs, total = {}, len(sweep.points)
    with signals_as_interrupts():
        for number, point in enumerate(sweep.points, 1):
            label = f"point {number} of {total}: {point.name}"
            done = completed_run(directory / point.name)
            if done is None:
                say(f"{label}: running")
                done = _run_point(point, directory / point.name, say, _prefixed(label, progress or say))
            else:
                say(f"{label}: completed before ({done}), skipped")
            if done is not None:
                runs[point.name] = done
        _compare(runs, directory, say)
    incomplete = tuple(point.name for point in sweep.points if point.name not in runs)
    if incomplete:
        say(f"incomplete points (re-run the sweep to retry them): {', '.join(incomplete)}")
    return SweepResult(directory, runs, incomplete)


def _record(sweep: Sweep, directory: Path) -> None:
    """``sweep.json``: the file it came from and each point's overrides."""
    points = [{"name": point.name, "overrides": dict(point.overrides)} for point in sweep.points]
    (directory / "sweep.json").write_text(json.dumps({"source": sweep.source, "points": points}, indent=2) + "\n")


def _prefixed(label: str, progress: Say) -> Say:
    return lambda line: progress(f"[{label}] {line}")


def _run_point(point: Point, point_dir: Path, say: Say, progress: Say) -> Path | None:
    """Run the point; its run directory if completed, else None (a re-run retries it).

    While another run or network holds the machine it waits (up to ``BUSY_WAIT``); a point
    that fails otherwise is reported and the sweep goes on to the next one.
    """
    deadline = time.time() + BUSY_WAIT
    while True:
        before = set(point_dir.iterdir()) if point_dir.is_dir() else set()
        try:
            summary = run_experiment(point.spec, point_dir, say, progress)
        except LeftoverError as busy:
            if time.time() > deadline:
                raise
            _forget_empty_attempts(point_dir, before)
            say(f"{busy}; retrying in {BUSY_POLL:.0f} s")
            time.sleep(BUSY_POLL)
            continue
        except Exception as error:  # noqa: BLE001 - one point's failure must not cost the others
            say(f"{point.name} failed ({type(error).__name__}: {error}); a re-run of the sweep retries it")
            return None
        return Path(summary["run_dir"]) if summary["completed"] else None


def _forget_empty_attempts(point_dir: Path, before: set[Path]) -> None:
    """Remove run directories of a refused attempt that created nothing (an empty ledger)."""
    for path in set(point_dir.iterdir()) - before if point_dir.is_dir() else ():
        if not RunDir.open(path).ledger.entries():
            shutil.rmtree(path)


def _compare(runs: dict[str, Path], directory: Path, say: Say) -> None:
    """The comparison of the completed points, each row named by its point."""
    if not runs:
        return
    rows = compare_runs(list(runs.values()))
    for name, row in zip(runs, rows):
        row["run"] = name
    paths = write_comparison(rows, directory)
    say(format_comparison(rows) + "written: " + ", ".join(str(path) for path in paths.values()))
