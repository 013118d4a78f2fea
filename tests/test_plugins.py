"""Plugins that own their schema: registries, a researcher's own policy from ``module:Class``
checked by ``validate`` and run by real node processes on the loopback backend."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from edgetestbed.analysis.runlogs import RunLogs
from edgetestbed.aggregation import AGGREGATIONS
from edgetestbed.codecs import CODECS
from edgetestbed.data.datasets import DATASETS
from edgetestbed.data.partitions import PARTITIONS, datasets_of
from edgetestbed.data.streams import StreamDefinition
from edgetestbed.errors import UserError
from edgetestbed.params.plugins import Plugin, PluginParams, Registry
from edgetestbed.policies import POLICIES, Event, Moment, create_policy
from edgetestbed.runner import run_experiment
from edgetestbed.spec.load import load_spec_text
from test_nodes import LIMIT, run_spec
from test_spec import TREE, assert_problem

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"


def documented_policy() -> str:
    """The worked example of docs/architecture.md's "Add an exchange policy in one file": a
    researcher's own policy in a module of their own, which nothing in edgetestbed names."""
    section = ARCHITECTURE.read_text().split("### Add an exchange policy in one file", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def user_policy(tmp_path, monkeypatch):
    """``userpolicies:PushSome`` importable here and by the processes this test starts."""
    (tmp_path / "userpolicies.py").write_text(documented_policy())
    (tmp_path / "brokenpolicies.py").write_text("x = (\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    yield "userpolicies:PushSome"
    for name in ("userpolicies", "brokenpolicies"):
        sys.modules.pop(name, None)


def with_worker_policy(policy: str) -> str:
    """TREE with ``policy`` on worker w1, at line 9."""
    return TREE + f"    policy: {policy}\n"


# --- a researcher's own policy, from module:Class ---------------------------------------------

def test_a_users_policy_is_loaded_validated_and_resolved(user_policy):
    spec = load_spec_text(with_worker_policy(f"{{type: '{user_policy}', skip: 1}}"))
    assert (spec.node("w1").policy.type, dict(spec.node("w1").policy.params)) == (user_policy, {"skip": 1})
    policy = create_policy(user_policy, spec.node("w1").policy.params, trains=True)   # as a node does
    pushes = [i for i in range(6) if policy.wants_push(Event(Moment.STEP_END, i, 0.0))]
    assert pushes == [0, 2, 4]


@pytest.mark.parametrize("params, field, words", [
    ("skp: 1", "nodes[1].policy.skp", ["unknown key 'skp' (did you mean 'skip'?)", "expected one of skip"]),
    ("skip: 1, extra: 2", "nodes[1].policy.extra", ["unknown key 'extra'"]),
    ("skip: -1", "nodes[1].policy.skip", ["-1 is too small; expected a whole number of at least 0"]),
    ("skip: '1'", "nodes[1].policy.skip", ["got '1'; expected windows to skip after each push, like 1"]),
])
def test_a_users_policy_parameters_are_checked_with_file_line_and_field(tmp_path, user_policy, params, field, words):
    text = with_worker_policy(f"{{type: '{user_policy}', {params}}}")
    assert_problem(tmp_path, text, 9, field, *words)


def test_a_users_policy_without_a_required_parameter(tmp_path, user_policy):
    assert_problem(tmp_path, with_worker_policy(f"{{type: '{user_policy}'}}"), 9, "nodes[1].policy.skip",
                   "missing; expected windows to skip after each push, like 1 (the policy has no default)")


@pytest.mark.parametrize("name, words", [
    ("json:JSONDecoder", ["json.JSONDecoder is not a concrete subclass of edgetestbed.policies.Policy"]),
    ("userpolicies:SkipParams", ["userpolicies.SkipParams is not a concrete subclass"]),
    ("brokenpolicies:P", ["cannot import module 'brokenpolicies'", "never closed"]),
])
def test_a_class_that_is_no_policy_is_reported_at_its_type(tmp_path, user_policy, name, words):
    assert_problem(tmp_path, with_worker_policy(f"{{type: '{name}'}}"), 9, "nodes[1].policy.type", *words)


def test_a_policy_module_not_found_here_is_left_to_the_nodes():
    spec = load_spec_text(with_worker_policy("{type: 'no_such_policies_here:P', whatever: [1]}"))
    assert dict(spec.node("w1").policy.params) == {"whatever": (1,)}


def test_a_users_policy_runs_in_real_node_processes_on_the_loopback_backend(tmp_path, user_policy):
    nodes = ("  - {id: root}\n"
             f"  - {{id: w1, parent: root, sensors: [0], policy: {{type: '{user_policy}', skip: 1}}}}\n"
             "  - {id: w2, parent: root, sensors: [1]}\n")
    spec = load_spec_text(run_spec(nodes, rate="100/s") + "network: {backend: loopback}\n")
    summary = run_experiment(spec, tmp_path / "runs", say=lambda _: None)
    assert summary["completed"] and set(summary["finished"].values()) == {"DONE"}, summary["finished"]
    (run_dir,) = (tmp_path / "runs").iterdir()
    logs = RunLogs.read(run_dir)

    def pushes(worker: str) -> list[int]:
        """The windows after which ``worker`` sent a PUSH (a resent one counted once)."""
        sent = {e.payload["seq"]: e.payload["window"] for e in logs.events(worker, "CONNECTION")
                if e.payload["direction"] == "sent" and e.payload["kind"] == "PUSH"}
        return list(sent.values())

    # its own pushes, after windows 0 and 2, then the final synchronisation's after the last window
    assert pushes("w1") == [*range(0, LIMIT, 2), LIMIT - 1]
    assert pushes("w2") == list(range(LIMIT))   # simple, unchanged


# --- the built-in registries ----------------------------------------------------------------

def test_builtin_plugins_are_registered_in_listing_order_and_describe_themselves():
    assert POLICIES.names() == ["simple", "time", "window", "downpour", "significance", "relevance", "accuracy"]
    assert PARTITIONS.names() == ["iid", "biased", "by_label", "replicated", "mixed", "by_year", "by_season"]
    assert DATASETS.names() == ["mnist", "aqi"]
    assert CODECS.names() == ["quantize", "topk", "threshold", "two_step", "sign"]
    assert AGGREGATIONS.names() == ["average", "buffered", "async", "sync"]
    for cls in POLICIES.plugins() + AGGREGATIONS.plugins() + CODECS.plugins() + PARTITIONS.plugins() \
            + DATASETS.plugins():
        assert cls.__doc__ and issubclass(cls.Params, PluginParams), cls


def test_the_readme_lists_every_builtin_plugin_with_its_parameters():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    def rows(cls) -> list[str]:   # an application and a dataset may share a name (aqi)
        return [line for line in readme.splitlines() if line.startswith(f"| `{cls.name}` |")]

    for cls in POLICIES.plugins() + AGGREGATIONS.plugins() + CODECS.plugins() + PARTITIONS.plugins() \
            + DATASETS.plugins():
        assert any(all(f"`{field}`" in row for field in cls.Params.model_fields) for row in rows(cls)), \
            f"no README row for {cls.name} naming {list(cls.Params.model_fields)}"
    for cls in PARTITIONS.plugins():
        (row,) = rows(cls)
        assert all(f"`{dataset}`" in row for dataset in datasets_of(cls)), row


@pytest.mark.parametrize("lookup, words", [
    (lambda: POLICIES.get("tme"), "unknown exchange policy 'tme' (did you mean 'time'?); expected one of simple"),
    (lambda: POLICIES.get("gossip"), "unknown exchange policy 'gossip'; expected one of simple, time, window, "
                                     "downpour, significance, relevance, accuracy, or module.path:ClassName"),
    (lambda: PARTITIONS.get("biassed"), "unknown partition 'biassed' (did you mean 'biased'?)"),
    (lambda: PARTITIONS.get("a.b:C"), "unknown partition 'a.b:C'"),   # partitions are built in only
    (lambda: StreamDefinition("mnist", "by_lable"), "no partition 'by_lable' (did you mean 'by_label'?)"),
])
def test_unknown_names_get_a_did_you_mean(lookup, words):
    with pytest.raises(UserError) as caught:
        lookup()
    assert words in str(caught.value)


@pytest.mark.parametrize("text, line, field, words", [
    (with_worker_policy("{type: windw, every: 2}"), 9, "nodes[1].policy",
     ["'windw' is not a known type (did you mean 'window'?)", "module.path:ClassName"]),
    (with_worker_policy("{every: 2}"), 9, "nodes[1].policy", ["'type' is missing", "types: simple, time, window"]),
    (TREE.replace("partition: iid", "partition: by_yaer"), 3, "data",
     ["'by_yaer' is not a known partition (did you mean 'by_year'?)", "expected one of iid, biased"]),
])
def test_unknown_names_in_a_spec_get_a_did_you_mean_at_their_line(tmp_path, text, line, field, words):
    assert_problem(tmp_path, text, line, field, *words)


# --- the registry itself: one new file is one new plugin --------------------------------------

class Shape(Plugin):
    """A kind of plugin for these tests."""


def test_a_new_module_in_the_package_registers_itself(tmp_path, monkeypatch):
    package = tmp_path / "shapes"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        from edgetestbed.params.plugins import Registry
        from test_plugins import Shape
        SHAPES = Registry("shape", Shape, "shape", "shapes", classes=False)
    '''))
    for name, rank in (("square", 1), ("circle", 0)):
        (package / f"{name}.py").write_text(textwrap.dedent(f'''
            from shapes import SHAPES
            from test_plugins import Shape

            @SHAPES.register
            class {name.title()}(Shape):
                """A {name}."""
                name = "{name}"
                rank = {rank}
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        from shapes import SHAPES
        assert SHAPES.names() == ["circle", "square"]   # by rank, whatever the file names
        assert SHAPES.get("square").__doc__ == "A square."
        with pytest.raises(UserError, match=r"unknown shape 'sqare' \(did you mean 'square'\?\)"):
            SHAPES.get("sqare")
    finally:
        for name in [name for name in sys.modules if name == "shapes" or name.startswith("shapes.")]:
            del sys.modules[name]


def test_a_plugin_without_a_name_or_with_a_taken_one_is_refused():
    shapes = Registry("shape", Shape, "shape", __name__, classes=False)

    class Nameless(Shape):
        pass

    class Square(Shape):
        name = "square"

    class Another(Shape):
        name = "square"

    class BadParams(Shape):
        name = "bad"
        Params = dict

    shapes.register(Square)
    for cls, words in ((Nameless, "declares no name"), (Another, "registered twice"), (BadParams, "not a pydantic")):
        with pytest.raises(TypeError, match=words):
            shapes.register(cls)
