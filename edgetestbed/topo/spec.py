"""The experiment spec: a YAML file in, a frozen, typed, fully resolved :class:`Spec` out.

Loading goes YAML text -> composed node tree (for line numbers) -> plain data ->
schema (pydantic, unknown keys refused everywhere) and tree checks, and the plugin
sections' parameters (``application``, every ``policy``, ``data``) checked against the
plugin's own ``Params`` model by :mod:`edgetestbed.topo.appcheck` -> defaults merged ->
:class:`Spec`. Every problem found on the way is reported
at once, in one :class:`~edgetestbed.errors.SpecError`, one line per problem::

    topo.yaml:14: nodes[2].link.bw: '10MB' is not a bandwidth; expected bits per second like 10Mbit (MB would be bytes)

The input, top level (``name``, ``application``, ``data`` and ``nodes`` are required)::

    name, seed, application{name, ...}, data{dataset, partition, ...},
    windows{interval, limit, epochs}, defaults{cpu, memory, link, policy},
    sensors{rate, link, cpu, memory}, nodes[{id, parent, cpu, memory, link, sensors, policy}],
    cloud{cpu, memory, link}, network{backend, switch, shaping, congestion_control}, timeout

Quantities carry units (see :mod:`edgetestbed.topo.units`). A link is
``{bw: 10Mbit, delay: 20ms, jitter: 2ms, loss: 1%, queue: 100}``; ``bw: null`` means
unlimited, ``queue: null`` the backend's default queue length.

Resolution rules:

- A node's ``link`` (the edge to its parent) is merged key by key over ``defaults.link``;
  ``cpu``, ``memory`` and ``policy`` come from ``defaults`` when the node omits them (or
  gives null). A policy is taken whole, never merged, since its keys depend on its type.
- ``sensors.link`` and ``cloud.link`` merge over an unshaped link, not over ``defaults.link``:
  they are different kinds of link from the tree's edges.
- The root has no link; leaves are the workers and each needs at least one sensor;
  only leaves have sensors. Sensor indices need not be contiguous.

Built-in defaults (used where the file is silent):

====================  ===========================================================
``seed``              0
``windows``           ``{interval: 3s, limit: 10, epochs: 1}``
``defaults``          ``{cpu: 0.5, memory: 256M, link: {} (unshaped), policy: {type: simple}}``
``sensors``           ``{rate: 40/s, link: {} (unshaped), cpu: 0.1, memory: 128M}``
``cloud``             absent: no cloud baseline; when given, ``{cpu: 1.0, memory: 512M, link: {}}``
``network``           ``{backend: mininet, switch: auto, shaping: auto, congestion_control: cubic}``
``timeout``           interval × limit × 3 + 120 s
link fields           ``bw: null`` (unlimited), ``delay: 0ms``, ``jitter: 0ms``, ``loss: 0%``,
                      ``queue: null``
plugin parameters     the plugin's own ``Params`` (below)
====================  ===========================================================

Bounds (inclusive unless stated):

====================  ===========================================================
``bw``                1kbit .. 100Gbit
``delay``, ``jitter``  0 .. 10s
``loss``              0% .. below 100%
``queue``             1 .. 1000000 packets
``cpu``               0.01 .. 256 cores (cgroup quotas cannot go below 1% of a core)
``memory``            32M .. 1T
``sensors.rate``      above 0 .. 10000/s
sensor index          0 .. 9999
``seed``              0 .. 2**32 - 1 (numpy's seed range)
``windows``           interval 10ms .. 1h, limit 1 .. 100000, epochs 1 .. 1000
``timeout``           1s .. 7 days, and at least interval × limit
plugin parameters     the plugin's own ``Params`` (below)
ids                   ``[A-Za-z][A-Za-z0-9_-]{0,31}``; ``name``: ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``
====================  ===========================================================

The YAML is read with PyYAML's SafeLoader only (no Python tags, no pickle). Duplicate
keys are errors, and so are recursive aliases, aliases that expand to more than
100000 values, and nesting deeper than 32 levels.

Exchange policies (``policy: {type: ...}``) and data partitions (``data: {partition:
...}``) are plugins, each one class in one module of :mod:`edgetestbed.nodes.policies` and
:mod:`edgetestbed.sensors.partitions`, which declares its meaning, its parameters with
their defaults and bounds, and, for a partition, the datasets it can split. This module
takes the names they register (and for policies ``module.path:ClassName``), suggests the
nearest for a misspelt one, and lists them in its messages. ``lags`` (aqi only, default 3,
0 .. 168) is how many past hours of PM2.5 are features.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from operator import attrgetter
from typing import Annotated, Any, Callable, ClassVar, Iterator, Mapping, Optional, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from edgetestbed.errors import SpecError
from edgetestbed.nodes.policies import POLICIES
from edgetestbed.plugins import CLASS_PATTERN, PluginNotFound, Registry, values
from edgetestbed.sensors.partitions import DATASET_PARAMS, PARTITIONS, params_model
from edgetestbed.topo.fields import (Interval, bare, bounded, choice, closest, count, describe,
                                     did_you_mean, matching, number, thaw, unit)
from edgetestbed.topo.units import (format_bandwidth, format_duration, format_percent,
                                    format_rate, format_size, parse_bandwidth,
                                    parse_duration, parse_percent, parse_rate, parse_size,
                                    quote)

__all__ = [
    "load_spec", "load_spec_text", "Spec", "NodeSpec", "LinkSpec", "PolicySpec", "SensorsSpec",
    "CloudSpec", "NetworkSpec", "ApplicationSpec", "DataSpec", "WindowsSpec", "FrozenMap",
]

MiB = 2**20
APPLICATIONS = ("mnist_mlp", "aqi", "svm")
ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_YAML_VALUES = 100_000   # values after alias expansion; refuses "billion laughs" documents
MAX_YAML_DEPTH = 32         # nesting levels; keeps every recursive step after parsing shallow


# --- the resolved spec: what the rest of edgetestbed codes against -------------------------

class FrozenMap(Mapping[str, Any]):
    """A read-only, hashable mapping, so that frozen specs stay immutable and hashable."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] = ()) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True)
