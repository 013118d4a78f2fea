"""The node processes' pure logic, without processes or sockets: coverage vectors, the
model state's pulls and merges, the wiring file, and the sensors' schedule. The processes
themselves, on loopback: test_nodes."""

from __future__ import annotations

import numpy as np
import pytest

from edgetestbed.applications import create_application
from edgetestbed.data.schedule import Schedule
from edgetestbed.errors import UserError
from edgetestbed.nodes.model import ModelState, Update, covers, joined
from edgetestbed.process.wiring import Wiring
from edgetestbed.spec.plan import Endpoint


def test_coverage_vectors_join_and_cover():
    assert joined({"w1": 2, "w2": 0}, {"w2": 3, "w3": 1}) == {"w1": 2, "w2": 3, "w3": 1}
    assert covers({"w1": 3, "w2": 4}, ["w1", "w2"], 3) and not covers({"w1": 3}, ["w1", "w2"], 3)


def _model() -> ModelState:
    return ModelState(create_application("mnist_mlp", {"hidden": [4]}, seed=1))


def test_a_pull_keeps_what_was_not_pushed():
    model = _model()
    model.app.apply_update([np.ones_like(w) for w in model.app.get_weights()])
    model.trained(10)
    model.covered("w1", 0)
    pulled = [np.full_like(w, 5.0) for w in model.app.get_weights()]
    model.adopt(pulled, {"w2": 0}, version=7)
    assert all(np.allclose(w, 6.0) for w in model.app.get_weights())
    assert model.coverage == {"w1": 0, "w2": 0} and model.base_version == 7
    update = model.pending()
    assert update.samples == 10 and update.coverage == {"w1": 0}
    assert all(np.allclose(d, 1.0) for d in update.delta)
    model.committed(update)
    assert not model.has_pending() and all(np.allclose(d, 0) for d in model.pending().delta)


def test_a_merge_is_the_sample_weighted_average():
    model = _model()
    before = model.app.get_weights()
    ones = [np.ones_like(w) for w in before]
    model.merge([Update([3 * o for o in ones], 30, {"w1": 2}), Update(ones, 10, {"w2": 1})])
    assert all(np.allclose(w - b, 2.5) for w, b in zip(model.app.get_weights(), before))
    assert model.coverage == model.unpushed == {"w1": 2, "w2": 1} and model.samples == 40
    model.merge([Update([0 * o for o in ones], 0, {"w2": 2})])  # no samples: coverage only
    assert model.coverage["w2"] == 2 and model.version == 2


def test_wiring_round_trips_and_refuses_bad_endpoints(tmp_path):
    wiring = Wiring({"root": Endpoint("10.0.0.1", 5555), "sensor0": Endpoint("10.1.0.1", 5556, bind="127.0.0.1")})
    wiring.write(tmp_path / "wiring.json")
    loaded = Wiring.load(tmp_path / "wiring.json")
    assert loaded.address("root") == "tcp://10.0.0.1:5555" and loaded.bind_address("root") == "tcp://*:5555"
    assert loaded.bind_address("sensor0") == "tcp://127.0.0.1:5556"
    with pytest.raises(UserError, match="no endpoint for 'w1'"):
        loaded.address("w1")
    for bad in ('{"endpoints": {"root": {"host": "h", "port": 0}}}', '{"endpoints": []}', "{"):
        (tmp_path / "bad.json").write_text(bad)
        with pytest.raises(UserError, match="bad.json: expected"):
            Wiring.load(tmp_path / "bad.json")


def test_schedule_puts_every_sample_in_exactly_one_window():
    schedule = Schedule(start_at=100.0, rate=2.5, interval=3.0, limit=4)
    windows = [schedule.samples_in(j) for j in range(4)]
    assert [len(w) for w in windows] == [8, 7, 8, 7]
    assert [n for w in windows for n in w] == list(range(30))
    for j, samples in enumerate(windows):
        assert all(100 + 3 * j <= schedule.send_time(n) < 100 + 3 * (j + 1) for n in samples)
