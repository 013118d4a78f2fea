"""The tree: checked on the raw data, so its errors come with the schema's."""

from __future__ import annotations

from dataclasses import dataclass

from edgetestbed.params.fields import did_you_mean
from edgetestbed.spec.problems import DocPath, Problems
from edgetestbed.spec.inputbase import ID_PATTERN


@dataclass(frozen=True)
class _Draft:
    """What the tree checks need of one node, read from the raw data."""

    index: int
    id: str
    parent: str | None
    sensors: list | None             # None: not a list (the schema reports that)
    has_link: bool
    has_aggregation: bool

    def at(self, *keys: object) -> DocPath:
        return ("nodes", self.index, *keys)


def _drafts(data: dict) -> list[_Draft] | None:
    """The nodes, or None while ids or parents are too broken to check the tree."""
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        return None
    drafts = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            return None
        node_id, parent, sensors = node.get("id"), node.get("parent"), node.get("sensors", [])
        if not _is_id(node_id) or not (parent is None or _is_id(parent)):
            return None
        drafts.append(_Draft(index, node_id, parent, sensors if isinstance(sensors, list) else None,
                             node.get("link") is not None, node.get("aggregation") is not None))
    return drafts


def _is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_tree(data: dict, problems: Problems) -> None:
    """One root, known parents, no cycles, sensors exactly on the leaves, none twice."""
    drafts = _drafts(data)
    if drafts is None:
        return
    if not drafts:
        problems.add(("nodes",), "the list is empty; expected at least one node, the root")
        return
    if not _check_unique(drafts, problems):
        return
    by_id = {draft.id: draft for draft in drafts}
    parents_known = _check_parents(drafts, by_id, problems)
    _check_root(drafts, problems)
    _check_cycles(drafts, by_id, problems)
    _check_leaves(drafts, problems, parents_known)
    _check_sensor_owners(drafts, problems)


def _check_unique(drafts: list[_Draft], problems: Problems) -> bool:
    """True when ids are unique; the other checks need that."""
    first: dict[str, _Draft] = {}
    for draft in drafts:
        if draft.id in first:
            problems.add(draft.at("id"), f"duplicate id {draft.id!r} (first at line "
                         f"{problems.line(first[draft.id].at('id'))}); expected a unique id")
        first.setdefault(draft.id, draft)
    return len(first) == len(drafts)


def _check_parents(drafts: list[_Draft], by_id: dict[str, _Draft], problems: Problems) -> bool:
    """True when every parent is a node."""
    unknown = [draft for draft in drafts if draft.parent is not None and draft.parent not in by_id]
    for draft in unknown:
        problems.add(draft.at("parent"), f"{draft.parent!r} is not a node"
                     f"{did_you_mean(draft.parent, list(by_id))}; expected the id of another node")
    return not unknown


def _check_root(drafts: list[_Draft], problems: Problems) -> None:
    roots = [draft for draft in drafts if draft.parent is None]
    if not roots:
        problems.add(("nodes",), "no node is the root; expected exactly one node without a parent")
        return
    for extra in roots[1:]:
        problems.add(extra.at(), f"{extra.id!r} has no parent, but {roots[0].id!r} (line "
                     f"{problems.line(roots[0].at())}) is already the root; expected exactly one "
                     "node without a parent")
    if roots[0].has_link:
        problems.add(roots[0].at("link"), "the root has no parent, so it has no link; expected no "
                     "link on the root (the cloud's WAN link is cloud.link)")


def _check_cycles(drafts: list[_Draft], by_id: dict[str, _Draft], problems: Problems) -> None:
    settled: set[str] = set()
    for draft in drafts:
        trail: list[_Draft] = []
        current: _Draft | None = draft
        while current is not None and current.id not in settled:
            if current in trail:
                _report_cycle(trail[trail.index(current):], problems)
                break
            trail.append(current)
            current = by_id.get(current.parent) if current.parent else None
        settled.update(member.id for member in trail)


def _report_cycle(cycle: list[_Draft], problems: Problems) -> None:
    start = cycle.index(min(cycle, key=lambda draft: draft.index))
    ring = cycle[start:] + cycle[:start + 1]
    problems.add(ring[0].at("parent"), f"the parents form a cycle {' -> '.join(d.id for d in ring)}; "
                 "expected a tree, where following parents leads to the root")


def _check_leaves(drafts: list[_Draft], problems: Problems, parents_known: bool) -> None:
    """Sensors on every leaf and only there; a node whose child names a wrong parent may look
    like a leaf, so leaves are held to that only when every parent is known."""
    for draft in drafts:
        children = [other.id for other in drafts if other.parent == draft.id]
        if children and draft.sensors:
            problems.add(draft.at("sensors"), f"{draft.id!r} has children ({', '.join(children)}), so "
                         "it is not a worker; expected sensors only on leaves")
        if not children and draft.sensors == [] and parents_known:
            problems.add(draft.at("sensors"), f"worker {draft.id!r} has no sensors; expected a list "
                         "of sensor indices like [0, 1] on every leaf")
        if not children and draft.has_aggregation and parents_known:
            problems.add(draft.at("aggregation"), f"worker {draft.id!r} merges no one's updates, so it has "
                         "no aggregation; expected aggregation only on the root and parameter servers "
                         "(or in defaults, which workers ignore)")


def _check_sensor_owners(drafts: list[_Draft], problems: Problems) -> None:
    owners: dict[int, _Draft] = {}
    for draft in drafts:
        for position, index in enumerate(draft.sensors or ()):
            if not isinstance(index, int) or isinstance(index, bool):
                continue   # the schema reports it
            if index in owners:
                owner = owners[index]
                problems.add(draft.at("sensors", position), f"sensor {index} is already assigned to "
                             f"{owner.id!r} (line {problems.line(owner.at('sensors'))}); "
                             "expected each sensor on exactly one worker")
            owners.setdefault(index, draft)