class LinkSpec:
    """One shaped link, the same in both directions."""

    bw_mbit: float | None = None     # None: not limited
    delay_ms: float = 0.0            # one way, each direction
    jitter_ms: float = 0.0
    loss_pct: float = 0.0            # each direction
    queue: int | None = None         # packets; None: the backend's default

    @property
    def impaired(self) -> bool:
        """Delay, jitter or loss asked for: needs netem or the user-space shaper."""
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)


@dataclass(frozen=True)
class PolicySpec:
    """When a node exchanges with its parent: ``simple``, ``time``, ``window`` or ``downpour``."""

    type: str
    params: Mapping[str, object] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class NodeSpec:
    """A tree node (root, parameter server or worker) with its resources and parent link."""

    id: str
    parent: str | None
    children: tuple[str, ...]
    level: int                       # the root is level 0
    cpu: float                       # cores, like Docker's --cpus
    memory: int                      # bytes
    link: LinkSpec | None            # the edge to the parent; None for the root
    sensors: tuple[int, ...]         # only workers have sensors
    policy: PolicySpec

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def is_worker(self) -> bool:
        """A leaf; a single-node tree's root is a worker too."""
        return not self.children

    @property
    def role(self) -> str:
        """``root``, ``ps`` (parameter server) or ``worker``; the root wins over worker."""
        return "root" if self.is_root else "worker" if self.is_worker else "ps"


@dataclass(frozen=True)
class SensorsSpec:
    """Shared by every sensor: samples per second each, its link to its worker, resources."""

    rate: float
    link: LinkSpec
    cpu: float
    memory: int


@dataclass(frozen=True)
class CloudSpec:
    """The centralized baseline host, attached to the root's switch by a WAN link."""

    cpu: float
    memory: int
    link: LinkSpec


@dataclass(frozen=True)
class NetworkSpec:
    """Backends to use (``auto``: chosen by the capability probe) and TCP congestion control.

    ``backend: loopback`` emulates nothing (see :mod:`edgetestbed.topo.loopback`): the other
    fields, the links and the hosts' limits then apply to nothing."""

    switch: str = "auto"             # auto | ovs | ovs-user | lxbr
    shaping: str = "auto"            # auto | netem | userspace
    congestion_control: str = "cubic"
    backend: str = "mininet"         # mininet | loopback

    @property
    def emulated(self) -> bool:
        """Whether links are shaped and hosts limited: False on the loopback backend."""
        return self.backend != "loopback"


