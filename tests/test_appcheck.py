"""The spec's application parameters, checked at load time against the application's Params."""

import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from edgetestbed.applications import BUILTIN, application_class, create_application
from edgetestbed.errors import SpecError
from edgetestbed.spec.load import load_spec, load_spec_text

from test_spec import TREE, assert_problem  # the spec tests' tree (application on line 2)

# The application written out over lines 2-6, so that each key has its own line.
BLOCK = """\
name: t
application:
  name: mnist_mlp
  hiden: [20]
  learning_rate: -3
  batch_size: 20
data: {dataset: mnist, partition: iid}
nodes:
  - id: root
    sensors: [0]
"""


def with_application(application: str) -> str:
    """The spec tests' tree with ``application: {application}`` on line 2."""
    return TREE.replace("application: {name: mnist_mlp}", f"application: {{{application}}}")


def test_misspelt_and_out_of_range_parameters_name_file_line_and_field(tmp_path):
    assert_problem(tmp_path, BLOCK, 4, "application.hiden", "unknown key 'hiden' (did you mean 'hidden'?); "
                   "expected one of learning_rate, batch_size, hidden, activation")
    assert_problem(tmp_path, BLOCK, 5, "application.learning_rate",
                   "-3 is too small; expected a number above 0")


@pytest.mark.parametrize("application, field, words", [
    ("name: mnist_mlp, batch_size: 0", "application.batch_size",
     ["0 is too small; expected a whole number of at least 1"]),
    ("name: mnist_mlp, hidden: [20, -1]", "application.hidden[1]", ["-1 is too small"]),
    ("name: mnist_mlp, hidden: [20, x]", "application.hidden[1]", ["got 'x'; expected a whole number"]),
    ("name: mnist_mlp, hidden: 20", "application.hidden", ["got 20; expected hidden layer sizes like [20, 10, 10]"]),
    ("name: mnist_mlp, activation: rlu", "application.activation",
     ["'rlu' is not a known activation (did you mean 'relu'?); expected one of sigmoid, tanh, relu"]),
    ("name: mnist_mlp, lr: 0.1", "application.lr", ["did you mean 'learning_rate'?"]),
    # Strict, like the rest of the spec: no coercion of text or booleans, no infinities.
    ("name: mnist_mlp, batch_size: true", "application.batch_size", ["got true; expected a whole number like 20"]),
    ("name: mnist_mlp, learning_rate: '0.4'", "application.learning_rate", ["got '0.4'; expected a number like 0.4"]),
    ("name: mnist_mlp, learning_rate: .inf", "application.learning_rate", ["expected a finite number"]),
    ("name: svm, reg: -1", "application.reg", ["-1 is too small; expected a number of at least 0"]),
    ("name: svm, hidden: [3]", "application.hidden", ["unknown key 'hidden'", "expected one of learning_rate, "
                                                      "batch_size, reg"]),
    ("name: aqi, inputs: 0", "application.inputs", ["0 is too small"]),
    ("name: aqi, target_scale: 0", "application.target_scale", ["0 is too small; expected a number above 0"]),
    ("name: aqi, hidden: {a: 1}", "application.hidden", ["got a mapping; expected hidden layer sizes like [16]"]),
])
def test_bad_parameter_of_a_builtin_application(tmp_path, application, field, words):
    assert_problem(tmp_path, with_application(application), 2, field, *words)


