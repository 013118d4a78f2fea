"""The ``sign`` codec: its round trip and bytes, error feedback committed only when
acknowledged, every inconsistency decode refuses (and a fuzz of random wire arrays), and
``codec: {type: sign}`` in the spec."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgetestbed.codecs import Codec, CodecError, commit_chain, create_codec
from edgetestbed.process import protocol
from edgetestbed.spec.load import load_spec_text
from edgetestbed.spec.model import CodecSpec
from test_codecs import SHAPES, TENSORS, _set, round_trip, with_codec
from test_spec import assert_problem

# the mnist_mlp model's layers: 16,130 float32 entries, 64,520 bytes
MODEL = [(784, 20), (20,), (20, 10), (10,), (10, 10), (10,), (10, 10), (10,)]
ODD_SHAPES = [(), (0,), (0, 3), (1,), (7,), (8,), (9,), (13,), (2, 3, 5), (784, 20)]


def sign(feedback: bool = True) -> Codec:
    return create_codec("sign", {"feedback": feedback})


def _random_tensors(shapes: list, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.01, 0.1, shape).astype(np.float32) for shape in shapes]


def _wire_bytes(wire: list) -> int:
    return sum(array.nbytes for array in wire)


# --- round trip and bytes ---------------------------------------------------------------------

@pytest.mark.parametrize("feedback", [True, False])
def test_each_entry_decodes_as_plus_or_minus_its_tensors_mean_magnitude(feedback):
    tensors = _random_tensors(ODD_SHAPES, 1) + [np.array([0.0, -0.0, 3.0, -1.0], np.float32)]
    codec = sign(feedback)
    wire = codec.encode(tensors)
    decoded = codec.decode(wire, [t.shape for t in tensors])
    assert len(wire) == len(tensors) + 1 and wire[-1].dtype == np.float32 and wire[-1].shape == (len(tensors),)
    for tensor, signs, scale, out in zip(tensors, wire, wire[-1], decoded):
        assert signs.dtype == np.uint8 and signs.shape == (math.ceil(tensor.size / 8),)
        assert out.dtype == np.float32 and out.shape == tensor.shape
        expected = np.float32(np.abs(tensor, dtype=np.float64).mean()) if tensor.size else 0
        assert scale == expected
        assert np.array_equal(out, np.where(tensor >= 0, scale, -scale))
    assert np.array_equal(decoded[-1], [1.0, 1.0, 1.0, -1.0])   # 0 and -0 are non-negative
    assert codec.describe() == {"type": "sign", "feedback": feedback}


def test_sign_sends_an_eighth_of_a_byte_an_entry_and_four_bytes_a_tensor():
    for shapes in (ODD_SHAPES, SHAPES, MODEL):
        tensors = _random_tensors(shapes, 2)
        wire = sign().encode(tensors)
        assert _wire_bytes(wire) == sum(math.ceil(t.size / 8) + 4 for t in tensors)
    model = _random_tensors(MODEL, 3)
    raw = sum(t.nbytes for t in model)
    sent = _wire_bytes(sign().encode(model))
    assert (raw, sent) == (64_520, 2_052)   # 1,960 + 3 + 25 + 2 + 13 + 2 + 13 + 2 bytes of signs, 8 scales
    assert sent / raw < 1 / 31
    print(f"sign / float32 bytes on the {raw:,}-byte model: {sent:,} / {raw:,} = {sent / raw:.4f}")


# --- error feedback ---------------------------------------------------------------------------

def test_error_feedback_sends_everything_but_the_last_residual():
    rng = np.random.default_rng(4)
    updates = [[rng.normal(0.02, 0.1, s).astype(np.float32) for s in SHAPES] for _ in range(60)]

    def received(codec: Codec) -> list:
        total = [np.zeros(s) for s in SHAPES]
        for update in updates:
            for t, part in zip(total, round_trip(codec, update)):
                t += part
            commit_chain([codec])
        return total

    codec = sign()
    with_feedback, without = received(codec), received(sign(feedback=False))
    for number, (got, plain) in enumerate(zip(with_feedback, without)):
        raw = sum(update[number].astype(np.float64) for update in updates)
        left = codec.residual.kept[number].reshape(got.shape)
        assert np.allclose(got, raw - left, rtol=0, atol=1e-4)   # what arrived is all but what is kept
        # the residual stays about one push's error, while without feedback the error adds up
        assert np.abs(got - raw).max() < 0.5 * np.abs(plain - raw).max(), number


def test_state_advances_only_when_a_push_is_acknowledged():
    codec = sign()
    first = codec.encode(TENSORS)
    again = codec.encode(TENSORS)             # the first was never acknowledged: nothing kept
    assert all(np.array_equal(a, b) for a, b in zip(first, again)) and codec.residual.kept is None
    decoded = codec.decode(again, SHAPES)
    commit_chain([codec])                     # now it was
    for tensor, out, left in zip(TENSORS, decoded, codec.residual.kept):
        assert np.array_equal(left, tensor.ravel() - out.ravel())
    after = codec.encode(TENSORS)             # the same update, plus what the first left out
    assert not all(np.array_equal(a, b) for a, b in zip(first, after))
    codec.commit()
    codec.commit()                            # a second commit of the same push changes nothing
    assert codec.residual.pending is None


def test_without_feedback_nothing_is_kept_and_every_push_is_alike():
    codec = sign(feedback=False)
    first = codec.encode(TENSORS)
    commit_chain([codec])
    second = codec.encode(TENSORS)
    commit_chain([codec])
    assert codec.residual.kept is None and codec.residual.pending is None
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


# --- decode refuses inconsistent wire arrays --------------------------------------------------

def _signed() -> list:
    return sign().encode(TENSORS[:2])   # tensors of 15,680 and 20 entries: 1,960 and 3 bytes


def _padded() -> list:
    wire = _signed()
    wire[1] = wire[1].copy()
    wire[1][-1] |= 0b0001   # 20 entries: the last byte's low 4 bits are padding
    return wire


REFUSED = [
    (lambda: _signed()[:-1], "2 wire arrays, expected 3 (signs per tensor, then the scales)"),
    (lambda: _signed() + [np.zeros(2, np.float32)], "4 wire arrays, expected 3"),
    (lambda: [], "0 wire arrays, expected 3"),
    (lambda: _set(_signed(), 0, _signed()[0].astype(np.uint16)), "tensor 0's signs is uint16, expected uint8"),
    (lambda: _set(_signed(), 1, _signed()[1].astype(np.float32)), "tensor 1's signs is float32, expected uint8"),
    (lambda: _set(_signed(), 0, _signed()[0].reshape(980, 2)), "tensor 0's signs has 2 dimensions, expected 1"),
    (lambda: _set(_signed(), 1, np.uint8(7).reshape(())), "tensor 1's signs has 0 dimensions, expected 1"),
    (lambda: _set(_signed(), 0, _signed()[0][:-1]), "tensor 0's signs are 1959 bytes, expected 1960 for 15680 entries"),
    (lambda: _set(_signed(), 1, np.zeros(4, np.uint8)), "tensor 1's signs are 4 bytes, expected 3 for 20 entries"),
    (lambda: _set(_signed(), 1, np.zeros(0, np.uint8)), "tensor 1's signs are 0 bytes, expected 3"),
    (_padded, "tensor 1's signs set padding bits beyond its 20 entries"),
    (lambda: _set(_signed(), 2, _signed()[2].astype(np.float64)), "the scales is float64, expected float32"),
    (lambda: _set(_signed(), 2, np.ones((2, 1), np.float32)), "the scales has 2 dimensions, expected 1"),
    (lambda: _set(_signed(), 2, np.ones(3, np.float32)), "the scales are [3], expected [2]"),
    (lambda: _set(_signed(), 2, np.ones(1, np.float32)), "the scales are [1], expected [2]"),
    (lambda: _set(_signed(), 2, np.array([1, np.nan], np.float32)), "tensor 1's scale nan is not finite and non-neg"),
    (lambda: _set(_signed(), 2, np.array([np.inf, 1], np.float32)), "tensor 0's scale inf is not finite"),
    (lambda: _set(_signed(), 2, np.array([-np.inf, 1], np.float32)), "tensor 0's scale -inf is not finite"),
    (lambda: _set(_signed(), 2, np.array([-1, 1], np.float32)), "tensor 0's scale -1.0 is not finite and non-negative"),
    (lambda: sign().encode(TENSORS[1:3]), "tensor 0's signs are 3 bytes, expected 1960"),   # another model's
]


@pytest.mark.parametrize("wire, words", REFUSED, ids=[words for _, words in REFUSED])
def test_decode_refuses_inconsistent_wire_arrays_with_a_reason(wire, words):
    with pytest.raises(CodecError) as caught:
        sign().decode(wire(), SHAPES[:2])
    assert words in str(caught.value)


def test_padding_bits_are_refused_only_where_a_tensor_has_them():
    codec, shapes = sign(), [(8,), (9,), (0,), ()]
    wire = [np.array([255], np.uint8), np.array([255, 128], np.uint8), np.zeros(0, np.uint8),
            np.array([128], np.uint8), np.ones(4, np.float32)]
    assert [list(out.ravel()) for out in codec.decode(wire, shapes)] == [[1] * 8, [1] * 9, [], [1]]
    for index, last in ((1, 192), (3, 129), (3, 1)):
        bad = _set(wire, index, np.array([*wire[index][:-1], last], np.uint8))
        with pytest.raises(CodecError, match=f"tensor {index}'s signs set padding bits"):
            codec.decode(bad, shapes)


FUZZ_SHAPES = [(13,), (2, 3), (), (0,), (16,)]
FUZZ_DTYPES = sorted(protocol.DTYPES) + ["int8", "float16", "bool"]


def _random_wire_array(rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(rng.choice(FUZZ_DTYPES))
    shape = tuple(int(n) for n in rng.integers(0, 5, rng.choice([0, 1, 1, 1, 2])))
    if dtype.kind == "f":
        with np.errstate(over="ignore"):   # 3e38 as float16 is inf, which is as good
            return rng.choice([0.0, 1.0, -3.5, np.inf, -np.inf, np.nan, 3e38, 1e-30, -0.0], shape).astype(dtype)
    return rng.integers(0, 256, shape).astype(dtype)


def _mutated(rng: np.random.Generator, wire: list) -> list:
    """``wire`` with one array replaced: by random values of its dtype and shape, another
    array, or dropped or duplicated."""
    wire, index = list(wire), int(rng.integers(len(wire)))
    choice = rng.integers(4)
    if choice == 0:
        old = wire[index]
        if old.dtype == np.uint8:
            wire[index] = rng.integers(0, 256, old.shape).astype(np.uint8)
        else:
            wire[index] = rng.choice([0.0, 2.0, -1.0, np.nan, np.inf, 3.4e38], old.shape).astype(old.dtype)
    elif choice == 1:
        wire[index] = _random_wire_array(rng)
    elif choice == 2:
        del wire[index]
    else:
        wire.insert(index, wire[index])
    return wire


def test_fuzzed_wire_arrays_either_decode_into_the_shapes_or_raise_codec_error():
    """Thousands of random wire lists, valid ones mutated and ones encoded from tensors of
    extreme values never raise anything but a CodecError; what decodes has the receiver's
    shapes, each entry ± a finite non-negative scale."""
    rng = np.random.default_rng(11)
    valid = [sign().encode(_random_tensors(FUZZ_SHAPES, seed)) for seed in range(5)]
    extremes = [0.0, -0.0, 1e-45, -1e-38, 3.4e38, -3.4e38, 1.0, -2.5]
    outcomes = {"decoded": 0, "refused": 0}
    for case in range(3000):
        if case % 3 == 0:
            wire = [_random_wire_array(rng) for _ in range(int(rng.integers(0, 8)))]
        elif case % 3 == 1:
            wire = _mutated(rng, valid[case % len(valid)])
        else:
            wire = sign().encode([rng.choice(extremes, shape).astype(np.float32) for shape in FUZZ_SHAPES])
        try:
            decoded = sign().decode(wire, FUZZ_SHAPES)
        except CodecError:
            outcomes["refused"] += 1
            continue
        outcomes["decoded"] += 1
        assert [out.shape for out in decoded] == FUZZ_SHAPES and all(out.dtype == np.float32 for out in decoded)
        for out, scale in zip(decoded, wire[-1]):
            assert np.isfinite(scale) and scale >= 0 and set(np.abs(out).ravel()) <= {scale}
    assert min(outcomes.values()) > 300, outcomes


# --- the spec ---------------------------------------------------------------------------------

def test_codec_sign_validates_and_resolves():
    assert load_spec_text(with_codec("{type: sign}")).node("w1").codec == (CodecSpec("sign", {"feedback": True}),)
    spec = load_spec_text(with_codec("[{type: sign, feedback: false}]"))
    assert spec.node("w1").codec == (CodecSpec("sign", {"feedback": False}),)


@pytest.mark.parametrize("codec, field, words", [
    ("{type: sign, scale: 1}", "scale", "unknown key 'scale'"),
    ("{type: sign, bits: 1}", "bits", "unknown key 'bits'"),
    ("{type: sign, feedbak: true}", "feedbak", "unknown key 'feedbak' (did you mean 'feedback'?)"),
    ("{type: sign, feedback: 2}", "feedback", "got 2"),
    ("{type: quantize, bits: 1}", "bits", "1 is not a number of bits here; expected 8 or 16 (for 1 bit, a sign "
                                          "and a scale: {type: sign})"),
    ("{type: sigm}", "type", "'sigm' is not a known type (did you mean 'sign'?)"),
    ("[{type: sign}, {type: quantize}]", "[1].type", "quantize cannot follow sign"),
])
def test_a_bad_sign_codec_is_reported_at_its_line_and_field(tmp_path, codec, field, words):
    separator = "" if field.startswith("[") else "."
    field = "" if field == "type" else f"{separator}{field}"
    assert_problem(tmp_path, with_codec(codec), 9, f"nodes[1].codec{field}", words)