@dataclass(frozen=True)
class ApplicationSpec:
    """The learning task by name (or ``module:Class``) and its parameters as the file gives them
    (checked against the application's ``Params``; its defaults are the application's own)."""

    name: str
    params: Mapping[str, object]


@dataclass(frozen=True)
class DataSpec:
    """Which dataset the sensors stream and how it is split among them."""

    dataset: str                     # mnist | aqi
    partition: str                   # iid | replicated; mnist: biased | by_label | mixed;
    params: Mapping[str, object]     # aqi: by_year | by_season. Defaults applied.


@dataclass(frozen=True)
class WindowsSpec:
    """Workers train on what arrived in each ``interval`` seconds, ``limit`` windows in all."""

    interval: float
    limit: int
    epochs: int


@dataclass(frozen=True)
class Spec:
    """A whole experiment, validated, with every default applied. Equality ignores ``source``."""

    name: str
    seed: int
    source: str = field(compare=False)
    nodes: tuple[NodeSpec, ...]      # file order
    application: ApplicationSpec
    data: DataSpec
    windows: WindowsSpec
    sensors: SensorsSpec
    cloud: CloudSpec | None
    network: NetworkSpec
    timeout: float                   # seconds for the whole run

    def node(self, node_id: str) -> NodeSpec:
        """The node with this id; KeyError if there is none."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(f"no node {node_id!r} in spec {self.name!r}")

    @property
    def root(self) -> NodeSpec:
        return next(node for node in self.nodes if node.is_root)

    @property
    def workers(self) -> tuple[NodeSpec, ...]:
        return tuple(node for node in self.nodes if node.is_worker)

    @property
    def parameter_servers(self) -> tuple[NodeSpec, ...]:
        """Nodes between the root and the workers."""
        return tuple(node for node in self.nodes if node.role == "ps")

    @property
    def sensor_ids(self) -> tuple[int, ...]:
        return tuple(sorted(index for node in self.nodes for index in node.sensors))

    def sensor_owner(self, index: int) -> str:
        """The id of the worker that sensor ``index`` streams to; KeyError if none."""
        for node in self.nodes:
            if index in node.sensors:
                return node.id
        raise KeyError(f"no sensor {index} in spec {self.name!r}")

    def to_dict(self) -> dict:
        """The input schema with every value explicit: loading it again gives an equal Spec."""
        return _input_of(self).model_dump(exclude_unset=True)


def _application_name(value: object) -> str:
    if isinstance(value, str) and (value in APPLICATIONS or CLASS_PATTERN.fullmatch(value)):
        return value
    raise ValueError(f"{quote(value)} is not an application{did_you_mean(value, list(APPLICATIONS))}; "
                     f"expected one of {', '.join(APPLICATIONS)}, or module.path:ClassName")


Bandwidth = unit(float, parse_bandwidth, format_bandwidth, 0.001, 100_000)
LinkDelay = unit(float, partial(parse_duration, unit="ms"), partial(format_duration, unit="ms"),
                  0, 10_000)
Loss = unit(float, parse_percent, format_percent, 0, 100, high_open=True)
Memory = unit(int, parse_size, format_size, 32 * MiB, 2**40)
Rate = unit(float, parse_rate, format_rate, 0, 10_000, low_open=True)
Timeout = unit(float, parse_duration, format_duration, 1, 7 * 86400)
Cores = Annotated[float, BeforeValidator(bounded(number("a number of cores like 0.5"), 0.01, 256))]
Queue = count(1, 1_000_000, "a queue length in packets like 100")
Seed = count(0, 2**32 - 1, "a seed like 1")
SensorIndex = count(0, 9999, "a sensor index like 3")
WindowLimit = count(1, 100_000, "a number of windows like 10")
Epochs = count(1, 1000, "a number of epochs like 1")
Dataset = choice("a dataset", *DATASET_PARAMS)
Switch = choice("a switch backend", "auto", "ovs", "ovs-user", "lxbr")
Shaping = choice("a shaping backend", "auto", "netem", "userspace")
NetworkBackend = choice("a network backend", "mininet", "loopback")
NodeId = matching(ID_PATTERN, "a valid id", "a letter, then up to 31 letters, digits, _ or -, like w1")
RunName = matching(NAME_PATTERN, "a valid name",
                    "a letter or digit, then up to 63 letters, digits, '.', '_' or '-', "
                    "like mnist-3level")
CongestionControl = matching(re.compile(r"[a-z][a-z0-9_]{0,15}"), "a congestion control name",
                              "a kernel congestion control name like cubic or reno")


# --- the input schema ----------------------------------------------------------------------

LINK = "a link like {bw: 10Mbit, delay: 5ms, jitter: 1ms, loss: 1%, queue: 100}"


class _Input(BaseModel):
    """Base of every input model: unknown keys and loose type coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    EXPECTED: ClassVar[str] = "a mapping"   # completes "expected ..." when the value has the wrong type

    @classmethod
    def expected(cls) -> str:
        """What a value here should have been; a section whose words come from a registry
        assembles them when asked."""
        return cls.EXPECTED


