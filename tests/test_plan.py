"""The network plan: the switch tree mirrors the node tree, names fit the kernel, addresses tell roles."""

from pathlib import Path

from edgetestbed.spec.load import load_spec
from edgetestbed.spec.plan import Endpoint, plan_network

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_three_level_tree():
    spec = load_spec(EXAMPLES / "three-level.yaml")
    plan = plan_network(spec)
    tree = [l for l in plan.shaped_links if l.kind == "tree"]
    assert len(tree) == len(spec.nodes) - 1
    # each tree edge joins the child's switch to the parent's switch
    for link in tree:
        child, parent = (plan.host(end) for end in link.ends)
        assert (link.a, link.b) == (child.switch, parent.switch)
        assert link.spec == spec.node(link.ends[0]).link
    sensors = [l for l in plan.shaped_links if l.kind == "sensor"]
    assert len(sensors) == len(spec.sensor_ids)
    for link in sensors:
        assert plan.host(link.ends[0]).switch == plan.host(link.ends[1]).switch


def test_addresses_are_unique_and_tell_the_role():
    plan = plan_network(load_spec(EXAMPLES / "default.yaml"))
    ips = [h.ip for h in plan.hosts]
    assert len(set(ips)) == len(ips)
    prefix = {"node": "10.0.", "sensor": "10.1.", "cloud": "10.2."}
    assert all(h.ip.startswith(prefix[h.role]) and h.ip.endswith("/8") for h in plan.hosts)
    assert plan.host("cloud").switch == plan.host("root").switch


def test_emulated_endpoints_are_each_hosts_address_and_its_roles_port():
    endpoints = plan_network(load_spec(EXAMPLES / "default.yaml")).endpoints()
    assert endpoints["root"] == Endpoint("10.0.0.1", 5555, "*") and endpoints["cloud"].host == "10.2.0.1"
    assert endpoints["sensor0"] == Endpoint("10.1.0.1", 5556) and len(endpoints) == 8 + 7 + 1


def test_names_fit_the_kernel_limit_on_a_large_tree():
    from edgetestbed.spec.load import load_spec_text
    workers = "\n".join(f"  - {{id: worker_with_a_long_name_{i}, parent: r, sensors: [{i}]}}" for i in range(300))
    spec = load_spec_text("name: big\napplication: {name: mnist_mlp}\ndata: {dataset: mnist, partition: iid}\n"
                          f"nodes:\n  - id: r\n{workers}\n")
    plan = plan_network(spec)
    longest = max(len(f"{name}-eth{300}") for name in [h.name for h in plan.hosts] + list(plan.switches))
    assert longest <= 15
