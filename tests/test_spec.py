"""The experiment spec: resolved values, and errors that name file, line and field."""

import dataclasses
import random
from pathlib import Path

import pytest
import yaml

from edgetestbed.errors import SpecError
from edgetestbed.spec.load import load_spec, load_spec_text
from edgetestbed.spec.model import LinkSpec, PolicySpec

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))

# Three lines every test spec starts with; bodies below start at line 4.
HEAD = """\
name: t
application: {name: mnist_mlp}
data: {dataset: mnist, partition: iid}
"""

# Lines 4-8: a root and one worker.
TREE = HEAD + """\
nodes:
  - id: root
  - id: w1
    parent: root
    sensors: [0]
"""


def problems(tmp_path: Path, text: str) -> str:
    """The message of the SpecError that loading ``text`` as topo.yaml raises."""
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return str(caught.value)


def assert_problem(tmp_path: Path, text: str, line: int, field: str, *words: str) -> None:
    """Loading ``text`` fails with a line ``topo.yaml:LINE: FIELD: ...`` containing ``words``."""
    message = problems(tmp_path, text)
    prefix = f"{tmp_path / 'topo.yaml'}:{line}: {field + ': ' if field else ''}"
    matching = [entry for entry in message.splitlines() if entry.startswith(prefix)]
    assert matching, f"no line starting {prefix!r} in:\n{message}"
    for word in words:
        assert any(word in entry for entry in matching), f"{word!r} not in {matching}"


# --- values: one bad field, appended at line 9 ------------------------------------------------

@pytest.mark.parametrize("extra, field, words", [
    ("defaults: {link: {bw: 10MB}}", "defaults.link.bw",
     ["'10MB' is not a bandwidth; expected bits per second like 10Mbit (MB would be bytes)"]),
    ("defaults: {link: {bandwith: 10Mbit}}", "defaults.link.bandwith",
     ["unknown key 'bandwith'", "did you mean 'bw'?", "expected one of bw, delay, jitter, loss, queue"]),
    ("windwos: {limit: 3}", "windwos", ["unknown key 'windwos'", "did you mean 'windows'?"]),
    ("seed: one", "seed", ["'one' is not a whole number"]),
    ("sensors: 40/s", "sensors", ["got '40/s'", "expected sensors like {rate: 40/s"]),
    ("defaults: {link: {delay: 20}}", "defaults.link.delay", ["write 20ms or 20s, not 20"]),
    ("defaults: {link: {delay: -5ms}}", "defaults.link.delay", ["too small", "at least 0ms"]),
    ("defaults: {link: {delay: 11s}}", "defaults.link.delay", ["too large", "at most 10s"]),
    ("defaults: {link: {jitter: lots}}", "defaults.link.jitter", ["not a duration"]),
    ("defaults: {link: {loss: 1}}", "defaults.link.loss", ["write 1%, not 1"]),
    ("defaults: {link: {loss: 100%}}", "defaults.link.loss", ["too large", "less than 100%"]),
    ("defaults: {link: {bw: 200Gbit}}", "defaults.link.bw", ["too large", "at most 100Gbit"]),
    ("defaults: {link: {queue: 0}}", "defaults.link.queue", ["too small", "at least 1"]),
    ("defaults: {link: {queue: '100'}}", "defaults.link.queue", ["not a whole number"]),
    ("defaults: {cpu: 0}", "defaults.cpu", ["too small", "at least 0.01"]),
    ("defaults: {cpu: 300}", "defaults.cpu", ["too large", "at most 256"]),
    ("defaults: {cpu: half}", "defaults.cpu", ["not a number", "cores"]),
    ("defaults: {memory: 16M}", "defaults.memory", ["too small", "at least 32M"]),
    ("defaults: {memory: 2T}", "defaults.memory", ["too large", "at most 1T"]),
    ("defaults: {memory: 256}", "defaults.memory", ["write 256M, not 256"]),
    ("defaults: {policy: {type: tme}}", "defaults.policy", ["'tme' is not a known type", "did you mean 'time'?"]),
    ("defaults: {policy: {type: time}}", "defaults.policy.push", ["missing", "a push interval like 2s"]),
    ("defaults: {policy: {type: window, every: 2, push: 1s}}", "defaults.policy.push", ["unknown key 'push'"]),
    ("sensors: {rate: 0/s}", "sensors.rate", ["too small", "more than 0/s"]),
    ("sensors: {rate: 40}", "sensors.rate", ["write 40/s, not 40"]),
    ("cloud: {cpu: -1}", "cloud.cpu", ["too small"]),
    ("network: {switch: ovs2}", "network.switch", ["did you mean 'ovs'?", "auto, ovs, ovs-user, lxbr"]),
    ("network: {congestion_control: 'BBR!'}", "network.congestion_control", ["like cubic"]),
    ("network: {cpu_idle: spin}", "network.cpu_idle", ["poll, halt"]),
    ("windows: {interval: 0s}", "windows.interval", ["too small", "at least 10ms"]),
    ("windows: {limit: 0}", "windows.limit", ["too small"]),
    ("timeout: 5s", "timeout", ["shorter than the windows take", "10 × 3s = 30s"]),
])
def test_bad_value_is_reported_at_its_line_and_field(tmp_path, extra, field, words):
    assert_problem(tmp_path, TREE + extra + "\n", 9, field, *words)


