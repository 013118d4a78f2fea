"""Link-shaping backends are plugins: the registry, how one is chosen, what each builds (no root)."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import pytest
from mininet.link import Intf, TCLink

from edgetestbed.errors import CapabilityError, UserError
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.plan import plan_network
from edgetestbed.topo.htb import HtbIntf
from edgetestbed.topo.probe import Capabilities, Feature, choose_backends
from edgetestbed.topo.shaper import ShapedPort
from edgetestbed.topo.shaping import SHAPINGS, LinkShaping

SPEC = """
name: shaping
application: {name: mnist_mlp}
data: {dataset: mnist, partition: iid}
sensors: {rate: 1/s}
nodes:
  - id: root
  - {id: w1, parent: root, sensors: [0], link: {bw: 10Mbit, delay: 5ms, jitter: 1ms, loss: 1%, queue: 20}}
  - {id: w2, parent: root, sensors: [1], link: {bw: 20Mbit}}
  - {id: w3, parent: root, sensors: [2]}
"""


def capabilities(**features: Feature) -> Capabilities:
    """A machine that has everything, but ``features``."""
    works = Feature(True, "works")
    names = [f.name for f in dataclasses.fields(Capabilities) if f.name != "cores"]
    return Capabilities(**{**{name: works for name in names}, **features}, cores=4)


NO_NETEM = Feature(False, "no netem qdisc")
NO_NFQUEUE = Feature(False, "iptables not installed")


def test_the_registry_lists_netem_then_userspace():
    assert SHAPINGS.names() == ["netem", "userspace"]
    assert all(issubclass(cls, LinkShaping) and cls.__doc__ for cls in SHAPINGS.plugins())
    # every backend's feature is a capability the probe reports
    caps = capabilities()
    assert all(isinstance(getattr(caps, cls.feature), Feature) for cls in SHAPINGS.plugins())


def test_auto_chooses_netem_where_it_works_and_the_user_space_shaper_otherwise():
    assert choose_backends("auto", "auto", capabilities()).shaping == "netem"
    assert choose_backends("auto", "auto", capabilities(netem=NO_NETEM)).shaping == "userspace"
    assert choose_backends("auto", "userspace", capabilities()).shaping == "userspace"


def test_no_usable_shaping_is_refused_with_every_reason():
    caps = capabilities(netem=NO_NETEM, nfqueue=NO_NFQUEUE)
    with pytest.raises(CapabilityError) as refused:
        choose_backends("auto", "auto", caps)
    assert str(refused.value) == ("no usable link-shaping backend (auto asked): netem: no netem qdisc; "
                                  "userspace: iptables not installed")
    with pytest.raises(CapabilityError, match=r"\(netem asked\): netem: no netem qdisc$"):
        choose_backends("auto", "netem", caps)


def test_the_spec_accepts_exactly_auto_and_the_registered_backends():
    """The spec keeps its own list (it is below the network and must load without Mininet)."""
    with pytest.raises(UserError) as refused:
        load_spec_text(SPEC + "network: {shaping: bogus}\n")
    listed = re.search(r"expected one of ([\w, -]+)", str(refused.value)).group(1)
    assert set(listed.split(", ")) == {"auto", *SHAPINGS.names()}
    for name in listed.split(", "):
        assert load_spec_text(SPEC + f"network: {{shaping: {name}}}\n").network.shaping == name


class FakeNetwork:
    """What a backend uses of an EmulatedNetwork, recording the calls instead of building."""

    def __init__(self) -> None:
        self.plan = plan_network(load_spec_text(SPEC))
        self.calls: list[tuple] = []
        self.ledger = SimpleNamespace(record=lambda kind, **fields: self.calls.append(("record", kind, fields)),
                                      record_process=lambda pid, what: self.calls.append(("process", what)))
        self.net = SimpleNamespace(addSwitch=self._add_switch)

    def _add_switch(self, name, cls):
        self.calls.append(("addSwitch", name, cls.__name__))
        return SimpleNamespace(pid=1)

    def add_link(self, a, b, link_cls=None, **params):
        self.calls.append(("add_link", a, b, link_cls, params))

    def link(self, ident: str):
        return next(link for link in self.plan.shaped_links if link.ends[0] == ident)


def test_netem_shapes_each_link_with_htb_and_netem_on_its_interfaces():
    network = FakeNetwork()
    netem = SHAPINGS.get("netem")(network)
    for ident in ("w1", "w3"):
        netem.add_link(network.link(ident))
    w1, w3 = network.link("w1"), network.link("w3")
    assert network.calls == [
        ("add_link", w1.a, w1.b, TCLink, {"intf": HtbIntf, "bw": 10.0, "delay": "5.0ms", "jitter": "1.0ms",
                                          "loss": 1.0, "max_queue_size": 20}),
        ("add_link", w3.a, w3.b, TCLink, {"intf": HtbIntf})]
    assert netem.offloads == () and netem.interfaces() == [] and netem.inline_bridge(w1.label) is None
    netem.start()
    assert netem.failure() is None and netem.stop() == {} and netem.describe() == {"shaped_ports": []}


def test_userspace_puts_a_bridge_in_line_on_each_limited_or_impaired_link():
    network = FakeNetwork()
    userspace = SHAPINGS.get("userspace")(network)
    for ident in ("w1", "w2", "w3"):
        userspace.add_link(network.link(ident))
    w1, w2, w3 = (network.link(i) for i in ("w1", "w2", "w3"))
    assert network.calls == [
        ("record", "link", {"name": "x1"}), ("addSwitch", "x1", "LinuxBridge"),
        ("process", "mininet in-line bridge shell x1"),
        ("add_link", w1.a, "x1", None, {"cls2": HtbIntf, "cls1": Intf, "params2": {"bw": 10.0, "queue": 20}}),
        ("add_link", "x1", w1.b, None, {"cls1": HtbIntf, "cls2": Intf, "params1": {"bw": 10.0, "queue": 20}}),
        ("record", "link", {"name": "x2"}), ("addSwitch", "x2", "LinuxBridge"),
        ("process", "mininet in-line bridge shell x2"),
        ("add_link", w2.a, "x2", None, {"cls2": HtbIntf, "cls1": Intf, "params2": {"bw": 20.0, "queue": None}}),
        ("add_link", "x2", w2.b, None, {"cls1": HtbIntf, "cls2": Intf, "params1": {"bw": 20.0, "queue": None}}),
        ("add_link", w3.a, w3.b, None, {})]
    # only the impaired link's two directions go through the handler
    assert userspace.shaped_ports == [ShapedPort(f"x1-eth{i}", 5.0, 1.0, 1.0, 20) for i in (0, 1)]
    assert [userspace.inline_bridge(link.label) for link in (w1, w2, w3)] == ["x1", "x2", None]
    assert userspace.interfaces() == [f"x{i}" for i in range(1, len(network.plan.shaped_links) + 1)]
    assert userspace.offloads == ("tso", "off", "gso", "off")
    assert userspace.describe()["shaped_ports"][0] == {"port": "x1-eth0", "delay_ms": 5.0, "jitter_ms": 1.0,
                                                       "loss_pct": 1.0, "queue": 20}
    # not started: nothing runs, nothing to stop
    assert userspace.failure() is None and userspace.stop() == {}
