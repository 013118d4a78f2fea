"""The resolved spec: what the rest of edgetestbed codes against.

Frozen, typed and fully resolved: every default applied, every quantity in one unit
(Mbit/s, ms, %, bytes, seconds). Built by :mod:`edgetestbed.spec.resolve` from the input
:mod:`edgetestbed.spec.schema` validated; read by everything downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

__all__ = [
    "Spec", "NodeSpec", "LinkSpec", "PolicySpec", "CodecSpec", "AggregationSpec", "SensorsSpec", "CloudSpec", "NetworkSpec",
    "ApplicationSpec", "DataSpec", "WindowsSpec", "FrozenMap", "LinkChange", "LinkEvent", "NodeEvent", "ChurnSpec",
]


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
class CodecSpec:
    """One codec of the chain a node's pushes travel coded by: a registered name or
    ``module:Class``, with its parameters (defaults applied; a ``{by_link: ...}`` one as the
    number it gives for the node's link)."""

    type: str
    params: Mapping[str, object] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class AggregationSpec:
    """When a parameter server (or the root) merges its children's updates and how: a
    registered name (``average``, ``buffered``, ``async``, ``sync``) or ``module:Class``, with its
    parameters (defaults applied). A worker's is always ``average``, and unused."""

    type: str = "average"
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
    codec: tuple[CodecSpec, ...] = ()   # its pushes' codec chain, first codec first; () uncoded
    pull_codec: tuple[CodecSpec, ...] = ()   # the chain its parent codes the models it pulls by
    aggregation: AggregationSpec = field(default_factory=AggregationSpec)

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
    """The cloud host, attached to the root's switch by a WAN link. ``mode``: ``baseline``
    (it regenerates the sensors' samples locally and adds no traffic, beside the tree) or
    ``centralized`` (the sensors send it their raw samples across the network, and the tree's
    nodes do not run: the cost of sending everything to the cloud, measured)."""

    cpu: float
    memory: int
    link: LinkSpec
    mode: str = "baseline"

    @property
    def centralized(self) -> bool:
        return self.mode == "centralized"


@dataclass(frozen=True)
class NetworkSpec:
    """Backends to use (``auto``: chosen by the capability probe), TCP congestion control, and
    whether idle CPUs poll or halt while the network runs.

    ``backend: loopback`` emulates nothing (see :mod:`edgetestbed.topo.loopback`): the other
    fields, the links and the hosts' limits then apply to nothing."""

    switch: str = "auto"             # auto | ovs | ovs-user | lxbr
    shaping: str = "auto"            # auto | netem | userspace
    congestion_control: str = "cubic"
    backend: str = "mininet"         # mininet | loopback
    cpu_idle: str = "poll"           # poll | halt (see topo/idlepoll.py)

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
class LinkChange:
    """What a ``set`` event changes on a link, in :class:`LinkSpec`'s units; None: unchanged."""

    delay_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    bw_mbit: float | None = None

    def fields(self) -> dict[str, float]:
        """The fields it sets, by name (``delay_ms``, ...)."""
        return {name: value for name, value in vars(self).items() if value is not None}


class _Timed:
    """An event's time: ``at_s`` seconds from window 0's start, or the start of ``window``."""

    at_s: float | None
    window: int | None

    def offset(self, interval: float) -> float:
        """Seconds from window 0's start, windows lasting ``interval`` seconds."""
        return self.at_s if self.at_s is not None else self.window * interval

    def _time(self) -> dict:
        return {"at_s": self.at_s} if self.at_s is not None else {"window": self.window}


@dataclass(frozen=True)
class LinkEvent(_Timed):
    """One event of the spec's timeline: at ``at_s`` seconds from window 0's start, or at the
    start of ``window`` (exactly one is set), on the link from node ``link`` to its parent,
    either a ``change`` or a ``state`` (``down`` or ``up``), exactly one. ``index`` is its
    position in the file's ``events``. ``name`` is the action as the file wrote it: ``set``,
    ``down``, ``up``, or ``partition`` (a ``down``: the node's subtree cut off from its parent)
    and ``heal`` (an ``up``); when not given, ``set`` or the state."""

    index: int
    link: str
    at_s: float | None
    window: int | None
    change: LinkChange | None
    state: str | None                # 'down' | 'up'
    name: str = ""                   # 'set' | 'down' | 'up' | 'partition' | 'heal'

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", "set" if self.change is not None else self.state)

    def describe(self) -> dict:
        """A JSON-able record: index, link, at_s or window, action, and the set fields or the state."""
        record: dict = {"index": self.index, "link": self.link, **self._time(), "action": self.name}
        record.update(self.change.fields() if self.change is not None else {"state": self.state})
        return record


@dataclass(frozen=True)
class NodeEvent(_Timed):
    """A fault of a tree node at ``at_s`` seconds from window 0's start or at the start of
    ``window`` (exactly one is set): ``action`` ``crash`` (its process SIGKILLed) or
    ``restart`` (a new process). ``index`` is its position in the file's ``events``; ``source``
    is ``events``, or ``churn`` for one :mod:`edgetestbed.spec.churn` made (numbered after the
    file's events, always at ``at_s``)."""

    index: int
    node: str
    at_s: float | None
    window: int | None
    action: str                      # 'crash' | 'restart'
    source: str = "events"           # 'events' | 'churn'

    def describe(self) -> dict:
        """A JSON-able record: index, node, at_s or window, action; ``source: churn`` for churn's."""
        record = {"index": self.index, "node": self.node, **self._time(), "action": self.action}
        return {**record, "source": self.source} if self.source == "churn" else record


@dataclass(frozen=True)
class SensorEvent(_Timed):
    """Sensor ``sensor`` stopped (``action`` ``stop``: it sends nothing from then on, as a device
    switched off, its stream's time passing) or started again (``start``), at ``at_s`` seconds
    from window 0's start or at the start of ``window``. Known from the spec, so the sensor and
    the cloud baseline both apply it by the shared schedule
    (:func:`~edgetestbed.process.sampling.withheld`). ``index``: its position in ``events``."""

    index: int
    sensor: int
    at_s: float | None
    window: int | None
    action: str                      # 'stop' | 'start'

    @property
    def ident(self) -> str:
        return f"sensor{self.sensor}"

    def describe(self) -> dict:
        """A JSON-able record: index, node (``sensorK``), at_s or window, action (``stop_sensor``
        or ``start_sensor``, as the file writes it)."""
        return {"index": self.index, "node": self.ident, **self._time(), "action": f"{self.action}_sensor"}


@dataclass(frozen=True)
class FlowEvent(_Timed):
    """Background traffic (``background``): a UDP flow of ``rate_mbit`` Mbit/s from tree node
    ``sender``'s host to ``receiver``'s, from ``at_s`` (its ``start``) to ``stop_s`` seconds from
    window 0's start, across whatever links join them. ``index`` is its position in ``events``."""

    index: int
    sender: str
    receiver: str
    rate_mbit: float
    at_s: float
    stop_s: float
    window: None = None

    def describe(self) -> dict:
        """A JSON-able record: index, from, to (the nodes), rate_mbit, at_s, stop_s, action."""
        return {"index": self.index, "from": self.sender, "to": self.receiver, "rate_mbit": self.rate_mbit,
                "at_s": self.at_s, "stop_s": self.stop_s, "action": "background"}


@dataclass(frozen=True)
class ChurnSpec:
    """The spec's ``churn`` as given: a ``trace`` file (its path resolved against the spec's
    directory), or ``mtbf_s``/``mttr_s`` seconds for each of ``nodes``. Its events are in
    ``Spec.events``."""

    trace: str | None = None
    mtbf_s: float | None = None
    mttr_s: float | None = None
    nodes: tuple[str, ...] = ()


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
    events: tuple[LinkEvent | NodeEvent | SensorEvent | FlowEvent, ...] = ()   # by offset, then position in the file; churn's too
    churn: ChurnSpec | None = None

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

    @property
    def centralized(self) -> bool:
        """The sensors send their raw samples to the cloud; the tree's nodes run no process."""
        return self.cloud is not None and self.cloud.centralized

    @property
    def process_ids(self) -> tuple[str, ...]:
        """Every process a run starts: the tree's nodes in file order (unless centralized),
        the sensors (``sensor<K>``), the cloud."""
        from edgetestbed.spec.plan import CLOUD_ID, sensor_id   # plan builds on this module
        nodes = () if self.centralized else tuple(node.id for node in self.nodes)
        return nodes + tuple(sensor_id(k) for k in self.sensor_ids) + ((CLOUD_ID,) if self.cloud else ())

    def sensor_owner(self, index: int) -> str:
        """The id of the worker that sensor ``index`` streams to; KeyError if none."""
        for node in self.nodes:
            if index in node.sensors:
                return node.id
        raise KeyError(f"no sensor {index} in spec {self.name!r}")

    def to_dict(self) -> dict:
        """The input schema with every value explicit: loading it again gives an equal Spec."""
        from edgetestbed.spec.resolve import input_of   # here: resolve builds on this module
        return input_of(self).model_dump(exclude_unset=True, by_alias=True)