@pytest.mark.parametrize("data, field, words", [
    ("{dataset: aqi, partition: biased}", "data.dataset",
     ["partition 'biased' does not apply to 'aqi'", "iid, replicated, by_year, by_season"]),
    ("{dataset: mnist, partition: by_year}", "data.dataset", ["expected dataset aqi"]),
    ("{dataset: mnist, partition: iid, lags: 3}", "data.lags", ["for dataset aqi"]),
    ("{dataset: aqi, partition: iid, lags: 200}", "data.lags", ["at most 168"]),
    ("{dataset: mnist, partition: by_label, labels: [[0, 1], [10]]}", "data.labels",
     ["not a list of lists of digits", "like [[0, 1], [2, 3]]"]),
    ("{dataset: mnist, partition: iid, bias: 0.5}", "data.bias", ["unknown key 'bias'"]),
    ("{dataset: mnist, partition: biased, bias: 1.5}", "data.bias", ["too large", "at most 1"]),
    ("{dataset: mnist}", "data", ["'partition' is missing", "iid, biased, by_label, replicated, mixed"]),
    ("{dataset: cifar, partition: iid}", "data.dataset", ["'cifar' is not a dataset", "mnist, aqi"]),
    ("{dataset: mnist, partition: by_label, labels: 11}", "data.labels", ["at most 10"]),
])
def test_bad_data_is_reported(tmp_path, data, field, words):
    text = TREE.replace("data: {dataset: mnist, partition: iid}", f"data: {data}")
    assert_problem(tmp_path, text, 3, field, *words)


@pytest.mark.parametrize("data, params", [
    ("{dataset: mnist, partition: iid}", {}),
    ("{dataset: mnist, partition: biased}", {"bias": 0.64}),
    ("{dataset: mnist, partition: by_label}", {"labels": 2}),
    ("{dataset: mnist, partition: by_label, labels: [[0, 1], [2]]}", {"labels": ((0, 1), (2,))}),
    ("{dataset: mnist, partition: mixed, bias: 0.9}", {"bias": 0.9, "biased_fraction": 0.5}),
    ("{dataset: aqi, partition: by_season}", {"lags": 3}),
    ("{dataset: aqi, partition: replicated, lags: 0}", {"lags": 0}),
])
def test_data_parameters_get_their_defaults(data, params):
    spec = load_spec_text(TREE.replace("{dataset: mnist, partition: iid}", data))
    assert spec.data.params == params
    assert load_spec_text(yaml.safe_dump(spec.to_dict())) == spec


def test_application_name_gets_a_suggestion(tmp_path):
    text = TREE.replace("{name: mnist_mlp}", "{name: mnist_mpl}")
    assert_problem(tmp_path, text, 2, "application.name", "did you mean 'mnist_mlp'?", "module.path:ClassName")


def test_missing_required_keys(tmp_path):
    message = problems(tmp_path, "seed: 1\nnodes: [{id: r, sensors: [0]}]\n")
    for field in ("name", "application", "data"):
        assert f"topo.yaml:1: {field}: missing; expected" in message


def test_misspelt_required_key_is_reported_once(tmp_path):
    message = problems(tmp_path, HEAD + "nodez: [{id: r, sensors: [0]}]\n")
    assert "topo.yaml:4: nodez: unknown key 'nodez' (did you mean 'nodes'?)" in message
    assert "nodes: missing" not in message


