"""UNIDIRECTIONAL_SEQUENCE_LSTM (int8 and 16x8, int16 cell) against tflite-micro on every backend
(ir/ops/lstm.py), over streams of invocations: the hidden and cell states are kept
between calls as tflite-micro keeps its variable tensors; batch- and time-major
sequences, cell clipping, cell scales that are and are not powers of two, and what
tflite-micro refuses."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.interpreter import reset_state, run
from mcuc.pipeline import CompileOptions
from tests.ir.test_ops_compare import NEEDS_ARM
from tests.ir.test_ops_svdf import assert_stream_matches
from tests.support.tflite_builder import ModelBuilder, pack, unpack

HIDDEN_SCALE = 2.0 ** -7


def lstm_model(batch: int = 1, time: int = 3, inputs: int = 5, units: int = 4, time_major: bool = False,
               cell_clip: float = 0.0, cell_scale: float = 2.0 ** -11, hidden_zp: int = 3, input_zp: int = 2,
               seed: int = 0, head: bool = False, activation: str = "TANH", drop: int | None = None,
               dtype: str = "int8") -> bytes:
    """One LSTM layer with gate sums of a few units of 2^-12 (weights scaled to the input
    width) and biases of about one; `head`: a FULLY_CONNECTED and a SOFTMAX on the last
    step's hidden state (time 1), as a streaming keyword spotter has; `drop`: leave that
    input absent (tests of what is refused); `dtype` "int16": the 16x8 form (activations
    of the same real range, zero points 0, int64 biases)."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    shape = (time, batch, inputs) if time_major else (batch, time, inputs)
    wide = dtype == "int16"
    x_scale = 0.05 / 256 if wide else 0.05
    hidden_scale = HIDDEN_SCALE / 256 if wide else HIDDEN_SCALE
    hidden_zp, input_zp = (0, 0) if wide else (hidden_zp, input_zp)
    x = mb.tensor("x", shape, dtype, scale=x_scale, zero_point=input_zp)
    w_in_scale = 2 / (3.7 * 73 * np.sqrt(inputs))
    w_rec_scale = (1 / 256 if wide else 1) / (73 * np.sqrt(units))
    bias_limit = int(1 / (x_scale * w_in_scale))
    ins: list[int] = [x]
    ins += [mb.tensor(f"w_in{g}", (units, inputs), scale=w_in_scale, data=rng.integers(-127, 128, (units, inputs)))
            for g in range(4)]
    ins += [mb.tensor(f"w_rec{g}", (units, units), scale=w_rec_scale, data=rng.integers(-127, 128, (units, units)))
            for g in range(4)]
    ins += [-1, -1, -1]
    ins += [mb.tensor(f"b{g}", (units,), "int64" if wide else "int32", scale=x_scale * w_in_scale,
                      data=rng.integers(-bias_limit, bias_limit, units)) for g in range(4)]
    ins += [-1, -1]
    ins += [mb.tensor("hidden", (batch, units), dtype, scale=hidden_scale, zero_point=hidden_zp, variable=True),
            mb.tensor("cell", (batch, units), "int16", scale=cell_scale, variable=True)]
    ins += [-1, -1, -1, -1]
    if drop is not None:
        ins[drop] = -1
    y = mb.tensor("y", (time, batch, units) if time_major else (batch, time, units), dtype, scale=hidden_scale,
                  zero_point=hidden_zp)
    mb.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], fused_activation_function=activation, cell_clip=cell_clip,
          time_major=time_major)
    if not head:
        return mb.build([x], [y])
    flat = mb.tensor("flat", (batch, units), scale=HIDDEN_SCALE, zero_point=hidden_zp)
    mb.op("RESHAPE", [y, mb.const("shape", [batch, units])], [flat])
    w = mb.tensor("fc_w", (3, units), scale=0.02, data=rng.integers(-127, 128, (3, units)))
    logits_scale = HIDDEN_SCALE * 0.02 * 73 * 32 * np.sqrt(units) / 40  # logits of about 40
    logits = mb.tensor("logits", (batch, 3), scale=logits_scale)
    mb.op("FULLY_CONNECTED", [flat, w, -1], [logits])
    probs = mb.tensor("probs", (batch, 3), scale=1 / 256, zero_point=-128)
    mb.op("SOFTMAX", [logits], [probs], beta=float(1.5 / (40 * logits_scale)))
    return mb.build([x], [probs])


