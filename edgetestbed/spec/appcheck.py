"""The spec's plugin sections checked against each plugin's own parameter model.

Five sections name a plugin, and every other key of theirs is one of its parameters:
``application:`` (by ``name``), each ``policy:``, ``aggregation:``, ``codec:`` and ``pull_codec:`` (by
``type``; a codec chain is a list of them, whose order is checked too, and a pull chain's
codecs must be ``stateless``) and ``data:`` (by ``partition``, with the dataset's own
``lags``). :func:`load_spec` calls
:func:`check_plugins` on the raw document, next to the tree checks, so that a misspelt or
out-of-range parameter is reported with file, line and field at ``validate`` time, with
every other problem, instead of by the processes once the network is built::

    topo.yaml:4: application.hiden: unknown key 'hiden' (did you mean 'hidden'?); expected one of ...
    topo.yaml:5: application.learning_rate: -3 is too small; expected a number above 0
    topo.yaml:9: nodes[1].policy.every: 0 is too small; expected at least 1 and at most 10000
    topo.yaml:9: nodes[1].codec.bits: 7 is not a number of bits here; expected 8 or 16 (for 1 bit, ...
    topo.yaml:9: nodes[1].pull_codec.type: topk keeps state between messages ...; expected one of quantize

The model is the one the plugin itself builds from (an application's ``Params``, see
:mod:`edgetestbed.applications.base`; a policy's or partition's, see
:mod:`edgetestbed.params.plugins`), so ``validate`` accepts exactly what the processes accept.
Reading it imports the plugin's module (numpy, for the built-in applications). A
``module:Class`` whose module is not found here, or an application whose ``Params`` is
``None``, keeps its parameters unchecked.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from pydantic import BaseModel, ValidationError

from edgetestbed.aggregation import AGGREGATIONS
from edgetestbed.applications.registry import BUILTIN, application_class
from edgetestbed.codecs import CODECS, chain_problem, stateful_problem
from edgetestbed.data.datasets import DATASETS
from edgetestbed.data.partitions import PARTITIONS, mismatch, params_model
from edgetestbed.errors import UserError
from edgetestbed.params.fields import explain
from edgetestbed.params.plugins import CLASS_PATTERN, PluginNotFound, Registry
from edgetestbed.params.units import quote
from edgetestbed.policies import POLICIES
from edgetestbed.spec.explain import document_path
from edgetestbed.spec.problems import DocPath

Report = Callable[[DocPath, str], None]   # Problems.add: a place in the document, a message


def check_plugins(data: object, report: Report) -> None:
    """Report every problem of the plugin sections' parameters through ``report``.

    ``data`` is the whole document as plain data. What the schema already refuses (no
    mapping, an unknown name, keys that are not text) is left to it.
    """
    if not isinstance(data, dict):
        return
    _check_application(data, report)
    nodes = data.get("nodes") if isinstance(data.get("nodes"), list) else []
    for owner in [("defaults",), *(("nodes", index) for index in range(len(nodes)))]:
        _check_plugin(data, (*owner, "policy"), POLICIES, "Policy", "policy", report)
        _check_plugin(data, (*owner, "aggregation"), AGGREGATIONS, "Aggregation", "aggregation", report)
        _check_codecs(data, (*owner, "codec"), report)
        _check_codecs(data, (*owner, "pull_codec"), report, stateless=True)
    _check_data(data, report)


def _value(data: dict, path: DocPath) -> Any:
    """The value at ``path``, or None when there is none."""
    value: Any = data
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return None
    return value


def _section(data: dict, path: DocPath) -> Optional[dict]:
    """The mapping at ``path``, or None when there is none."""
    value = _value(data, path)
    return value if isinstance(value, dict) else None


def _check_params(data: dict, path: DocPath, params: dict, model: type[BaseModel], noun: str,
                  report: Report) -> None:
    """``params`` (the section at ``path`` but its own keys) against ``model``."""
    try:
        model.model_validate(params)
    except ValidationError as error:
        for problem in error.errors():
            keep_key = problem["type"] in ("missing", "extra_forbidden")
            report(document_path((*path, *problem["loc"]), data, keep_key), explain(problem, model, noun))


def _params_of(section: dict, *own: str) -> dict:
    return {key: value for key, value in section.items() if key not in own and isinstance(key, str)}


def _check_application(data: dict, report: Report) -> None:
    section = _section(data, ("application",))
    model = _application_params(section.get("name"), report) if section is not None else None
    if model is not None:
        _check_params(data, ("application",), _params_of(section, "name"), model, "application", report)


def _application_params(name: object, report: Report) -> type | None:
    """The ``Params`` model of application ``name``, or None when there is none to check."""
    if not isinstance(name, str) or not (name in BUILTIN or CLASS_PATTERN.fullmatch(name)):
        return None   # the schema reports the name
    cls = _plugin_class(lambda: application_class(name), "application", "Application", name,
                        ("application", "name"), report)
    model = getattr(cls, "Params", None)
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        report(("application", "name"), f"{name}.Params is {quote(model)}; expected a pydantic "
               "model (a subclass of edgetestbed.applications.ApplicationParams) or None")
        return None
    return model


def _plugin_class(load: Callable[[], type], kind: str, base: str, name: str, path: DocPath,
                  report: Report) -> type | None:
    """``load()``'s class, or None: not found here (perhaps installed only where it runs;
    the processes say so if not) or reported at ``path`` as broken."""
    try:
        return load()
    except PluginNotFound:
        return None
    except UserError as error:   # the path names the plugin already
        problem = str(error).removeprefix(f"{kind} {name!r}: ")
        report(path, f"{problem}; expected module.path:ClassName of a concrete {base} subclass that imports")
        return None


def _check_plugin(data: dict, path: DocPath, registry: Registry, base: str, noun: str,
                  report: Report) -> type | None:
    """The section at ``path`` picks a plugin of ``registry`` by ``type``: its parameters
    checked; its class, or None when there is none to check."""
    section = _section(data, path)
    if section is None or not registry.accepts(section.get("type")):
        return None   # the schema reports it
    name = section["type"]
    cls = _plugin_class(lambda: registry.get(name), registry.kind, base, name, (*path, "type"), report)
    if cls is not None:
        _check_params(data, path, _params_of(section, "type"), cls.Params, noun, report)
    return cls


def _check_codecs(data: dict, path: DocPath, report: Report, stateless: bool = False) -> None:
    """A ``codec:`` (one mapping, or a list of them): each codec, then the chain's order;
    for a ``pull_codec:`` (``stateless``), that each codec keeps no state between messages."""
    chain = _value(data, path)
    if isinstance(chain, dict):
        paths = [path]
    elif isinstance(chain, list):
        paths = [(*path, index) for index in range(len(chain))]
    else:
        return   # none, or the schema reports it
    classes = [_check_plugin(data, place, CODECS, "Codec", "codec", report) for place in paths]
    for place, cls in zip(paths, classes):
        if stateless and cls is not None and not cls.stateless:
            report((*place, "type"), stateful_problem(_section(data, place)["type"]))
    if paths and None not in classes:   # a chain's order, once every codec in it is known
        problem = chain_problem(classes, [_section(data, place)["type"] for place in paths])
        if problem is not None:
            index, message = problem
            report((*paths[index], "type"), message)


def _check_data(data: dict, report: Report) -> None:
    section = _section(data, ("data",))
    if section is None or not PARTITIONS.accepts(section.get("partition")) \
            or not DATASETS.accepts(section.get("dataset")):
        return   # the schema reports it
    cls, dataset = PARTITIONS.get(section["partition"]), section["dataset"]
    if mismatch(cls, dataset):
        report(("data", "dataset"), mismatch(cls, dataset))
        return
    model = params_model(cls, dataset)
    params = _params_of(section, "dataset", "partition")
    for key in [key for key in params if key not in model.model_fields]:
        others = [cls.name for cls in DATASETS.plugins() if key in cls.Params.model_fields]
        if others:   # another dataset's parameter: say whose
            report(("data", key), f"{key} is for dataset {' or '.join(others)}; expected no {key} with {dataset}")
            del params[key]
    _check_params(data, ("data",), params, model, "partition", report)