def test_every_problem_is_reported_at_once(tmp_path):
    text = TREE.replace("sensors: [0]", "sensors: [0]\n    link: {bw: 10MB}") + "seed: -1\ncloud: {cpu: 0}\n"
    lines = problems(tmp_path, text).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["nodes[1].link.bw", "seed", "cloud.cpu"]


# --- the tree -----------------------------------------------------------------------------------

def one_more_node(node: str) -> str:
    """TREE with a third node appended at line 9."""
    return TREE + node


@pytest.mark.parametrize("text, line, field, words", [
    pytest.param(HEAD + "nodes:\n  - id: root\n  - parent: root\n    sensors: [0]\n",
                 6, "nodes[1].id", ["missing; expected an id like w1"], id="missing id"),
    pytest.param(one_more_node("  - id: w1\n    parent: root\n    sensors: [1]\n"),
                 9, "nodes[2].id", ["duplicate id 'w1' (first at line 6)"], id="duplicate id"),
    pytest.param(TREE.replace("parent: root", "parent: rot"),
                 7, "nodes[1].parent", ["'rot' is not a node", "did you mean 'root'?"], id="unknown parent"),
    pytest.param(one_more_node("  - id: a\n    parent: b\n    sensors: [1]\n  - id: b\n    parent: a\n"),
                 10, "nodes[2].parent", ["cycle a -> b -> a"], id="cycle"),
    pytest.param(one_more_node("  - id: a\n    parent: a\n    sensors: [1]\n"),
                 10, "nodes[2].parent", ["cycle a -> a"], id="own parent"),
    pytest.param(one_more_node("  - id: other\n    sensors: [1]\n"),
                 9, "nodes[2]", ["'other' has no parent, but 'root' (line 5) is already the root"], id="two roots"),
    pytest.param(HEAD + "nodes:\n  - id: a\n    parent: b\n  - id: b\n    parent: a\n    sensors: [0]\n",
                 4, "nodes", ["no node is the root; expected exactly one node without a parent"], id="no root"),
    pytest.param(one_more_node("  - id: w2\n    parent: root\n    sensors: [1, 0]\n"),
                 11, "nodes[2].sensors[1]", ["sensor 0 is already assigned to 'w1' (line 8)"], id="sensor twice"),
    pytest.param(TREE.replace("  - id: root\n", "  - id: root\n    sensors: [5]\n"),
                 6, "nodes[0].sensors", ["'root' has children (w1)", "only on leaves"], id="sensors on non-leaf"),
    pytest.param(one_more_node("  - id: w2\n    parent: root\n"),
                 9, "nodes[2].sensors", ["worker 'w2' has no sensors"], id="worker without sensors"),
    pytest.param(TREE.replace("  - id: root\n", "  - id: root\n    link: {bw: 1Mbit}\n"),
                 6, "nodes[0].link", ["the root has no parent, so it has no link"], id="link on root"),
    pytest.param(HEAD + "nodes: []\n", 4, "nodes", ["the list is empty"], id="no nodes"),
])
def test_tree_problem_is_reported_at_its_line_and_field(tmp_path, text, line, field, words):
    assert_problem(tmp_path, text, line, field, *words)


@pytest.mark.parametrize("node_id", ["1w", "w 1", "w.1", "a" * 33, "true"])
def test_ids_must_be_simple_names(tmp_path, node_id):
    text = TREE.replace("id: w1", f"id: {node_id}")
    assert_problem(tmp_path, text, 6, "nodes[1].id", "is not a valid id", "a letter, then up to 31")


def test_negative_sensor_index(tmp_path):
    assert_problem(tmp_path, TREE.replace("[0]", "[-1]"), 8, "nodes[1].sensors[0]", "too small")


def test_tree_and_value_problems_come_together(tmp_path):
    text = TREE.replace("parent: root", "parent: rot\n    cpu: 0")
    message = problems(tmp_path, text)
    assert "topo.yaml:7: nodes[1].parent: 'rot' is not a node" in message
    assert "topo.yaml:8: nodes[1].cpu: 0 is too small" in message


# --- the file itself ----------------------------------------------------------------------------

def test_yaml_syntax_error_has_its_line(tmp_path):
    text = TREE.replace("    parent: root", "   parent: root")
    assert_problem(tmp_path, text, 7, "", "not valid YAML")


def test_empty_file(tmp_path):
    assert_problem(tmp_path, "# only a comment\n", 1, "", "the file is empty")