class LinkIn(_Input):
    EXPECTED: ClassVar[str] = LINK
    bw: Optional[Bandwidth] = None
    delay: LinkDelay = 0.0
    jitter: LinkDelay = 0.0
    loss: Loss = 0.0
    queue: Optional[Queue] = None


class _PluginIn(_Input):
    """A section that picks a plugin of ``REGISTRY`` by the registry's key; every other key
    is a parameter, checked against the plugin's own model by :mod:`edgetestbed.topo.appcheck`."""

    model_config = ConfigDict(extra="allow", strict=True)
    REGISTRY: ClassVar[Registry]

    @classmethod
    def expected(cls) -> str:
        return f"{cls.EXPECTED}; {cls.REGISTRY.key}s: {', '.join(cls.REGISTRY.names())}"

    @model_validator(mode="before")
    @classmethod
    def _known_plugin(cls, value: object) -> object:
        """A missing or unknown name is reported at the section, with the names there are."""
        key = cls.REGISTRY.key
        if isinstance(value, dict):
            if key not in value:
                raise ValueError(f"{key!r} is missing; expected {cls.expected()}")
            if not cls.REGISTRY.accepts(value[key]):
                raise ValueError(cls.REGISTRY.unknown(value[key]))
        return value


class PolicyIn(_PluginIn):
    """An exchange policy by its ``type``, and its parameters."""

    EXPECTED: ClassVar[str] = "a policy like {type: simple}"
    REGISTRY: ClassVar[Registry] = POLICIES
    type: str


class DataIn(_PluginIn):
    """A dataset and its ``partition`` among the sensors, and their parameters (the
    partition's and the dataset's own)."""

    EXPECTED: ClassVar[str] = "data like {dataset: mnist, partition: iid}"
    REGISTRY: ClassVar[Registry] = PARTITIONS
    dataset: Dataset = Field(description=f"a dataset: {' or '.join(DATASET_PARAMS)}")
    partition: str


class ApplicationIn(_Input):
    """Every key but ``name`` is a parameter, checked by :mod:`edgetestbed.topo.appcheck`."""

    model_config = ConfigDict(extra="allow", strict=True)
    EXPECTED: ClassVar[str] = "an application like {name: mnist_mlp, learning_rate: 0.4}"
    name: Annotated[str, BeforeValidator(_application_name)] = Field(
        description="an application: mnist_mlp, aqi, svm or module:Class")


class WindowsIn(_Input):
    EXPECTED: ClassVar[str] = "windows like {interval: 3s, limit: 10, epochs: 1}"
    interval: Interval = 3.0
    limit: WindowLimit = 10
    epochs: Epochs = 1


class DefaultsIn(_Input):
    EXPECTED: ClassVar[str] = "defaults like {cpu: 0.5, memory: 256M, link: {bw: 10Mbit}}"
    cpu: Cores = 0.5
    memory: Memory = 256 * MiB
    link: LinkIn = Field(default_factory=LinkIn)
    policy: PolicyIn = Field(default_factory=lambda: PolicyIn(type="simple"))


class SensorsIn(_Input):
    EXPECTED: ClassVar[str] = "sensors like {rate: 40/s, link: {bw: 2Mbit, delay: 1ms}}"
    rate: Rate = 40.0
    link: LinkIn = Field(default_factory=LinkIn)
    cpu: Cores = 0.1
    memory: Memory = 128 * MiB


