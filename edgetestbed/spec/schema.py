"""The input schema: the spec file's grammar as pydantic models, unknown keys refused everywhere.

The input, top level (``name``, ``application``, ``data`` and ``nodes`` are required)::

    name, seed, application{name, ...}, data{dataset, partition, ...},
    windows{interval, limit, epochs},
    defaults{cpu, memory, link, policy, codec, pull_codec, aggregation},
    sensors{rate, link, cpu, memory},
    nodes[{id, parent, cpu, memory, link, sensors, policy, codec, pull_codec, aggregation}],
    cloud{cpu, memory, link, mode}, network{backend, switch, shaping, congestion_control, cpu_idle}, timeout,
    events[{at | window, link, set{delay, jitter, loss, bw} | down: true | up: true
            | crash | restart | partition | heal | stop_sensor | start_sensor}], churn{trace | mtbf, mttr, nodes}

Quantities carry units (see :mod:`edgetestbed.params.units`). A link is
``{bw: 10Mbit, delay: 20ms, jitter: 2ms, loss: 1%, queue: 100}``; ``bw: null`` means
unlimited, ``queue: null`` the backend's default queue length.

Built-in defaults (used where the file is silent):

====================  ===========================================================
``seed``              0
``windows``           ``{interval: 3s, limit: 10, epochs: 1}``
``defaults``          ``{cpu: 0.5, memory: 256M, link: {} (unshaped), policy: {type: simple},
                      aggregation: {type: average}}``, no codec nor pull_codec (models
                      and updates travel as float32 tensors)
``sensors``           ``{rate: 40/s, link: {} (unshaped), cpu: 0.1, memory: 128M}``
``cloud``             absent: no cloud; when given, ``{cpu: 1.0, memory: 512M, link: {}, mode: baseline}``
                      (``centralized``: the sensors send their raw samples to the cloud across the
                      network and the tree's nodes do not run; see ``nodes/central.py``)
``network``           ``{backend: mininet, switch: auto, shaping: auto, congestion_control: cubic,
                      cpu_idle: poll}`` (``halt``: let idle CPUs halt; see ``topo/idlepoll.py``)
``timeout``           interval × limit × 3 + 120 s
``events``            none: the links and nodes stay as the spec gives them for the whole run
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
event ``at``          0 .. 7 days, and before interval × limit; ``window`` 0 .. limit − 1
plugin parameters     the plugin's own ``Params`` (below)
ids                   ``[A-Za-z][A-Za-z0-9_-]{0,31}``; ``name``: ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``
====================  ===========================================================

Exchange policies (``policy: {type: ...}``) and data partitions (``data: {partition:
...}``) are plugins, each one class in one module of :mod:`edgetestbed.policies` and
:mod:`edgetestbed.data.partitions`, which declares its meaning, its parameters with
their defaults and bounds, and, for a partition, the datasets it can split. This module
takes the names they register (and for policies ``module.path:ClassName``), suggests the
nearest for a misspelt one, and lists them in its messages. ``lags`` (aqi only, default 3,
0 .. 168) is how many past hours of PM2.5 are features.

Codecs (``codec:``, :mod:`edgetestbed.codecs`) are plugins the same way, by ``type`` (or
``module.path:ClassName``). A node's ``codec`` compresses its pushes to its parent: one
codec as a mapping (``codec: {type: quantize, bits: 8}``), or a chain as a list, encoded
left to right (``codec: [{type: 'my_codecs:Clip', limit: 0.1}, {type: quantize}]``;
every codec but the last must keep the tensors' shapes). A node without one takes
``defaults.codec``; ``codec: []`` on a node sends its updates uncoded whatever the
defaults say.

``threshold``'s and ``two_step``'s ``wt`` is a number, or derived from the node's link
(the edge to its parent, defaults merged): ``wt: {by_link: {base: 0.01, reference:
10Mbit, max: 0.5}}`` resolves to ``base × sqrt((reference / bw) / (1 − loss))``, at least
``base`` and at most ``max`` (optional; default none), so that a slower, lossier link
sends less. An unlimited link (``bw: null``), one at least as fast as ``reference`` and
lossless, and the root (no link) keep ``base``. The resolved spec holds the number (what
``check`` shows and ``to_dict`` writes); the rule is :mod:`edgetestbed.codecs.threshold`'s.

A node's ``pull_codec`` (same syntax as ``codec``, also in ``defaults``; ``pull_codec: []``
on a node opts out) is the chain its parent encodes the models it sends this node, in
reply to its pulls. A pulled model is never acknowledged, so only codecs that keep no
state between messages (``stateless``: ``quantize``; a researcher's codec if it says so)
may code it; ``topk``, ``threshold`` and ``two_step`` keep what they left out for later and
are refused. The root pulls from no one: its ``pull_codec`` is never used.

A parameter server's or the root's ``aggregation`` (:mod:`edgetestbed.aggregation`: when it
merges its children's updates and how; ``{type: average}`` unless ``defaults`` says
otherwise) is a plugin by ``type`` too. A worker merges nothing: ``aggregation`` on a worker
is refused (:mod:`edgetestbed.spec.tree`) and ``defaults.aggregation`` does not apply to it.

``events`` is a timeline of link changes during a run, each at ``at`` (a time from window
0's start) or at the start of ``window`` (exactly one), on ``link`` (a node's link to its
parent), doing exactly one of ``set`` (some of ``delay``, ``jitter``, ``loss``, ``bw``, as a
node's ``link`` writes them; ``queue`` cannot change), ``down: true`` or ``up: true``; or,
instead of ``link`` and its action, one node fault: ``crash``, ``restart``, ``partition`` or
``heal``, each naming a node, or ``stop_sensor`` / ``start_sensor``, naming a sensor index. Checks against the tree and the run (known link or node, within
the run, no contradictory events, a
``bw`` to change, an emulated network shaped in user space) are
:mod:`edgetestbed.spec.events`'s. ``churn`` (crashes and restarts from a trace file or drawn
from ``mtbf``/``mttr``) is :mod:`edgetestbed.spec.churn`'s.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Optional

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from edgetestbed.aggregation import AGGREGATIONS, DEFAULT
from edgetestbed.codecs import CODECS
from edgetestbed.data.datasets import DATASETS
from edgetestbed.data.partitions import PARTITIONS
from edgetestbed.params.fields import Bandwidth, Interval, bounded, choice, count, did_you_mean, matching, number, unit
from edgetestbed.params.plugins import CLASS_PATTERN, Registry
from edgetestbed.params.units import (format_duration, format_rate, format_size, parse_duration, parse_rate,
                                    parse_size, quote)
from edgetestbed.policies import POLICIES
from edgetestbed.spec.churn import ChurnIn
from edgetestbed.spec.eventsin import EventIn
from edgetestbed.spec.inputbase import InputModel, LinkDelay, Loss, NodeId, SensorIndex

MiB = 2**20
APPLICATIONS = ("mnist_mlp", "aqi", "svm")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _application_name(value: object) -> str:
    if isinstance(value, str) and (value in APPLICATIONS or CLASS_PATTERN.fullmatch(value)):
        return value
    raise ValueError(f"{quote(value)} is not an application{did_you_mean(value, list(APPLICATIONS))}; "
                     f"expected one of {', '.join(APPLICATIONS)}, or module.path:ClassName")


Memory = unit(int, parse_size, format_size, 32 * MiB, 2**40)
Rate = unit(float, parse_rate, format_rate, 0, 10_000, low_open=True)
Timeout = unit(float, parse_duration, format_duration, 1, 7 * 86400)
Cores = Annotated[float, BeforeValidator(bounded(number("a number of cores like 0.5"), 0.01, 256))]
Queue = count(1, 1_000_000, "a queue length in packets like 100")
Seed = count(0, 2**32 - 1, "a seed like 1")
WindowLimit = count(1, 100_000, "a number of windows like 10")
Epochs = count(1, 1000, "a number of epochs like 1")
Dataset = choice("a dataset", *DATASETS.names())
Switch = choice("a switch backend", "auto", "ovs", "ovs-user", "lxbr")
Shaping = choice("a shaping backend", "auto", "netem", "userspace")
NetworkBackend = choice("a network backend", "mininet", "loopback")
CpuIdle = choice("what idle CPUs do", "poll", "halt")
CloudMode = choice("a cloud mode", "baseline", "centralized")
RunName = matching(NAME_PATTERN, "a valid name",
                    "a letter or digit, then up to 63 letters, digits, '.', '_' or '-', "
                    "like mnist-3level")
CongestionControl = matching(re.compile(r"[a-z][a-z0-9_]{0,15}"), "a congestion control name",
                              "a kernel congestion control name like cubic or reno")


# --- the input models ----------------------------------------------------------------------

LINK = "a link like {bw: 10Mbit, delay: 5ms, jitter: 1ms, loss: 1%, queue: 100}"


class LinkIn(InputModel):
    EXPECTED: ClassVar[str] = LINK
    bw: Optional[Bandwidth] = None
    delay: LinkDelay = 0.0
    jitter: LinkDelay = 0.0
    loss: Loss = 0.0
    queue: Optional[Queue] = None


class _PluginIn(InputModel):
    """A section that picks a plugin of ``REGISTRY`` by the registry's key; every other key
    is a parameter, checked against the plugin's own model by :mod:`edgetestbed.spec.appcheck`."""

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