@pytest.mark.parametrize("application, data", [
    ("name: mnist_mlp, hidden: [32, 16], activation: relu, learning_rate: 0.05, batch_size: 1",
     "{dataset: mnist, partition: iid}"),
    ("name: mnist_mlp, hidden: [], learning_rate: 1", "{dataset: mnist, partition: iid}"),
    ("name: svm, learning_rate: 0.1, batch_size: 50, reg: 0", "{dataset: mnist, partition: iid}"),
    ("name: aqi, inputs: 15, hidden: [8], activation: tanh, learning_rate: 0.01, batch_size: 64, "
     "target_scale: 50", "{dataset: aqi, partition: by_year, lags: 5}"),
])
def test_valid_parameters_are_accepted_and_build(application, data):
    text = with_application(application).replace("{dataset: mnist, partition: iid}", data)
    spec = load_spec_text(text)
    given = yaml.safe_load(f"{{{application}}}")
    assert {"name": spec.application.name, **spec.application.params} == {
        key: tuple(value) if isinstance(value, list) else value for key, value in given.items()}
    model = create_application(spec.application.name, spec.application.params, seed=0)   # as a node does
    assert model.params.learning_rate == given["learning_rate"]
    assert load_spec_text(yaml.safe_dump(spec.to_dict())) == spec


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``userapps``: an application with a Params model (Checked) and one without (Bare)."""
    (tmp_path / "userapps.py").write_text(textwrap.dedent("""
        from pydantic import Field
        from edgetestbed.applications import Application, ApplicationParams

        class CheckedParams(ApplicationParams):
            offset: float = 0.0
            trees: int = Field(description="a number of trees like 3")

        class Bare(Application):
            dataset = "aqi"
            def get_weights(self): return []
            def set_weights(self, weights): pass
            def train(self, x, y, epochs=1): return {"samples": len(y)}
            def evaluate(self, x, y): return {"score": 0.0, "samples": len(y)}

        class Checked(Bare):
            Params = CheckedParams
    """))
    (tmp_path / "brokenapps.py").write_text("x = (\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("userapps", "brokenapps"):
        sys.modules.pop(name, None)


def test_a_users_params_model_is_checked_the_same_way(tmp_path, user_module):
    text = with_application("name: 'userapps:Checked', ofset: 1")
    assert_problem(tmp_path, text, 2, "application.ofset", "unknown key 'ofset' (did you mean 'offset'?)")
    assert_problem(tmp_path, text, 2, "application.trees", "missing; expected a number of trees like 3")
    assert_problem(tmp_path, with_application("name: 'userapps:Checked', trees: 2.5"), 2,
                   "application.trees", "got 2.5; expected a number of trees like 3")
    assert load_spec_text(with_application("name: 'userapps:Checked', trees: 3")).application.params == {"trees": 3}


def test_a_users_application_without_params_model_takes_any_parameters(user_module):
    spec = load_spec_text(with_application("name: 'userapps:Bare', anything: [1, {deep: 2}]"))
    assert spec.application.params == {"anything": (1, {"deep": 2})}
    assert create_application("userapps:Bare", spec.application.params).params == {"anything": [1, {"deep": 2}]}


def test_a_module_not_found_here_is_left_to_the_nodes():
    spec = load_spec_text(with_application("name: 'no_such_module_here:Task', whatever: 1"))
    assert spec.application.params == {"whatever": 1}


@pytest.mark.parametrize("name, words", [
    ("json:JSONDecoder", ["json.JSONDecoder is not a concrete subclass of edgetestbed.applications.Application"]),
    ("userapps:Missing", ["userapps.Missing is not a concrete subclass"]),
    ("brokenapps:Task", ["cannot import module 'brokenapps'", "never closed"]),
])
def test_a_class_that_is_no_application_is_reported_at_its_name(tmp_path, user_module, name, words):
    assert_problem(tmp_path, with_application(f"name: '{name}'"), 2, "application.name", *words)


def test_application_problems_come_with_the_others(tmp_path):
    text = BLOCK.replace("  - id: root\n    sensors: [0]\n", "  - id: root\n    sensors: [0]\n    cpu: 0\n")
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert {line.split(": ")[1] for line in str(caught.value).splitlines()} == {
        "application.hiden", "application.learning_rate", "nodes[0].cpu"}


def test_the_readme_lists_every_parameter_of_every_builtin_application():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in BUILTIN:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        assert all(f"`{field}`" in row for field in application_class(name).Params.model_fields), row