def test_top_level_not_a_mapping(tmp_path):
    assert_problem(tmp_path, "- a\n- b\n", 1, "", "the top level is a list", "expected a mapping")


def test_duplicate_key(tmp_path):
    assert_problem(tmp_path, TREE + "name: u\n", 9, "name", "duplicate key 'name' (first at line 1)")


def test_python_tags_are_refused(tmp_path):
    assert_problem(tmp_path, TREE + "seed: !!python/object/apply:os.system [true]\n", 9, "",
                   "not valid YAML", "python/object")


def test_recursive_alias_is_refused(tmp_path):
    assert_problem(tmp_path, TREE + "application: &a {name: svm, x: *a}\n", 9, "", "alias")


def test_unreadable_file(tmp_path):
    with pytest.raises(SpecError, match="missing.yaml: cannot read the spec"):
        load_spec(tmp_path / "missing.yaml")


def test_text_source_names_the_problem():
    with pytest.raises(SpecError, match=r"^mine:1: name: missing"):
        load_spec_text(TREE.replace("name: t\n", ""), source="mine")


def test_mangled_input_never_escapes_as_a_traceback():
    """Random edits of a real example: loading either works or raises SpecError."""
    original = EXAMPLES[0].read_text()
    rng = random.Random(7)
    for _ in range(400):
        text = list(original)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(text))
            text[position] = rng.choice(["", ":", "-", " ", "\n", "[", "{", "0", "x", "%", "*", "&a ", "'"])
        try:
            load_spec_text("".join(text))
        except SpecError:
            pass


# --- resolved values ----------------------------------------------------------------------------

def test_links_merge_key_by_key_over_defaults():
    spec = load_spec_text(HEAD + """\
defaults:
  link: {bw: 10Mbit, delay: 5ms, loss: 1%}
nodes:
  - id: root
  - {id: a, parent: root, sensors: [0]}
  - {id: b, parent: root, sensors: [1], link: {delay: 20ms, jitter: 2ms}}
  - {id: c, parent: root, sensors: [2], link: {bw: null, queue: 50}}
  - {id: d, parent: root, sensors: [3], link: {bw: 500kbit}}
""")
    assert spec.node("a").link == LinkSpec(bw_mbit=10.0, delay_ms=5.0, loss_pct=1.0)
    assert spec.node("b").link == LinkSpec(bw_mbit=10.0, delay_ms=20.0, jitter_ms=2.0, loss_pct=1.0)
    assert spec.node("c").link == LinkSpec(bw_mbit=None, delay_ms=5.0, loss_pct=1.0, queue=50)
    assert spec.node("d").link.bw_mbit == 0.5
    assert spec.root.link is None


def test_resources_and_policy_come_from_defaults_unless_given():
    spec = load_spec_text(HEAD + """\
defaults: {cpu: 0.25, memory: 128M, policy: {type: window, every: 3}}
nodes:
  - id: root
  - {id: a, parent: root, sensors: [0]}
  - {id: b, parent: root, sensors: [1], cpu: 1, memory: 1G, policy: {type: time, push: 2s}}
""")
    a, b = spec.node("a"), spec.node("b")
    assert (a.cpu, a.memory, a.policy) == (0.25, 128 * 2**20, PolicySpec("window", {"every": 3}))
    assert (b.cpu, b.memory) == (1.0, 2**30)
    assert b.policy == PolicySpec("time", {"push": 2.0, "pull": 2.0})   # whole, not merged; pull follows push


def test_built_in_defaults():
    spec = load_spec_text(TREE)
    worker = spec.node("w1")
    assert (worker.cpu, worker.memory, worker.link, worker.policy) == (
        0.5, 256 * 2**20, LinkSpec(), PolicySpec("simple", {}))
    assert spec.seed == 0
    assert (spec.windows.interval, spec.windows.limit, spec.windows.epochs) == (3.0, 10, 1)
    assert (spec.sensors.rate, spec.sensors.link, spec.sensors.cpu, spec.sensors.memory) == (
        40.0, LinkSpec(), 0.1, 128 * 2**20)
    assert spec.cloud is None
    assert (spec.network.switch, spec.network.shaping, spec.network.congestion_control, spec.network.cpu_idle) \
        == ("auto", "auto", "cubic", "poll")
    assert spec.timeout == 3.0 * 10 * 3 + 120