class CodecIn(_PluginIn):
    """A codec by its ``type``, and its parameters."""

    EXPECTED: ClassVar[str] = "a codec like {type: quantize, bits: 8}"
    REGISTRY: ClassVar[Registry] = CODECS
    type: str


class AggregationIn(_PluginIn):
    """An aggregation by its ``type``, and its parameters."""

    EXPECTED: ClassVar[str] = "an aggregation like {type: buffered, k: 2}"
    REGISTRY: ClassVar[Registry] = AGGREGATIONS
    type: str


def _one_or_more(value: object) -> object:
    """A single codec is a chain of one: ``codec: {type: topk, ...}`` reads as a list of it."""
    return [value] if isinstance(value, dict) else value


CODECS_TEXT = "a codec like {type: quantize, bits: 8}, or a list of them"
Codecs = Annotated[list[CodecIn], BeforeValidator(_one_or_more)]


class DataIn(_PluginIn):
    """A dataset and its ``partition`` among the sensors, and their parameters (the
    partition's and the dataset's own)."""

    EXPECTED: ClassVar[str] = "data like {dataset: mnist, partition: iid}"
    REGISTRY: ClassVar[Registry] = PARTITIONS
    dataset: Dataset = Field(description=f"a dataset: {' or '.join(DATASETS.names())}")
    partition: str