def frames(shape, steps: int, seed: int, dtype: str = "int8") -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return [rng.integers(info.min, info.max + 1, shape).astype(dtype) for _ in range(steps)]


def _input_shape(batch, time, inputs, time_major):
    return (time, batch, inputs) if time_major else (batch, time, inputs)


@settings(deadline=None, max_examples=30)
@given(batch=st.integers(1, 3), time=st.integers(1, 4), inputs=st.integers(1, 12), units=st.integers(1, 9),
       time_major=st.booleans(), clip=st.sampled_from([0.0, 0.05, 0.4, 3.0]),
       cell_scale=st.sampled_from([2.0 ** -11, 2.0 ** -13, 2.0 ** -9, 0.0003, 0.002]),
       hidden_zp=st.integers(-30, 30), input_zp=st.integers(-128, 127), seed=st.integers(0, 2**31),
       dtype=st.sampled_from(["int8", "int16"]))
def test_reference_and_llvm_match_tflite_micro_over_a_stream(batch, time, inputs, units, time_major, clip, cell_scale,
                                                            hidden_zp, input_zp, seed, dtype):
    model = lstm_model(batch, time, inputs, units, time_major, clip, cell_scale, hidden_zp, input_zp, seed,
                       dtype=dtype)
    stream = frames(_input_shape(batch, time, inputs, time_major), 4, seed, dtype)
    assert_stream_matches(model, stream, ("reference", "llvm"))


@settings(deadline=None, max_examples=6)
@given(batch=st.integers(1, 2), time=st.integers(1, 3), inputs=st.integers(1, 10), units=st.integers(1, 8),
       time_major=st.booleans(), clip=st.sampled_from([0.0, 0.05, 0.4]),
       cell_scale=st.sampled_from([2.0 ** -11, 2.0 ** -13, 0.0003]), hidden_zp=st.integers(-30, 30),
       seed=st.integers(0, 2**31), dtype=st.sampled_from(["int8", "int16"]))
@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM)])
def test_the_c_backends_match_tflite_micro_over_a_stream(backend, batch, time, inputs, units, time_major, clip,
                                                        cell_scale, hidden_zp, seed, dtype):
    model = lstm_model(batch, time, inputs, units, time_major, clip, cell_scale, hidden_zp, 5, seed, dtype=dtype)
    stream = frames(_input_shape(batch, time, inputs, time_major), 3, seed, dtype)
    assert_stream_matches(model, stream, (backend,))