def test_sensor_and_cloud_links_do_not_inherit_tree_defaults():
    spec = load_spec_text(TREE + """\
defaults: {link: {bw: 10Mbit, delay: 5ms}}
sensors: {rate: 120/min, link: {delay: 1ms}}
cloud: {link: {bw: 100Mbit, delay: 40ms}}
timeout: 2min
""")
    assert spec.sensors.rate == 2.0
    assert spec.sensors.link == LinkSpec(delay_ms=1.0)
    assert (spec.cloud.cpu, spec.cloud.memory, spec.cloud.link) == (1.0, 512 * 2**20, LinkSpec(100.0, 40.0))
    assert spec.timeout == 120.0


def test_data_and_application_parameters():
    spec = load_spec_text(TREE.replace("{name: mnist_mlp}", "{name: my.apps:Forest, trees: [1, 2], depth: {max: 3}}")
                          .replace("partition: iid", "partition: biased"))
    assert spec.application.name == "my.apps:Forest"
    assert spec.application.params == {"trees": (1, 2), "depth": {"max": 3}}
    assert (spec.data.dataset, spec.data.partition, spec.data.params) == ("mnist", "biased", {"bias": 0.64})
    with pytest.raises(TypeError):
        spec.application.params["trees"] = 3


def test_roles_levels_and_lookups():
    spec = load_spec(Path(__file__).parent.parent / "examples" / "default.yaml")
    assert spec.root.id == "root" and spec.root.role == "root" and spec.root.level == 0
    assert [node.id for node in spec.parameter_servers] == ["ps1", "ps2"]
    assert [node.id for node in spec.workers] == ["w1", "w2", "w3", "w4"]
    assert spec.node("ps1").children == ("w1", "w2") and spec.node("ps1").role == "ps"
    assert spec.node("w4").level == 2 and spec.node("w4").role == "worker"
    assert spec.sensor_ids == tuple(range(8))
    assert spec.sensor_owner(5) == "w3"
    assert spec.node("w4").link == LinkSpec(bw_mbit=2.0, delay_ms=20.0)
    with pytest.raises(KeyError):
        spec.node("nope")
    with pytest.raises(KeyError):
        spec.sensor_owner(99)


def test_single_node_tree_root_is_the_worker():
    spec = load_spec_text(HEAD + "nodes: [{id: solo, sensors: [0, 1]}]\n")
    assert spec.root.is_root and spec.root.is_worker and spec.root.role == "root"
    assert spec.workers == (spec.root,) and spec.parameter_servers == ()


def test_impaired_links():
    assert not LinkSpec(bw_mbit=10.0).impaired
    assert LinkSpec(delay_ms=1.0).impaired and LinkSpec(jitter_ms=1.0).impaired and LinkSpec(loss_pct=0.1).impaired


def test_spec_is_frozen_and_hashable():
    spec = load_spec_text(TREE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"
    assert hash(spec) == hash(load_spec_text(TREE))


# --- examples and round trip --------------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_validates(path):
    spec = load_spec(path)
    assert spec.source == str(path)
    assert sum(node.cpu for node in spec.nodes) <= 2.0
    assert all(node.link.bw_mbit <= 100 for node in spec.nodes if node.link)


def test_the_examples_the_readme_names_exist():
    assert {path.name for path in EXAMPLES} >= {
        "default.yaml", "seeds-1ps-3w.yaml", "three-level.yaml", "heterogeneous.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_to_dict_round_trips(path):
    spec = load_spec(path)
    again = load_spec_text(yaml.safe_dump(spec.to_dict()), source="again")
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_to_dict_is_explicit_and_readable():
    spec = load_spec_text(TREE + "defaults: {link: {bw: 500kbit, delay: 70ms}}\n")
    data = spec.to_dict()
    assert data["nodes"][1] == {
        "id": "w1", "parent": "root", "cpu": 0.5, "memory": "256M", "sensors": [0],
        "link": {"bw": "500kbit", "delay": "70ms", "jitter": "0ms", "loss": "0%", "queue": None},
        "policy": {"type": "simple"}}
    assert data["nodes"][0] == {"id": "root", "cpu": 0.5, "memory": "256M", "policy": {"type": "simple"}}
    assert data["timeout"] == "3.5min" and "cloud" not in data and "defaults" not in data
    assert load_spec_text(yaml.safe_dump(data)) == spec