class ApplicationIn(InputModel):
    """Every key but ``name`` is a parameter, checked by :mod:`edgetestbed.spec.appcheck`."""

    model_config = ConfigDict(extra="allow", strict=True)
    EXPECTED: ClassVar[str] = "an application like {name: mnist_mlp, learning_rate: 0.4}"
    name: Annotated[str, BeforeValidator(_application_name)] = Field(
        description="an application: mnist_mlp, aqi, svm or module:Class")


class WindowsIn(InputModel):
    EXPECTED: ClassVar[str] = "windows like {interval: 3s, limit: 10, epochs: 1}"
    interval: Interval = 3.0
    limit: WindowLimit = 10
    epochs: Epochs = 1


class DefaultsIn(InputModel):
    EXPECTED: ClassVar[str] = "defaults like {cpu: 0.5, memory: 256M, link: {bw: 10Mbit}}"
    cpu: Cores = 0.5
    memory: Memory = 256 * MiB
    link: LinkIn = Field(default_factory=LinkIn)
    policy: PolicyIn = Field(default_factory=lambda: PolicyIn(type="simple"))
    codec: Codecs = Field(default_factory=list, description=CODECS_TEXT)
    pull_codec: Codecs = Field(default_factory=list, description=CODECS_TEXT)
    aggregation: AggregationIn = Field(default_factory=lambda: AggregationIn(type=DEFAULT))


class SensorsIn(InputModel):
    EXPECTED: ClassVar[str] = "sensors like {rate: 40/s, link: {bw: 2Mbit, delay: 1ms}}"
    rate: Rate = 40.0
    link: LinkIn = Field(default_factory=LinkIn)
    cpu: Cores = 0.1
    memory: Memory = 128 * MiB


class CloudIn(InputModel):
    EXPECTED: ClassVar[str] = "a cloud like {cpu: 1.0, link: {bw: 100Mbit, delay: 40ms}, mode: baseline}"
    cpu: Cores = 1.0
    memory: Memory = 512 * MiB
    link: LinkIn = Field(default_factory=LinkIn)
    mode: CloudMode = "baseline"


class NetworkIn(InputModel):
    EXPECTED: ClassVar[str] = ("a network like {backend: mininet, switch: auto, shaping: auto, "
                               "congestion_control: cubic}")
    backend: NetworkBackend = "mininet"
    switch: Switch = "auto"
    shaping: Shaping = "auto"
    congestion_control: CongestionControl = "cubic"
    cpu_idle: CpuIdle = "poll"


class NodeIn(InputModel):
    EXPECTED: ClassVar[str] = "a node like {id: w1, parent: ps1, sensors: [0, 1]}"
    id: NodeId = Field(description="an id like w1")
    parent: Optional[NodeId] = None
    cpu: Optional[Cores] = None
    memory: Optional[Memory] = None
    link: Optional[LinkIn] = None
    sensors: list[SensorIndex] = Field(default_factory=list,
                                       description="a list of sensor indices like [0, 1]")
    policy: Optional[PolicyIn] = None
    codec: Optional[Codecs] = Field(None, description=CODECS_TEXT)
    pull_codec: Optional[Codecs] = Field(None, description=CODECS_TEXT)
    aggregation: Optional[AggregationIn] = None


class SpecIn(InputModel):
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
    events: list[EventIn] = Field(
        default_factory=list, description="a list of events like [{at: 20s, link: w4, set: {delay: 200ms}}, "
        "{window: 5, crash: ps2}]")
    churn: Optional[ChurnIn] = None