@pytest.mark.parametrize("backend", ["reference", "llvm", "c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_a_streaming_lstm_keyword_spotter_is_bit_exact(backend):
    """One 40-feature frame per invocation into a 16-unit LSTM, a classifier and a
    softmax (a streaming KWS LSTM), over 10 frames; and a 4-step time-major sequence of
    two batches per invocation; and a 16x8 one (int16 activations, int64 biases); inputs and
    outputs in the arena and in caller buffers."""
    kws = lstm_model(1, 1, 40, 16, cell_clip=3.0, seed=11, head=True)
    for io_buffers in ("arena", "caller"):
        assert_stream_matches(kws, frames((1, 1, 40), 10, 2), (backend,), CompileOptions(io_buffers=io_buffers))
    sequence = lstm_model(2, 4, 6, 5, time_major=True, cell_clip=0.4, cell_scale=0.0003, hidden_zp=-7, seed=12)
    assert_stream_matches(sequence, frames((4, 2, 6), 4, 3), (backend,))
    wide = lstm_model(2, 3, 6, 5, cell_clip=0.4, seed=13, dtype="int16")  # 16x8
    assert_stream_matches(wide, frames((2, 3, 6), 4, 4, "int16"), (backend,))


@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_every_split_of_the_c_dot_products(backend):
    """Widths where the C kernel's gate products (runtime_c/mcuc_dot.h) split: inputs and
    units of every count modulo 4 (the tail after the SMLAD/SMLALD words), unit counts odd
    and even (rows two at a time, then one alone) and 1; int8 with both zero points folded
    into the start values, and 16x8."""
    cases = [(4, 1, "int8"), (5, 2, "int8"), (6, 3, "int8"), (7, 5, "int8"), (9, 8, "int16"), (7, 3, "int16"),
             (4, 1, "int16")]
    for k, (inputs, units, dtype) in enumerate(cases):
        model = lstm_model(1, 2, inputs, units, hidden_zp=-9, input_zp=4, seed=40 + k, dtype=dtype)
        assert_stream_matches(model, frames((1, 2, inputs), 3, k, dtype), (backend,))


def test_the_state_and_the_clip_matter():
    """A run that forgets the state, or ignores the cell clip, differs from tflite-micro:
    the tests above can fail."""
    model = lstm_model(1, 2, 6, 5, cell_clip=0.4, seed=5)
    stream = frames((1, 2, 6), 5, 6)
    graph = load_tflite(model)
    state = reset_state(graph)
    kept = [run(graph, [x], state=state)[0] for x in stream]
    forgetful = [run(graph, [x])[0] for x in stream]
    assert np.array_equal(kept[0], forgetful[0]) and not all(np.array_equal(a, b) for a, b in zip(kept, forgetful))
    unclipped = load_tflite(lstm_model(1, 2, 6, 5, cell_clip=0.0, seed=5))
    state = reset_state(unclipped)
    assert not all(np.array_equal(run(unclipped, [x], state=state)[0], k) for x, k in zip(stream, kept))


def test_what_tflite_micro_refuses_is_refused():
    m = unpack(lstm_model())
    m.subgraphs[0].operators[0].inputs[9] = m.subgraphs[0].operators[0].inputs[1]
    with pytest.raises(MCUCError, match="LSTM.*input 9 is given: peephole"):
        load_tflite(pack(m))
    with pytest.raises(MCUCError, match="inputs 1, 5 and 12 .* are required by tflite-micro"):
        load_tflite(lstm_model(drop=1))
    with pytest.raises(MCUCError, match="fused_activation_function RELU is not TANH"):
        load_tflite(lstm_model(activation="RELU"))
    with pytest.raises(MCUCError, match="cell state's scale .* too coarse"):
        load_tflite(lstm_model(cell_scale=2.0 ** 4))
    m = unpack(lstm_model(dtype="int16"))
    m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[18]].quantization.zeroPoint = [5]
    with pytest.raises(MCUCError, match="16x8 input, output and hidden state zero points \\[0, 0, 5\\] must be 0"):
        load_tflite(pack(m))
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 3), scale=0.05)
    y = mb.tensor("y", (1, 2, 3), scale=0.05)
    mb.op("UNIDIRECTIONAL_SEQUENCE_LSTM", [x] + [-1] * 23, [y], fused_activation_function="TANH")
    with pytest.raises(MCUCError, match="the hidden state \\(18\\) and the cell state \\(19\\) are required"):
        load_tflite(mb.build([x], [y]))


@pytest.mark.parametrize("weights", ["float32", "int8"])
def test_a_float_or_hybrid_lstm_is_refused_with_the_converter_settings(weights):
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 3), "float32")
    quant = {} if weights == "float32" else {"scale": 0.01}
    ins = [x] + [mb.tensor(f"w{i}", (4, 3) if i < 4 else (4, 4), weights, data=np.ones((4, 3) if i < 4 else (4, 4)),
                           **quant) for i in range(8)]
    ins += [-1] * 3 + [mb.tensor(f"b{i}", (4,), "float32", data=np.zeros(4)) for i in range(4)] + [-1, -1]
    ins += [mb.tensor("h", (1, 4), "float32", variable=True), mb.tensor("c", (1, 4), "float32", variable=True)]
    y = mb.tensor("y", (1, 2, 4), "float32")
    mb.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins + [-1] * 4, [y], fused_activation_function="TANH")
    kind = "a float model" if weights == "float32" else "a dynamic-range \\(hybrid\\) model"
    with pytest.raises(MCUCError, match=f"UNIDIRECTIONAL_SEQUENCE_LSTM 'y': float32 input 'x': this is {kind}.*"
                                        "TFLITE_BUILTINS_INT8"):
        load_tflite(mb.build([x], [y]))
