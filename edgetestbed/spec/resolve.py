"""Resolution: defaults merged, units resolved; and back to the input schema, for ``Spec.to_dict``.

Resolution rules:

- A node's ``link`` (the edge to its parent) is merged key by key over ``defaults.link``;
  ``cpu``, ``memory``, ``policy``, ``codec``, ``pull_codec`` and (not for workers, which merge
  nothing and keep ``average``) ``aggregation`` come from ``defaults`` when the node omits them
  (or gives null). A policy or a codec chain is taken whole, never
  merged, since its keys depend on its type; ``codec: []`` (``pull_codec: []``) is a node's
  own choice of no codec.
- A codec parameter given as ``{by_link: ...}`` (``threshold``'s and ``two_step``'s ``wt``)
  becomes the number its rule gives for the node's own link, defaults merged (the root, with
  no link, gets the rule's base): the resolved spec, and so the wire, hold only numbers.
- ``sensors.link`` and ``cloud.link`` merge over an unshaped link, not over ``defaults.link``:
  they are different kinds of link from the tree's edges.
- The root has no link; leaves are the workers and each needs at least one sensor;
  only leaves have sensors. Sensor indices need not be contiguous.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from operator import attrgetter
from typing import Any, Callable, Mapping

from pydantic import BaseModel

from edgetestbed.aggregation import AGGREGATIONS, DEFAULT
from edgetestbed.codecs import CODECS, ByLink
from edgetestbed.data.partitions import PARTITIONS, params_model
from edgetestbed.params.fields import thaw
from edgetestbed.params.plugins import PluginNotFound, Registry, values
from edgetestbed.params.units import format_duration
from edgetestbed.policies import POLICIES
from edgetestbed.spec.churn import churn_input, resolve_churn
from edgetestbed.spec.events import event_input, resolve_events
from edgetestbed.spec.model import (AggregationSpec, ApplicationSpec, CloudSpec, CodecSpec, DataSpec, FrozenMap, LinkSpec,
                                    NetworkSpec, NodeSpec, PolicySpec, SensorsSpec, Spec,
                                    WindowsSpec)
from edgetestbed.spec.problems import Problems
from edgetestbed.spec.rounds import check_rounds
from edgetestbed.spec.schema import (AggregationIn, ApplicationIn, CloudIn, CodecIn, DataIn, LinkIn, NetworkIn, NodeIn,
                                     PolicyIn, SensorsIn, SpecIn, WindowsIn)

# input key -> LinkSpec field
LINK_FIELDS = {"bw": "bw_mbit", "delay": "delay_ms", "jitter": "jitter_ms", "loss": "loss_pct",
               "queue": "queue"}


def resolve(model: SpecIn, source: str, problems: Problems, base: Path = Path(".")) -> Spec:
    """The resolved spec; ``base`` is the directory a churn trace's path is relative to."""
    windows = WindowsSpec(model.windows.interval, model.windows.limit, model.windows.epochs)
    needed = windows.interval * windows.limit
    timeout = model.timeout if model.timeout is not None else needed * 3 + 120
    if timeout < needed:
        windows_take = f"{windows.limit} × {format_duration(windows.interval)} = {format_duration(needed)}"
        problems.add(("timeout",), f"{format_duration(timeout)} is shorter than the windows take "
                     f"({windows_take}); expected a longer timeout, or none "
                     "(default: interval × limit × 3 + 2min)")
    sensors, cloud, network = model.sensors, model.cloud, model.network
    nodes = _resolve_nodes(model)
    check_rounds(model, nodes, problems)
    network_spec = NetworkSpec(network.switch, network.shaping, network.congestion_control, network.backend,
                               network.cpu_idle)
    churn, churned = resolve_churn(model.churn, base, model.seed, len(model.events), nodes, windows, network_spec,
                                   problems)
    return Spec(
        name=model.name, seed=model.seed, source=source, nodes=nodes,
        application=ApplicationSpec(model.application.name, _freeze(model.application.model_extra)),
        data=DataSpec(model.data.dataset, model.data.partition, _data_params(model.data)),
        windows=windows,
        sensors=SensorsSpec(sensors.rate, _merge_link(LinkSpec(), sensors.link),
                            sensors.cpu, sensors.memory),
        cloud=None if cloud is None else CloudSpec(cloud.cpu, cloud.memory, _merge_link(LinkSpec(), cloud.link),
                                                   cloud.mode),
        network=network_spec, timeout=timeout,
        events=resolve_events(model, nodes, windows, network_spec, problems, churned), churn=churn)


def _resolve_nodes(model: SpecIn) -> tuple[NodeSpec, ...]:
    tree_link = _merge_link(LinkSpec(), model.defaults.link)
    parents = {node.id: node.parent for node in model.nodes}
    return tuple(_resolve_node(node, model, tree_link, parents) for node in model.nodes)