class CloudIn(_Input):
    EXPECTED: ClassVar[str] = "a cloud like {cpu: 1.0, link: {bw: 100Mbit, delay: 40ms}}"
    cpu: Cores = 1.0
    memory: Memory = 512 * MiB
    link: LinkIn = Field(default_factory=LinkIn)


class NetworkIn(_Input):
    EXPECTED: ClassVar[str] = ("a network like {backend: mininet, switch: auto, shaping: auto, "
                               "congestion_control: cubic}")
    backend: NetworkBackend = "mininet"
    switch: Switch = "auto"
    shaping: Shaping = "auto"
    congestion_control: CongestionControl = "cubic"


class NodeIn(_Input):
    EXPECTED: ClassVar[str] = "a node like {id: w1, parent: ps1, sensors: [0, 1]}"
    id: NodeId = Field(description="an id like w1")
    parent: Optional[NodeId] = None
    cpu: Optional[Cores] = None
    memory: Optional[Memory] = None
    link: Optional[LinkIn] = None
    sensors: list[SensorIndex] = Field(default_factory=list,
                                       description="a list of sensor indices like [0, 1]")
    policy: Optional[PolicyIn] = None


class SpecIn(_Input):
    EXPECTED: ClassVar[str] = "a mapping of keys like name:, application:, data: and nodes:"
    name: RunName = Field(description="a name for the runs, like mnist-3level")
    seed: Seed = 0
    application: ApplicationIn
    data: DataIn
    windows: WindowsIn = Field(default_factory=WindowsIn)
    defaults: DefaultsIn = Field(default_factory=DefaultsIn)
    sensors: SensorsIn = Field(default_factory=SensorsIn)
    nodes: list[NodeIn] = Field(
        description="a list of nodes like [{id: root}, {id: w1, parent: root, sensors: [0]}]")
    cloud: Optional[CloudIn] = None
    network: NetworkIn = Field(default_factory=NetworkIn)
    timeout: Optional[Timeout] = None


# --- loading -------------------------------------------------------------------------------

def load_spec(path: str | Path) -> Spec:
    """Read, validate and resolve the spec in ``path``; SpecError names file, line and field."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise SpecError(f"{source}: cannot read the spec: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SpecError(f"{source}:{line}: the file is not UTF-8 text; "
                        "expected a YAML text file") from None
    return load_spec_text(text, source)


def load_spec_text(text: str, source: str = "<string>") -> Spec:
    """Validate and resolve spec ``text``; ``source`` names it in messages and in ``Spec.source``."""
    document = _read_yaml(text, source)
    problems = _Problems(source, document.lines)
    for path, message, line in document.duplicates:
        problems.add(path, message, line)
    model = _validate(document.data, problems)
    _check_tree(document.data, problems)
    from edgetestbed.topo.appcheck import check_plugins   # here: it builds on this module
    check_plugins(document.data, problems.add)
    problems.raise_if_any()
    spec = _resolve(model, source, problems)
    problems.raise_if_any()
    return spec


DocPath = tuple  # a place in the document: keys and list indices, e.g. ("nodes", 2, "link", "bw")


class _Problems:
    """Problems found so far, each placed at a line of the document."""

    def __init__(self, source: str, lines: dict[DocPath, int]) -> None:
        self.source, self.lines, self.found = source, lines, []

    def line(self, path: DocPath) -> int:
        """The line of ``path``, or of its nearest ancestor that the document has."""
        for length in range(len(path), -1, -1):
            if path[:length] in self.lines:
                return self.lines[path[:length]]
        return 1

    def add(self, path: DocPath, message: str, line: int | None = None) -> None:
        self.found.append((line or self.line(path), _path_text(path), message))

    def raise_if_any(self) -> None:
        if self.found:
            lines = [f"{self.source}:{line}: {path + ': ' if path else ''}{message}"
                     for line, path, message in sorted(set(self.found))]
            raise SpecError("\n".join(lines))


def _path_text(path: DocPath) -> str:
    text = "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)
    return text.lstrip(".")


# --- YAML: compose with line numbers, then construct ------------------------------------------

@dataclass
class _Document:
    data: dict
    lines: dict[DocPath, int]
    duplicates: list[tuple[DocPath, str, int]]


def _read_yaml(text: str, source: str) -> _Document:
    """Parse safely (SafeLoader only); syntax errors and non-mapping documents are fatal."""
    try:
        loader = yaml.SafeLoader(text)   # reads the whole text: may refuse a character already
        try:
            root = loader.get_single_node()
            if root is None:
                raise SpecError(f"{source}:1: the file is empty; expected a mapping with at least "
                                "name, application, data and nodes")
            walker = _Walker(source)
            walker.walk(root, ())
            data = loader.construct_document(root)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise SpecError(f"{source}:{_yaml_error_line(error, text)}: not valid YAML: "
                        f"{_yaml_problem(error)}; expected YAML mappings and lists, "
                        "indented with spaces") from None
    except RecursionError:
        raise SpecError(f"{source}:1: the document is nested too deeply; expected a spec") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}:{root.start_mark.line + 1}: the top level is {describe(data)}; "
                        f"expected {SpecIn.EXPECTED}")
    return _Document(data, walker.lines, walker.duplicates)


def _yaml_error_line(error: yaml.YAMLError, text: str) -> int:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        return mark.line + 1
    return text.count("\n", 0, getattr(error, "position", 0)) + 1


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's explanation on one line."""
    if isinstance(error, yaml.reader.ReaderError):
        return f"the character {error.character:#06x} is not allowed in YAML"
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    return ", ".join(part for part in parts if part) or str(error).splitlines()[0]


