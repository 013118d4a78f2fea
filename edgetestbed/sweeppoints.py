"""A sweep's points: each one's name, and its spec document, made from the base file's data
and the point's overrides.

Override keys, in ``set`` (one value) and ``grid`` (a non-empty list of values):

- ``workers``: how many workers. The tree is regenerated from the base's templates: the
  root as it is, the first parameter server, the first worker (its cpu, memory, link and
  policy; each new worker gets as many sensors as it has, numbered from 0). Workers are
  ``w1..wN``; parameter servers ``ps1..psM``, each over a contiguous block of workers.
- ``levels``: 2 (workers directly under the root, which is their one parameter server),
  3 (a root over ``servers`` parameter servers over the workers), or more, up to
  ``sweep.MAX_LEVELS``: every level between the root and the workers has ``servers`` parameter
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
paths act as they would in the file.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from edgetestbed.params.units import format_rate, parse_rate

TREE_KEYS = ("workers", "levels", "servers")
NAMED_KEYS = (*TREE_KEYS, "total_rate", "delay", "policy", "seed")


def point_name(overrides: dict[str, Any]) -> str:
    """``key-value`` per grid axis joined by ``_`` (``base`` for none), safe as a file and run
    name; longer than 64 characters, it is cut and ends in a hash of the whole."""
    name = "_".join(f"{key}-{value_name(value)}" for key, value in overrides.items()) or "base"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "point"
    if len(name) > 64:
        name = f"{name[:55]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def value_name(value: Any) -> str:
    if isinstance(value, dict):
        return "-".join(str(v) if k == "type" else f"{k}{value_name(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "-".join(map(value_name, value))
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
