"""``wt: {by_link: ...}``: the rule over a link's bandwidth and loss, resolved by the spec
into a number for each node, its refusals at file, line and field, and the wire seeing
only numbers."""

from __future__ import annotations

import math

import pytest
import yaml

from edgetestbed.codecs import CodecError, create_codec, wt_for_link
from edgetestbed.process.coded import accepted_codecs, codec_chain
from edgetestbed.spec.load import load_spec_text
from test_codecs import with_codec
from test_spec import HEAD, assert_problem

RULE = "{by_link: {base: 0.01, reference: 10Mbit}}"


# --- the rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bw, loss, cap, wt", [
    (1.0, 2.0, None, 0.01 * math.sqrt(10 / 0.98)),   # 10× slower, 2 % lost: 0.03194
    (1.0, 0.0, None, 0.01 * math.sqrt(10)),
    (0.1, 0.0, None, 0.1),                           # 100× slower: 10× the threshold
    (10.0, 0.0, None, 0.01),                         # as fast as the reference: base
    (100.0, 0.0, None, 0.01),                        # faster: never below base
    (100.0, 50.0, None, 0.01),                       # faster, even if lossy, while it delivers sooner
    (5.0, 50.0, None, 0.02),                         # 2× slower, half lost: 4× longer a byte
    (None, 30.0, None, 0.01),                        # unlimited: base
    (0.001, 0.0, 0.5, 0.5),                          # capped by max
    (1.0, 2.0, 0.5, 0.01 * math.sqrt(10 / 0.98)),    # a cap above it changes nothing
])
def test_wt_grows_with_the_square_root_of_how_much_longer_a_byte_takes(bw, loss, cap, wt):
    assert wt_for_link(0.01, 10.0, bw, loss, cap) == pytest.approx(wt, rel=1e-12)


def test_the_briefs_example():
    assert round(wt_for_link(0.01, 10.0, 1.0, 2.0), 5) == 0.03194


# --- the spec resolves it per node ------------------------------------------------------------

def _tree(codec: str, w1_link: str, defaults: str = "") -> str:
    return HEAD + ("nodes:\n"
                   "  - {id: root}\n"
                   "  - {id: ps, parent: root, link: {bw: 1Mbit, loss: 2%}}\n"
                   f"  - {{id: w1, parent: ps, sensors: [0], link: {w1_link}, codec: {codec}}}\n"
                   "  - {id: w2, parent: ps, sensors: [1]}\n"
                   f"defaults: {{link: {{bw: 5Mbit}}{defaults}}}\n")


def test_by_link_resolves_to_a_number_for_the_nodes_link():
    spec = load_spec_text(_tree(f"{{type: two_step, wt: {RULE}, bits: 16}}", "{bw: 1Mbit, loss: 2%}"))
    (codec,) = spec.node("w1").codec
    assert codec.type == "two_step" and codec.params["bits"] == 16
    assert codec.params["wt"] == pytest.approx(0.01 * math.sqrt(10 / 0.98)) and isinstance(codec.params["wt"], float)
    data = spec.to_dict()   # the number, which loads to an equal spec
    assert data["nodes"][2]["codec"] == [{"type": "two_step", "wt": codec.params["wt"], "bits": 16}]
    assert load_spec_text(yaml.safe_dump(data)) == spec
    built = create_codec(codec.type, codec.params)
    assert built.describe() == {"type": "two_step", "wt": codec.params["wt"], "bits": 16}


def test_defaults_give_every_node_its_own_wt_and_the_root_its_base():
    rule = "{type: threshold, wt: {by_link: {base: 0.02, reference: 20Mbit, max: 0.1}}}"
    spec = load_spec_text(_tree("null", "{bw: 1kbit}", f", codec: {rule}"))
    wt = {node.id: node.codec[0].params["wt"] for node in spec.nodes}
    assert wt["root"] == 0.02                                                  # no link: base
    assert wt["ps"] == pytest.approx(0.02 * math.sqrt(20 / 0.98))             # its own link
    assert wt["w2"] == pytest.approx(0.02 * math.sqrt(4))                      # defaults.link's 5Mbit
    assert wt["w1"] == 0.1                                                     # 1kbit: capped


def test_a_plain_wt_is_unchanged():
    spec = load_spec_text(_tree("{type: threshold, wt: 0.05}", "{bw: 1kbit}"))
    assert dict(spec.node("w1").codec[0].params) == {"wt": 0.05}


# --- refused, at file, line and field ---------------------------------------------------------

@pytest.mark.parametrize("wt, field, words", [
    ("{by_link: {base: 0.01}}", "wt.by_link.reference", "missing; expected a bandwidth like 10Mbit"),
    ("{by_link: {reference: 10Mbit}}", "wt.by_link.base", "missing; expected the threshold of a fast link"),
    ("{by_link: {base: 0, reference: 10Mbit}}", "wt.by_link.base", "0 is too small; expected a number above 0"),
    ("{by_link: {base: 0.01, reference: 10}}", "wt.by_link.reference", "10 has no unit; expected bits per second"),
    ("{by_link: {base: 0.01, reference: 10MB}}", "wt.by_link.reference", "(MB would be bytes)"),
    ("{by_link: {base: 0.01, reference: 0Mbit}}", "wt.by_link.reference", "too small; expected at least 1kbit"),
    ("{by_link: {base: 0.1, reference: 1Mbit, max: 0.01}}", "wt.by_link",
     "max 0.01 is below base 0.1; expected a max of at least base, or none"),
    ("{by_link: {base: 0.1, reference: 1Mbit, maximum: 1}}", "wt.by_link.maximum",
     "unknown key 'maximum' (did you mean 'max'?); expected one of base, reference, max"),
    ("{by_lnk: {base: 0.1}}", "wt.by_lnk", "unknown key 'by_lnk' (did you mean 'by_link'?)"),
    ("{by_link: {base: 0.01, reference: 10Mbit}, x: 1}", "wt.x", "unknown key 'x'; expected one of by_link"),
    ("{by_link: 5}", "wt.by_link", "got 5; expected the rule's numbers, like {base: 0.01, reference: 10Mbit}"),
    ("high", "wt", "got 'high'; expected a magnitude above 0 that an entry's updates"),
    ("true", "wt", "or {by_link: {base: 0.01, reference: 10Mbit}}"),
    ("-1", "wt", "-1 is too small; expected a number above 0"),
])
@pytest.mark.parametrize("kind", ["threshold", "two_step"])
def test_a_bad_by_link_is_reported_at_its_line_and_field(tmp_path, kind, wt, field, words):
    assert_problem(tmp_path, with_codec(f"{{type: {kind}, wt: {wt}}}"), 9, f"nodes[1].codec.{field}", words)


def test_a_message_declaring_by_link_is_refused():
    """The spec resolves the rule; on the wire wt is a number, and a receiver says so."""
    entry = {"type": "threshold", "wt": {"by_link": {"base": 0.01, "reference": "10Mbit"}}}
    with pytest.raises(CodecError, match="wt is {by_link: ...}, which the spec resolves"):
        codec_chain([entry], accepted_codecs())
    assert codec_chain([{"type": "threshold", "wt": 0.03}], accepted_codecs())[0].params.wt == 0.03