class _Walker:
    """Maps every key and list item of a composed document to its line; finds duplicate keys.

    Also refuses, before anything is constructed from them, recursive aliases, documents
    whose aliases expand to too many values, and documents nested too deeply.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[DocPath, int] = {}
        self.duplicates: list[tuple[DocPath, str, int]] = []
        self._sizes: dict[int, int] = {}
        self._open: set[int] = set()

    def walk(self, node: yaml.Node, path: DocPath) -> int:
        """The number of values under ``node`` with aliases expanded; records lines on the way."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if len(path) > MAX_YAML_DEPTH:
            raise SpecError(f"{self.source}:{node.start_mark.line + 1}: values are nested more than "
                            f"{MAX_YAML_DEPTH} levels deep; expected a spec of modest depth")
        if id(node) in self._open:
            raise SpecError(f"{self.source}:{node.start_mark.line + 1}: an alias refers to a value "
                            "that contains it; expected a tree of plain values")
        if id(node) not in self._sizes:
            self._open.add(id(node))
            size = 1 + sum(self.walk(child, place) for place, child in self._children(node, path))
            self._open.discard(id(node))
            self._sizes[id(node)] = size
            if size > MAX_YAML_VALUES:
                raise SpecError(f"{self.source}:{node.start_mark.line + 1}: aliases expand this to more "
                                f"than {MAX_YAML_VALUES} values; expected a spec of modest size")
        return self._sizes[id(node)]

    def _children(self, node: yaml.Node, path: DocPath) -> Iterator[tuple[DocPath, yaml.Node]]:
        if isinstance(node, yaml.SequenceNode):
            yield from (((*path, index), item) for index, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[object, int] = {}
            for key_node, value in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if key in first and key != "<<":
                    self.duplicates.append(((*path, key), f"duplicate key {quote(key)} (first at line "
                                            f"{first[key]}); expected each key once", line))
                first.setdefault(key, line)
                self.lines.setdefault((*path, key), line)
                yield (*path, key), value


# --- schema errors, in the user's words ------------------------------------------------------

def _validate(data: dict, problems: _Problems) -> SpecIn | None:
    """The validated input, or None after adding every schema error to ``problems``."""
    try:
        return SpecIn.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
    misspelt = set()
    explained = []
    for error in errors:
        keep_key = error["type"] in ("missing", "extra_forbidden")
        path = _document_path(error["loc"], data, keep_key)
        if error["type"] == "extra_forbidden":
            guess = closest(error["loc"][-1], _allowed_keys(error["loc"][:-1]))
            misspelt.update([(*path[:-1], guess)] if guess else [])
        explained.append((error["type"], path, _explain(error)))
    for kind, path, message in explained:
        if not (kind == "missing" and path in misspelt):   # already said: "did you mean ...?"
            problems.add(path, message)
    return None


def _document_path(loc: tuple, data: object, keep_key: bool) -> DocPath:
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
    if isinstance(shape, type) and issubclass(shape, _Input):
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


# --- the tree: checked on the raw data, so its errors come with the schema's ------------------

@dataclass(frozen=True)
class _Draft:
    """What the tree checks need of one node, read from the raw data."""

    index: int
    id: str
    parent: str | None
    sensors: list | None             # None: not a list (the schema reports that)
    has_link: bool

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
                             node.get("link") is not None))
    return drafts