def _resolve_node(node: NodeIn, model: SpecIn, tree_link: LinkSpec, parents: dict[str, str | None]) -> NodeSpec:
    defaults = model.defaults
    link = None if node.parent is None else _merge_link(tree_link, node.link)
    merges = any(child.parent == node.id for child in model.nodes)
    return NodeSpec(id=node.id, parent=node.parent,
                    children=tuple(child.id for child in model.nodes if child.parent == node.id),
                    level=_level(node.id, parents),
                    cpu=defaults.cpu if node.cpu is None else node.cpu,
                    memory=defaults.memory if node.memory is None else node.memory,
                    link=link,
                    sensors=tuple(node.sensors),
                    policy=_policy(node.policy or defaults.policy),
                    codec=_codecs(defaults.codec if node.codec is None else node.codec, link),
                    pull_codec=_codecs(defaults.pull_codec if node.pull_codec is None else node.pull_codec, link),
                    aggregation=_aggregation(node.aggregation or defaults.aggregation) if merges else AggregationSpec())


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
    return PolicySpec(model.type, _plugin_values(POLICIES, model.type, PLUGIN_PARAMS, model.model_extra))


def _aggregation(model: AggregationIn) -> AggregationSpec:
    return AggregationSpec(model.type, _plugin_values(AGGREGATIONS, model.type, PLUGIN_PARAMS, model.model_extra))


def _codecs(chain: list[CodecIn], link: LinkSpec | None) -> tuple[CodecSpec, ...]:
    """A node's codec chain, a parameter given ``{by_link: ...}`` resolved for its ``link``."""
    return tuple(CodecSpec(codec.type, _for_link(_plugin_values(CODECS, codec.type, PLUGIN_PARAMS,
                                                                codec.model_extra), link))
                 for codec in chain)


def _for_link(params: FrozenMap, link: LinkSpec | None) -> FrozenMap:
    """``params`` with every ``{by_link: ...}`` as the number its rule gives for ``link``
    (none for the root, which pushes to no one: the rule's base)."""
    bw, loss = (None, 0.0) if link is None else (link.bw_mbit, link.loss_pct)
    return FrozenMap({key: value.for_link(bw, loss) if isinstance(value, ByLink) else value
                      for key, value in params.items()})


def _data_params(data: DataIn) -> FrozenMap:
    """The partition's parameters and the dataset's (``lags`` for aqi), defaults applied."""
    return _plugin_values(PARTITIONS, data.partition, partial(params_model, dataset=data.dataset), data.model_extra)


PLUGIN_PARAMS = attrgetter("Params")   # a policy's or a codec's parameters are its class's Params


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

def input_of(spec: Spec) -> SpecIn:
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
    explicit = [event for event in spec.events if getattr(event, "source", "events") == "events"]
    if explicit:   # absent when none: a spec without events reads as before; churn's are its own
        fields["events"] = [event_input(event) for event in sorted(explicit, key=lambda event: event.index)]
    if spec.churn is not None:
        fields["churn"] = churn_input(spec.churn)
    if spec.cloud is not None:
        mode = {"mode": spec.cloud.mode} if spec.cloud.centralized else {}   # a baseline's spec reads as before
        fields["cloud"] = CloudIn.model_construct(cpu=spec.cloud.cpu, memory=spec.cloud.memory,
                                                  link=_link_input(spec.cloud.link), **mode)
    return SpecIn.model_construct(**fields)


def _node_input(node: NodeSpec) -> NodeIn:
    policy = PolicyIn.model_construct(
        type=node.policy.type, **_plugin_input(POLICIES, node.policy.type, PLUGIN_PARAMS, node.policy.params))
    fields: dict[str, Any] = dict(id=node.id, cpu=node.cpu, memory=node.memory, policy=policy)
    for key in ("codec", "pull_codec"):   # absent, not [], when uncoded: a spec without codecs
        chain = getattr(node, key)          # reads as it always did
        if chain:
            fields[key] = [CodecIn.model_construct(
                type=codec.type, **_plugin_input(CODECS, codec.type, PLUGIN_PARAMS, codec.params))
                for codec in chain]
    if node.aggregation.type != DEFAULT:   # absent when the default: a spec without one reads as before
        fields["aggregation"] = AggregationIn.model_construct(
            type=node.aggregation.type,
            **_plugin_input(AGGREGATIONS, node.aggregation.type, PLUGIN_PARAMS, node.aggregation.params))
    if not node.is_root:
        fields.update(parent=node.parent, link=_link_input(node.link))
    if node.is_worker:
        fields.update(sensors=list(node.sensors))
    return NodeIn.model_construct(**fields)


def _link_input(link: LinkSpec) -> LinkIn:
    return LinkIn.model_construct(**{key: getattr(link, name) for key, name in LINK_FIELDS.items()})
