"""Codecs: each one's round trip and error bounds, error feedback, every inconsistency
decode refuses, chains, and the spec's ``codec:`` checked with file, line and field (coded
pushes between real node processes: ``test_coded_runs.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from edgetestbed.codecs import CODECS, Codec, CodecError, chain_problem, commit_chain, create_codec, decode_chain, \
    encode_chain
from edgetestbed.codecs.topk import kept
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.model import CodecSpec
from test_spec import TREE, assert_problem

RNG = np.random.default_rng(5)
TENSORS = [RNG.normal(0, 0.1, (784, 20)).astype(np.float32), RNG.normal(3, 2, 20).astype(np.float32),
           RNG.uniform(-1e-4, 1e-4, (20, 10)).astype(np.float32), np.full(10, 0.25, np.float32)]
SHAPES = [t.shape for t in TENSORS]


def quantize(bits: int = 8, stochastic: bool = False, seed: object = 0) -> Codec:
    return create_codec("quantize", {"bits": bits, "stochastic": stochastic}, seed)


def topk(fraction: float, feedback: bool = True) -> Codec:
    return create_codec("topk", {"fraction": fraction, "feedback": feedback})


def threshold(wt: float) -> Codec:
    return create_codec("threshold", {"wt": wt})


def two_step(wt: float, bits: int = 8) -> Codec:
    return create_codec("two_step", {"wt": wt, "bits": bits})


def round_trip(codec: Codec, arrays: list) -> list:
    return decode_chain([codec], encode_chain([codec], arrays), [a.shape for a in arrays])


# --- quantize ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bits, dtype", [(8, np.uint8), (16, np.uint16)])
def test_quantize_is_off_by_at_most_half_a_step_per_tensor(bits, dtype):
    codec = quantize(bits)
    wire = codec.encode(TENSORS)
    assert [w.dtype for w in wire[:-1]] == [dtype] * len(TENSORS) and wire[-1].shape == (len(TENSORS), 2)
    decoded = codec.decode(wire, SHAPES)
    for tensor, out, (low, step) in zip(TENSORS, decoded, wire[-1]):
        assert out.dtype == np.float32 and out.shape == tensor.shape
        assert low == tensor.min() and float(step) * (2 ** bits - 1) >= float(tensor.max()) - float(low)
        error = np.abs(out.astype(np.float64) - tensor).max()
        assert error <= step / 2 + np.spacing(np.abs(tensor).max()), (error, step)
    assert np.array_equal(decoded[3], TENSORS[3])   # a constant tensor is exact (step 0)
    code_bytes = sum(w.nbytes for w in wire)
    assert code_bytes <= sum(t.nbytes for t in TENSORS) * bits / 32 + wire[-1].nbytes


def test_stochastic_rounding_is_unbiased_and_seeded():
    step = 1 / 255   # the grid from 0 to 1: values 0.3 of a step above a level
    tensor = np.concatenate([[0.0, 1.0], (np.arange(40) + 0.3) * step]).astype(np.float32)
    nearest = round_trip(quantize(), [tensor])[0]
    assert np.allclose(nearest[2:] - tensor[2:], -0.3 * step, atol=1e-6)   # always rounded down
    codec = quantize(stochastic=True, seed=[1, 2])
    runs = np.array([round_trip(codec, [tensor])[0] for _ in range(2000)], dtype=np.float64)
    assert np.abs(runs - tensor).max() < step * 1.0001                      # within a step
    assert np.abs(runs.mean(axis=0) - tensor).max() < 0.06 * step           # right on average
    again = quantize(stochastic=True, seed=[1, 2])
    assert np.array_equal(again.encode([tensor])[0], quantize(stochastic=True, seed=[1, 2]).encode([tensor])[0])


# --- topk -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 1.0])
def test_topk_keeps_exactly_the_largest_ceil_fraction_of_entries(fraction):
    codec = topk(fraction)
    wire = codec.encode(TENSORS)
    decoded = codec.decode(wire, SHAPES)
    for number, (tensor, out) in enumerate(zip(TENSORS, decoded)):
        indices, values = wire[2 * number], wire[2 * number + 1]
        count = math.ceil(round(fraction * tensor.size, 9))
        assert len(indices) == len(values) == count == kept(fraction, tensor.size)
        assert indices.dtype == np.int32 and values.dtype == np.float32 and np.all(np.diff(indices) > 0)
        sent = np.zeros(tensor.size, bool)
        sent[indices] = True
        flat = tensor.ravel()
        assert np.array_equal(out.ravel()[sent], flat[sent]) and not out.ravel()[~sent].any()
        if not sent.all():
            assert np.abs(flat[sent]).min() >= np.abs(flat[~sent]).max()
    assert kept(0.1, 100) == 10 and kept(0.1, 1) == 1 and kept(0.01, 20) == 1 and kept(0.5, 0) == 0
    wire_bytes = sum(w.nbytes for w in wire)
    assert wire_bytes <= 2 * fraction * sum(t.nbytes for t in TENSORS) + 8 * len(TENSORS)


def test_topk_sends_tensors_smaller_than_min_entries_whole_and_the_receiver_expects_them_so():
    codec = create_codec("topk", {"fraction": 0.01, "min_entries": 50, "feedback": True})
    wire = codec.encode(TENSORS)
    assert [len(wire[2 * n]) for n in range(len(TENSORS))] == [157, 20, 2, 10]   # 784×20 and 200 at 1 %
    assert all(np.array_equal(out, t) for out, t in zip(codec.decode(wire, SHAPES), TENSORS) if t.size < 50)
    with pytest.raises(CodecError, match="min_entries|keeps"):
        topk(0.01).decode(wire, SHAPES)   # a receiver told min_entries 0 refuses the whole small tensors


def test_topk_error_feedback_sends_the_rest_later():
    rng = np.random.default_rng(2)
    updates = [[rng.normal(0, 1, s).astype(np.float32) for s in SHAPES] for _ in range(20)]
    idle = [[np.zeros(s, np.float32) for s in SHAPES]] * 10   # ten pushes of nothing new

    def received(codec: Codec) -> list:
        total = [np.zeros(s) for s in SHAPES]
        for update in updates + idle:
            for t, part in zip(total, round_trip(codec, update)):
                t += part
            commit_chain([codec])
        return total

    raw = [sum(u[i].astype(np.float64) for u in updates) for i in range(len(SHAPES))]
    with_feedback, without = received(topk(0.1)), received(topk(0.1, feedback=False))
    for r, f, n in zip(raw, with_feedback, without):
        assert np.allclose(f, r, atol=1e-4)              # everything arrived, 10 % a push
        assert np.abs(n - r).max() > 1                   # without feedback, most of it never does


def test_topk_counts_only_acknowledged_pushes():
    u1, u2 = ([np.full(10, value, np.float32)] for value in (1.0, 2.0))
    codec, total = topk(0.5), np.zeros(10)
    codec.encode(u1)                                   # never acknowledged: the node sends it again
    total += round_trip(codec, [u1[0] + u2[0]])[0]     # with the next update
    commit_chain([codec])
    for _ in range(3):
        total += round_trip(codec, [np.zeros(10, np.float32)])[0]
        commit_chain([codec])
    assert np.allclose(total, 3.0)


# --- threshold and two_step ------------------------------------------------------------------

def _pushes_of(codec: Codec, updates: list) -> int:
    """The wire bytes of ``updates``, each pushed and acknowledged."""
    sent = 0
    for update in updates:
        sent += sum(w.nbytes for w in codec.encode(update))
        commit_chain([codec])
    return sent


@pytest.mark.parametrize("wt", [0.25, 1.0, 3.0])
def test_threshold_sends_exactly_the_entries_whose_sum_reached_wt_and_loses_nothing(wt):
    rng = np.random.default_rng(3)   # sixteenths: every sum below is exact in float32
    updates = [[(rng.integers(-16, 17, s) / 16).astype(np.float32) for s in SHAPES] for _ in range(12)]
    codec = threshold(wt)
    summed, total = [np.zeros(s, np.float32) for s in SHAPES], [np.zeros(s, np.float32) for s in SHAPES]
    for update in updates:
        wire = codec.encode(update)
        decoded = codec.decode(wire, SHAPES)
        commit_chain([codec])
        for number, (acc, part, out) in enumerate(zip(summed, update, decoded)):
            acc += part
            sent = np.abs(acc) >= wt
            assert wire[2 * number].dtype == np.int32 and np.array_equal(wire[2 * number], np.flatnonzero(sent))
            assert np.array_equal(out[sent], acc[sent]) and not out[~sent].any()
            acc[sent] = 0
            total[number] += out
    for number, (acc, got) in enumerate(zip(summed, total)):
        left = codec.residual.kept[number].reshape(acc.shape)
        assert np.array_equal(left, acc) and np.abs(left).max() < wt
        assert np.array_equal(got + left, sum(update[number] for update in updates))   # exactly what was added


@pytest.mark.parametrize("kind", ["threshold", "two_step"])
def test_an_unacknowledged_push_is_sent_again_not_lost(kind):
    u1, u2 = np.array([1.0, 0.25], np.float32), np.array([0.0, 0.25], np.float32)
    codec = create_codec(kind, {"wt": 0.5})
    codec.encode([u1])                              # sends 1.0, keeps 0.25, but is never acknowledged
    total = round_trip(codec, [u1 + u2])[0]         # so the node sends it again with the next update
    commit_chain([codec])
    assert np.allclose(total, u1 + u2, atol=1e-6) and np.abs(codec.residual.kept[0]).max() <= 1e-6   # not [1.0, 0.75]
    assert not round_trip(codec, [np.zeros(2, np.float32)])[0].any()


@pytest.mark.parametrize("bits, dtype", [(8, np.uint8), (16, np.uint16)])
def test_two_step_sends_thresholds_entries_within_half_a_step_and_keeps_the_error(bits, dtype):
    rng = np.random.default_rng(4)
    updates = [[rng.normal(0, 0.1, s).astype(np.float32) for s in SHAPES] for _ in range(20)]
    idle = [[np.zeros(s, np.float32) for s in SHAPES]] * 5
    codec, wt, steps = two_step(0.2, bits), 0.2, [0.0] * len(SHAPES)
    total = [np.zeros(s) for s in SHAPES]
    for update in updates + idle:
        before = [np.zeros(t.size, np.float32) if codec.residual.kept is None else codec.residual.kept[number]
                  for number, t in enumerate(update)]
        wire = codec.encode(update)
        decoded = codec.decode(wire, SHAPES)
        commit_chain([codec])
        for number, (part, left, out) in enumerate(zip(update, before, decoded)):
            summed, out = part.ravel() + left, out.ravel()
            sent = np.abs(summed) >= wt
            assert np.array_equal(wire[2 * number], np.flatnonzero(sent)) and wire[2 * number + 1].dtype == dtype
            step = float(wire[-1][number, 1])
            tolerance = step / 2 + np.spacing(np.abs(summed).max())
            assert np.abs(out[sent].astype(np.float64) - summed[sent]).max(initial=0) <= tolerance
            assert not out[~sent].any()
            steps[number] = max(steps[number], step)
            total[number] += out.reshape(part.shape)
    for number, got in enumerate(total):
        raw = sum(update[number].astype(np.float64) for update in updates)
        left = codec.residual.kept[number].reshape(got.shape)
        assert np.allclose(got + left, raw, atol=1e-5)                     # nothing lost
        assert np.abs(got - raw).max() <= max(wt, steps[number] / 2) + 1e-5   # behind by what is left, no more


def test_a_higher_wt_sends_fewer_entries_and_two_step_fewer_bytes():
    rng = np.random.default_rng(6)
    updates = [[rng.normal(0, 0.05, s).astype(np.float32) for s in SHAPES] for _ in range(10)]
    plain = {wt: _pushes_of(threshold(wt), updates) for wt in (0.05, 0.2, 1.0)}
    coded = {wt: _pushes_of(two_step(wt), updates) for wt in (0.05, 0.2)}
    raw = 10 * sum(t.nbytes for t in TENSORS)
    assert raw > plain[0.05] > plain[0.2] > plain[1.0] and coded[0.05] > coded[0.2]
    assert coded[0.05] < 0.7 * plain[0.05] and coded[0.2] < 0.7 * plain[0.2]   # 5 bytes an entry, not 8
    silent = threshold(1e9)
    assert [len(w) for w in silent.encode(TENSORS)] == [0] * 8 and not any(
        out.any() for out in silent.decode(silent.encode(TENSORS), SHAPES))


# --- decode refuses inconsistent wire arrays --------------------------------------------------

def _quantized() -> list:
    return quantize().encode(TENSORS[:2])


def _sparse() -> list:
    return topk(0.1).encode(TENSORS[:2])


def _summed() -> list:
    return threshold(0.1).encode(TENSORS[:2])


def _two_step() -> list:
    return two_step(0.1).encode(TENSORS[:2])


def _set(wire: list, index: int, value, *more) -> list:
    """``wire`` with array ``index`` (and those after it, ``more``) replaced."""
    wire = list(wire)
    for offset, array in enumerate((value, *more)):
        wire[index + offset] = array
    return wire


NAN, TWO = np.array([0, np.nan], np.float32), np.ones(2, np.float32)


REFUSED = [
    ("quantize", lambda: _quantized()[:-1], "2 wire arrays, expected 3"),
    ("quantize", lambda: _set(_quantized(), 0, _quantized()[0].astype(np.uint16)), "codes is uint16, expected uint8"),
    ("quantize", lambda: _set(_quantized(), 0, _quantized()[0][:5]), "codes are [5, 20], expected [784, 20]"),
    ("quantize", lambda: _set(_quantized(), 2, np.zeros((3, 2), np.float32)), "scales are [3, 2], expected [2, 2]"),
    ("quantize", lambda: _set(_quantized(), 2, np.zeros(4, np.float32)), "scales has 1 dimensions, expected 2"),
    ("quantize", lambda: _set(_quantized(), 2, np.array([[np.nan, 1], [0, 1]], np.float32)), "not finite"),
    ("quantize", lambda: _set(_quantized(), 2, np.array([[0, -1], [0, 1]], np.float32)), "non-negative"),
    ("quantize", lambda: _set(_quantized(), 2, np.array([[0, 3e38], [0, 1]], np.float32)), "float32's range"),
    ("topk", lambda: _sparse()[:3], "3 wire arrays, expected 4"),
    ("topk", lambda: _set(_sparse(), 0, _sparse()[0].astype(np.float32)), "indices is float32, expected int32"),
    ("topk", lambda: _set(_sparse(), 1, _sparse()[1].astype(np.float64)), "values is float64, expected float32"),
    ("topk", lambda: _set(_sparse(), 0, _sparse()[0].reshape(-1, 2)), "indices has 2 dimensions"),
    ("topk", lambda: _set(_sparse(), 1, _sparse()[1][:-1]), "1568 indices and 1567 values"),
    ("topk", lambda: _set(_set(_sparse(), 0, _sparse()[0][:9]), 1, _sparse()[1][:9]), "keeps 1568"),
    ("topk", lambda: _set(_sparse(), 2, np.array([3, 20], np.int32)), "run from 3 to 20, outside 0 .. 19"),
    ("topk", lambda: _set(_sparse(), 2, np.array([-1, 5], np.int64)), "run from -1 to 5"),
    ("topk", lambda: _set(_sparse(), 2, np.array([5, 3], np.int32)), "not ascending and distinct"),
    ("topk", lambda: _set(_sparse(), 2, np.array([4, 4], np.int32)), "not ascending and distinct"),
    ("topk", lambda: _set(_sparse(), 2, np.array([0, -2 ** 63 + 10], np.int64)), "outside 0 .. 19"),
    ("topk", lambda: _set(_sparse(), 2, np.array([0, 1], np.int32), NAN), "tensor 1's values are not all finite"),
    ("threshold", lambda: _summed()[:3], "3 wire arrays, expected 4 (indices and values per tensor)"),
    ("threshold", lambda: _set(_summed(), 0, _summed()[0].astype(np.float32)), "indices is float32, expected int32"),
    ("threshold", lambda: _set(_summed(), 1, _summed()[1].astype(np.float64)), "values is float64, expected float32"),
    ("threshold", lambda: _set(_summed(), 1, _summed()[1].reshape(1, -1)), "values has 2 dimensions"),
    ("threshold", lambda: _set(_summed(), 3, _summed()[3][:-1]), "values; expected as many of each, at most 20"),
    ("threshold", lambda: _set(_summed(), 2, np.arange(21, dtype=np.int32), np.ones(21, np.float32)),
     "21 indices and 21 values; expected as many of each, at most 20"),
    ("threshold", lambda: _set(_summed(), 2, np.array([3, 20], np.int32), TWO), "run from 3 to 20, outside 0 .. 19"),
    ("threshold", lambda: _set(_summed(), 2, np.array([-1, 5], np.int64), TWO), "run from -1 to 5"),
    ("threshold", lambda: _set(_summed(), 2, np.array([5, 3], np.int32), TWO), "not ascending and distinct"),
    ("threshold", lambda: _set(_summed(), 2, np.array([4, 4], np.int32), TWO), "not ascending and distinct"),
    ("threshold", lambda: _set(_summed(), 2, np.array([0, 1], np.int32), NAN), "tensor 1's values are not all finite"),
    ("threshold", lambda: _set(_summed(), 2, np.array([0], np.int32), np.array([np.inf], np.float32)), "not all finite"),
    ("two_step", lambda: _two_step()[:4], "4 wire arrays, expected 5 (indices and codes per tensor, then the scales)"),
    ("two_step", lambda: _set(_two_step(), 1, _two_step()[1].astype(np.uint16)), "codes is uint16, expected uint8"),
    ("two_step", lambda: _set(_two_step(), 1, _two_step()[1].astype(np.float32)), "codes is float32, expected uint8"),
    ("two_step", lambda: _set(_two_step(), 0, _two_step()[0][1:]), "codes; expected as many of each"),
    ("two_step", lambda: _set(_two_step(), 2, np.array([0, 20], np.int32), np.zeros(2, np.uint8)), "outside 0 .. 19"),
    ("two_step", lambda: _set(_two_step(), 2, np.array([7, 7], np.int32), np.zeros(2, np.uint8)), "not ascending"),
    ("two_step", lambda: _set(_two_step(), 4, np.zeros((3, 2), np.float32)), "scales are [3, 2], expected [2, 2]"),
    ("two_step", lambda: _set(_two_step(), 4, np.zeros(4, np.float32)), "scales has 1 dimensions, expected 2"),
    ("two_step", lambda: _set(_two_step(), 4, np.array([[np.inf, 1], [0, 1]], np.float32)), "not finite"),
    ("two_step", lambda: _set(_two_step(), 4, np.array([[0, 1], [0, -1]], np.float32)), "non-negative"),
    ("two_step", lambda: _set(_two_step(), 4, np.array([[0, 3e38], [0, 1]], np.float32)), "float32's range"),
]
DECODERS = {"quantize": quantize, "topk": lambda: topk(0.1), "threshold": lambda: threshold(0.1),
            "two_step": lambda: two_step(0.1)}


@pytest.mark.parametrize("kind, wire, words", REFUSED, ids=[words for _, _, words in REFUSED])
def test_decode_refuses_inconsistent_wire_arrays_with_a_reason(kind, wire, words):
    codec = DECODERS[kind]()
    with pytest.raises(CodecError) as caught:
        codec.decode(wire(), SHAPES[:2])
    assert words in str(caught.value)


# --- chains -----------------------------------------------------------------------------------

def test_a_chain_puts_codecs_that_write_other_than_tensors_last():
    assert CODECS.names() == ["quantize", "topk", "threshold", "two_step", "sign"]
    quantizer, sparsifier = CODECS.get("quantize"), CODECS.get("topk")
    assert chain_problem([quantizer], ["quantize"]) is None
    index, reason = chain_problem([sparsifier, quantizer], ["topk", "quantize"])
    assert index == 1 and reason.startswith("quantize cannot follow topk")
    assert chain_problem([quantizer] * 9, ["quantize"] * 9)[1] == "a chain of 9 codecs; expected at most 8"
    assert quantize().describe() == {"type": "quantize", "bits": 8, "stochastic": False}
    assert two_step(0.5).describe() == {"type": "two_step", "wt": 0.5, "bits": 8}
    index, reason = chain_problem([CODECS.get("two_step"), quantizer], ["two_step", "quantize"])
    assert index == 1 and reason.startswith("quantize cannot follow two_step")


# --- the spec ---------------------------------------------------------------------------------

def with_codec(codec: str, defaults: str = "") -> str:
    """TREE with ``codec`` on worker w1, at line 9 (and ``defaults`` at line 10)."""
    return TREE + f"    codec: {codec}\n" + (f"defaults: {{codec: {defaults}}}\n" if defaults else "")


@pytest.mark.parametrize("text, line, field, words", [
    (with_codec("{type: quantise}"), 9, "nodes[1].codec",
     ["'quantise' is not a known type (did you mean 'quantize'?)",
      "expected one of quantize, topk, threshold, two_step, sign, or module"]),
    (with_codec("{type: quantize, bits: 7}"), 9, "nodes[1].codec.bits", ["7 is not a number of bits here; expected 8 or 16 (for 1 bit, a sign and a scale: {type: sign})"]),
    (with_codec("{type: quantize, bit: 8}"), 9, "nodes[1].codec.bit", ["unknown key 'bit' (did you mean 'bits'?)"]),
    (with_codec("{type: topk, fraction: 0}"), 9, "nodes[1].codec.fraction", ["0 is too small; expected a number above 0"]),
    (with_codec("{type: topk, fraction: 1.5}"), 9, "nodes[1].codec.fraction", ["too large; expected a number of at most 1"]),
    (with_codec("{type: topk}"), 9, "nodes[1].codec.fraction", ["missing; expected a share of the entries"]),
    (with_codec("[{type: topk, fraction: 0.1}, {type: quantize}]"), 9, "nodes[1].codec[1].type",
     ["quantize cannot follow topk", "expected topk last in the chain"]),
    (with_codec("[{type: quantize}, {typ: topk}]"), 9, "nodes[1].codec[1]", ["'type' is missing"]),
    (with_codec("quantize"), 9, "nodes[1].codec", ["got 'quantize'; expected a codec like {type: quantize, bits: 8}"]),
    (with_codec("{type: 'json:JSONDecoder'}"), 9, "nodes[1].codec.type",
     ["json.JSONDecoder is not a concrete subclass of edgetestbed.codecs.Codec"]),
    (with_codec("[]", "{type: topk, fraction: -1}"), 10, "defaults.codec.fraction", ["too small"]),
    (with_codec("[]", "[{type: topk, fraction: 0.5}, {type: quantize, stochastic: 1}]"), 10,
     "defaults.codec[1].stochastic", ["got 1"]),
])
def test_a_bad_codec_is_reported_at_its_line_and_field(tmp_path, text, line, field, words):
    assert_problem(tmp_path, text, line, field, *words)


@pytest.mark.parametrize("codec, field, words", [
    ("{type: threshold, wt: 0}", "wt", "0 is too small; expected a number above 0"),
    ("{type: threshold, wt: -1}", "wt", "-1 is too small; expected a number above 0"),
    ("{type: threshold}", "wt", "missing; expected a magnitude above 0 that an entry's updates"),
    ("{type: two_step, bits: 8}", "wt", "missing; expected a magnitude above 0"),
    ("{type: two_step, wt: 0}", "wt", "0 is too small"),
    ("{type: two_step, wt: 0.1, bits: 4}", "bits", "4 is not a number of bits here; expected 8 or 16"),
    ("{type: threshold, wt: 0.1, bits: 8}", "bits", "unknown key 'bits'"),
    ("[{type: threshold, wt: 0.1}, {type: quantize}]", "[1].type", "quantize cannot follow threshold"),
])
def test_a_bad_wt_or_bits_is_reported_at_its_line_and_field(tmp_path, codec, field, words):
    separator = "" if field.startswith("[") else "."
    assert_problem(tmp_path, with_codec(codec), 9, f"nodes[1].codec{separator}{field}", words)


def test_codecs_resolve_from_defaults_unless_a_node_gives_its_own():
    text = (TREE + "  - {id: w2, parent: root, sensors: [1], codec: [{type: topk, fraction: 0.1}]}\n"
            "  - {id: w3, parent: root, sensors: [2], codec: []}\n"
            "defaults: {codec: {type: quantize, stochastic: true}}\n")
    spec = load_spec_text(text)
    assert spec.node("w1").codec == (CodecSpec("quantize", {"bits": 8, "stochastic": True}),)
    assert spec.node("w2").codec == (CodecSpec("topk", {"fraction": 0.1, "feedback": True, "min_entries": 0,
                                                         "warmup": 0}),)
    assert spec.node("w3").codec == ()
    data = spec.to_dict()
    assert data["nodes"][2]["codec"] == [{"type": "topk", "fraction": 0.1, "feedback": True, "min_entries": 0,
                                          "warmup": 0}]
    assert "codec" not in data["nodes"][3]   # uncoded nodes read as they always did
    assert load_spec_text(yaml.safe_dump(data)) == spec
    assert load_spec_text(TREE).node("w1").codec == ()