def _is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _check_tree(data: dict, problems: _Problems) -> None:
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


def _check_unique(drafts: list[_Draft], problems: _Problems) -> bool:
    """True when ids are unique; the other checks need that."""
    first: dict[str, _Draft] = {}
    for draft in drafts:
        if draft.id in first:
            problems.add(draft.at("id"), f"duplicate id {draft.id!r} (first at line "
                         f"{problems.line(first[draft.id].at('id'))}); expected a unique id")
        first.setdefault(draft.id, draft)
    return len(first) == len(drafts)


def _check_parents(drafts: list[_Draft], by_id: dict[str, _Draft], problems: _Problems) -> bool:
    """True when every parent is a node."""
    unknown = [draft for draft in drafts if draft.parent is not None and draft.parent not in by_id]
    for draft in unknown:
        problems.add(draft.at("parent"), f"{draft.parent!r} is not a node"
                     f"{did_you_mean(draft.parent, list(by_id))}; expected the id of another node")
    return not unknown


def _check_root(drafts: list[_Draft], problems: _Problems) -> None:
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


def _check_cycles(drafts: list[_Draft], by_id: dict[str, _Draft], problems: _Problems) -> None:
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


def _report_cycle(cycle: list[_Draft], problems: _Problems) -> None:
    start = cycle.index(min(cycle, key=lambda draft: draft.index))
    ring = cycle[start:] + cycle[:start + 1]
    problems.add(ring[0].at("parent"), f"the parents form a cycle {' -> '.join(d.id for d in ring)}; "
                 "expected a tree, where following parents leads to the root")


def _check_leaves(drafts: list[_Draft], problems: _Problems, parents_known: bool) -> None:
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


def _check_sensor_owners(drafts: list[_Draft], problems: _Problems) -> None:
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


# --- resolution: defaults merged, units resolved ---------------------------------------------

# input key -> LinkSpec field
LINK_FIELDS = {"bw": "bw_mbit", "delay": "delay_ms", "jitter": "jitter_ms", "loss": "loss_pct",
               "queue": "queue"}


def _resolve(model: SpecIn, source: str, problems: _Problems) -> Spec:
    windows = WindowsSpec(model.windows.interval, model.windows.limit, model.windows.epochs)
    needed = windows.interval * windows.limit
    timeout = model.timeout if model.timeout is not None else needed * 3 + 120
    if timeout < needed:
        windows_take = f"{windows.limit} × {format_duration(windows.interval)} = {format_duration(needed)}"
        problems.add(("timeout",), f"{format_duration(timeout)} is shorter than the windows take "
                     f"({windows_take}); expected a longer timeout, or none "
                     "(default: interval × limit × 3 + 2min)")
    sensors, cloud, network = model.sensors, model.cloud, model.network
    return Spec(
        name=model.name, seed=model.seed, source=source, nodes=_resolve_nodes(model),
        application=ApplicationSpec(model.application.name, _freeze(model.application.model_extra)),
        data=DataSpec(model.data.dataset, model.data.partition, _data_params(model.data)),
        windows=windows,
        sensors=SensorsSpec(sensors.rate, _merge_link(LinkSpec(), sensors.link),
                            sensors.cpu, sensors.memory),
        cloud=None if cloud is None else CloudSpec(cloud.cpu, cloud.memory,
                                                   _merge_link(LinkSpec(), cloud.link)),
        network=NetworkSpec(network.switch, network.shaping, network.congestion_control, network.backend),
        timeout=timeout)


def _resolve_nodes(model: SpecIn) -> tuple[NodeSpec, ...]:
    defaults = model.defaults
    tree_link = _merge_link(LinkSpec(), defaults.link)
    parents = {node.id: node.parent for node in model.nodes}
    return tuple(
        NodeSpec(id=node.id, parent=node.parent,
                 children=tuple(child.id for child in model.nodes if child.parent == node.id),
                 level=_level(node.id, parents),
                 cpu=defaults.cpu if node.cpu is None else node.cpu,
                 memory=defaults.memory if node.memory is None else node.memory,
                 link=None if node.parent is None else _merge_link(tree_link, node.link),
                 sensors=tuple(node.sensors),
                 policy=_policy(node.policy or defaults.policy))
        for node in model.nodes)


def _level(node_id: str, parents: dict[str, str | None]) -> int:
    level = 0
    while parents[node_id] is not None:
        node_id, level = parents[node_id], level + 1
    return level


def _merge_link(base: LinkSpec, given: LinkIn | None) -> LinkSpec:
    """``base`` with the keys ``given`` states (null included) replaced."""
    if given is None:
        return base
    stated = {LINK_FIELDS[key]: getattr(given, key) for key in given.model_fields_set}
    return dataclasses.replace(base, **stated)


def _policy(model: PolicyIn) -> PolicySpec:
    return PolicySpec(model.type, _plugin_values(POLICIES, model.type, POLICY_PARAMS, model.model_extra))


def _data_params(data: DataIn) -> FrozenMap:
    """The partition's parameters and the dataset's (``lags`` for aqi), defaults applied."""
    return _plugin_values(PARTITIONS, data.partition, partial(params_model, dataset=data.dataset), data.model_extra)


POLICY_PARAMS = attrgetter("Params")   # a policy's parameters are its class's Params


def _plugin_values(registry: Registry, name: str, model: Callable[[type], type[BaseModel]],
                   given: Mapping[str, Any]) -> FrozenMap:
    """A plugin's parameters as ``model`` (of its class) reads them, defaults applied; as
    given when its ``module:Class`` is not found here (its processes check them)."""
    try:
        cls = registry.get(name)
    except PluginNotFound:
        return _freeze(dict(given))
    return _freeze(values(model(cls).model_validate(dict(given))))


def _plugin_input(registry: Registry, name: str, model: Callable[[type], type[BaseModel]],
                  params: Mapping[str, Any]) -> dict:
    """A plugin's resolved parameters as the spec writes them: ``push: 2s``, not 2.0."""
    try:
        cls = registry.get(name)
    except PluginNotFound:
        return thaw(params)
    return model(cls).model_construct(**thaw(params)).model_dump()


def _freeze(value: Any) -> Any:
    """Deeply immutable: mappings become FrozenMap, lists tuples."""
    if isinstance(value, dict):
        return FrozenMap({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# --- back to the input schema, for Spec.to_dict ----------------------------------------------

def _input_of(spec: Spec) -> SpecIn:
    """The resolved spec as (unvalidated) input models, every value explicit."""
    fields: dict[str, Any] = dict(
        name=spec.name, seed=spec.seed,
        application=ApplicationIn.model_construct(name=spec.application.name,
                                                  **thaw(spec.application.params)),
        data=DataIn.model_construct(
            dataset=spec.data.dataset, partition=spec.data.partition,
            **_plugin_input(PARTITIONS, spec.data.partition, partial(params_model, dataset=spec.data.dataset),
                            spec.data.params)),
        windows=WindowsIn.model_construct(**dataclasses.asdict(spec.windows)),
        sensors=SensorsIn.model_construct(rate=spec.sensors.rate, link=_link_input(spec.sensors.link),
                                          cpu=spec.sensors.cpu, memory=spec.sensors.memory),
        nodes=[_node_input(node) for node in spec.nodes],
        network=NetworkIn.model_construct(**dataclasses.asdict(spec.network)),
        timeout=spec.timeout)
    if spec.cloud is not None:
        fields["cloud"] = CloudIn.model_construct(cpu=spec.cloud.cpu, memory=spec.cloud.memory,
                                                  link=_link_input(spec.cloud.link))
    return SpecIn.model_construct(**fields)


def _node_input(node: NodeSpec) -> NodeIn:
    policy = PolicyIn.model_construct(
        type=node.policy.type, **_plugin_input(POLICIES, node.policy.type, POLICY_PARAMS, node.policy.params))
    fields: dict[str, Any] = dict(id=node.id, cpu=node.cpu, memory=node.memory, policy=policy)
    if not node.is_root:
        fields.update(parent=node.parent, link=_link_input(node.link))
    if node.is_worker:
        fields.update(sensors=list(node.sensors))
    return NodeIn.model_construct(**fields)


def _link_input(link: LinkSpec) -> LinkIn:
    return LinkIn.model_construct(**{key: getattr(link, name) for key, name in LINK_FIELDS.items()})
