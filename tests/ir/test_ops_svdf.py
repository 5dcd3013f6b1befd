"""SVDF (int8 with int16 or int8 state) against tflite-micro on every backend
(ir/ops/svdf.py), over streams of invocations: the state is kept between calls on every
backend as tflite-micro's interpreter keeps its variable tensor, and what tflite-micro's
Prepare refuses is refused."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.backend_registry import build
from mcuc.cli import main
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.model import load_model
from mcuc import oracle as oracle_module
from mcuc.oracle import TFLiteOracle
from mcuc.pipeline import CompileOptions, schedule
from tests.ir.test_ops_compare import NEEDS_ARM
from tests.support.tflite_builder import ModelBuilder


@dataclasses.dataclass(frozen=True)
class Layer:
    units: int
    rank: int
    memory: int
    state_dtype: str = "int16"
    state_zero_point: int = 0


def svdf_model(layers: list[Layer], batch: int = 1, inputs: int = 16, seed: int = 0, bias: bool = True,
               gain: float = 1.0, head: bool = False) -> bytes:
    """A stack of SVDF layers (the shape of a keyword spotter's SVDF body) on an int8
    input of [batch, inputs], with scales that keep the outputs mostly unsaturated;
    `head`: a FULLY_CONNECTED and a SOFTMAX after them, as a classifier has."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    x = mb.tensor("x", (batch, inputs), scale=0.05, zero_point=3)
    current, width, in_scale = x, inputs, 0.05
    for k, layer in enumerate(layers):
        filters = layer.units * layer.rank
        wf_scale, wt_scale = 0.01, 0.004
        info = np.iinfo(layer.state_dtype)
        # Feature sums of about 73 x 74 x sqrt(width) to a quarter of the state's range; time
        # sums of about 0.14 x max^2 x sqrt(memory x rank) to outputs of about 40 / gain.
        state_scale = in_scale * wf_scale * 5400 * np.sqrt(width) * 4 / info.max
        time_sum = 0.14 * float(info.max) ** 2 * np.sqrt(layer.memory * layer.rank)
        wf = mb.tensor(f"wf{k}", (filters, width), scale=wf_scale, zero_point=0,
                       data=rng.integers(-127, 128, (filters, width)))
        wt = mb.tensor(f"wt{k}", (filters, layer.memory), layer.state_dtype, scale=wt_scale, zero_point=0,
                       data=rng.integers(info.min + 1, info.max + 1, (filters, layer.memory)))
        bias_scale = float(np.float32(np.float32(state_scale) * np.float32(wt_scale)))
        b = mb.tensor(f"b{k}", (layer.units,), "int32", scale=bias_scale, zero_point=0,
                      data=rng.integers(-time_sum / 4, time_sum / 4, layer.units)) if bias else -1
        state = mb.tensor(f"state{k}", (batch, filters * layer.memory), layer.state_dtype, scale=state_scale,
                          zero_point=layer.state_zero_point, variable=True)
        out_scale = state_scale * wt_scale * time_sum / 40 * gain
        y = mb.tensor(f"y{k}", (batch, layer.units), scale=out_scale, zero_point=-5)
        mb.op("SVDF", [current, wf, wt, b, state], [y], rank=layer.rank)
        current, width, in_scale = y, layer.units, out_scale
    if head:
        w = mb.tensor("fc_w", (4, width), scale=0.02, zero_point=0, data=rng.integers(-127, 128, (4, width)))
        logits_scale = in_scale * 0.02 * 73 * np.sqrt(width)
        logits = mb.tensor("logits", (batch, 4), scale=logits_scale, zero_point=0)
        mb.op("FULLY_CONNECTED", [current, w, -1], [logits])
        probs = mb.tensor("probs", (batch, 4), scale=1 / 256, zero_point=-128)
        mb.op("SOFTMAX", [logits], [probs], beta=float(1.5 / (20 * logits_scale)))  # logits spread ~1.5
        current = probs
    return mb.build([x], [current])


def stream(batch: int, inputs: int, steps: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, (batch, inputs)).astype(np.int8) for _ in range(steps)]


def assert_stream_matches(model_bytes: bytes, frames: list[np.ndarray], backends, options=CompileOptions()) -> None:
    """Every backend, called once per frame in order, gives tflite-micro's bytes of each
    invocation of one interpreter."""
    oracle = TFLiteOracle(model_bytes)
    want = [oracle([x])[0] for x in frames]
    model = load_model(model_bytes, format="tflite")
    for backend in backends:
        run = build(backend, model, options).run
        for t, (x, w) in enumerate(zip(frames, want)):
            got = run([x])[0]
            wrong = np.flatnonzero(got.reshape(-1) != w.reshape(-1))
            assert wrong.size == 0, (f"{backend}: invocation {t}: {wrong.size} of {w.size} values differ from "
                                     f"tflite-micro: {got.reshape(-1)[wrong[:4]].tolist()} vs "
                                     f"{w.reshape(-1)[wrong[:4]].tolist()}")


@settings(deadline=None, max_examples=30)
@given(units=st.integers(1, 6), rank=st.integers(1, 3), memory=st.integers(1, 9), batch=st.integers(1, 2),
       inputs=st.integers(1, 20), state_dtype=st.sampled_from(["int16", "int8"]), zp=st.integers(-20, 20),
       gain=st.floats(0.05, 4.0), seed=st.integers(0, 2**31))
def test_reference_and_llvm_match_tflite_micro_over_a_stream(units, rank, memory, batch, inputs, state_dtype, zp,
                                                            gain, seed):
    layer = Layer(units, rank, memory, state_dtype, zp if state_dtype == "int8" else 0)
    model = svdf_model([layer], batch, inputs, seed, gain=gain)
    assert_stream_matches(model, stream(batch, inputs, memory + 3, seed), ("reference", "llvm"))


@settings(deadline=None, max_examples=6)
@given(units=st.integers(1, 5), rank=st.integers(1, 3), memory=st.integers(1, 6), batch=st.integers(1, 2),
       inputs=st.integers(1, 12), state_dtype=st.sampled_from(["int16", "int8"]), zp=st.integers(-20, 20),
       seed=st.integers(0, 2**31))
@pytest.mark.parametrize("backend", ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM)])
def test_the_c_backends_match_tflite_micro_over_a_stream(backend, units, rank, memory, batch, inputs, state_dtype,
                                                        zp, seed):
    layer = Layer(units, rank, memory, state_dtype, zp if state_dtype == "int8" else 0)
    model = svdf_model([layer], batch, inputs, seed)
    assert_stream_matches(model, stream(batch, inputs, memory + 2, seed), (backend,))


@pytest.mark.parametrize("backend", ["reference", "llvm", "c-host", pytest.param("cortex-m4", marks=NEEDS_ARM),
                                     pytest.param("cortex-m0", marks=NEEDS_ARM)])
def test_a_keyword_spotter_of_svdf_layers_streams_bit_exact(backend):
    """Three SVDF layers (int16 state, then int8 with a zero point), a fully connected
    classifier and a softmax, as a KWS SVDF model has, over 12 frames, with the inputs and
    outputs in the arena and in caller buffers."""
    layers = [Layer(8, 2, 6), Layer(6, 1, 4, "int8", 7), Layer(5, 2, 3)]
    model = svdf_model(layers, inputs=20, seed=3, head=True)
    frames = stream(1, 20, 12, 5)
    for io_buffers in ("arena", "caller"):
        assert_stream_matches(model, frames, (backend,), CompileOptions(io_buffers=io_buffers))


_C_BACKENDS = ["c-host", pytest.param("cortex-m4", marks=NEEDS_ARM), pytest.param("cortex-m0", marks=NEEDS_ARM)]


@pytest.mark.parametrize("backend", _C_BACKENDS)
def test_every_split_of_the_c_dot_products(backend):
    """Widths where the C kernel's dot products (runtime_c/mcuc_dot.h) split: layer inputs of
    every count modulo 4 (the tail after the SMLAD words), odd and even filter counts (feature
    rows two at a time, then one alone), int16 memories odd and even and int8 memories of
    every count modulo 4 (state rows at every alignment), state zero points folded in."""
    layers = [Layer(3, 1, 5), Layer(2, 2, 4, "int8", -6), Layer(5, 1, 7, "int8", 2), Layer(1, 3, 2),
              Layer(4, 1, 6, "int8", 9)]
    model = svdf_model(layers, inputs=7, seed=8)
    assert_stream_matches(model, stream(1, 7, 9, 8), (backend,))


def _saturating_svdf(memory: int) -> bytes:
    """One SVDF whose state saturates at +32767 on a constant input and whose time weights
    are all 32767: its time sums reach memory x 2^30 and wrap past 2^31."""
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 4), scale=0.05, zero_point=0)
    wf = mb.tensor("wf", (1, 4), scale=0.01, zero_point=0, data=np.full((1, 4), 127))
    wt = mb.tensor("wt", (1, memory), "int16", scale=2.0 ** -15, zero_point=0, data=np.full((1, memory), 32767))
    state_scale = 1e-6
    b = mb.tensor("b", (1,), "int32", scale=float(np.float32(np.float32(state_scale) * np.float32(2.0 ** -15))),
                  zero_point=0, data=[0])
    state = mb.tensor("state", (1, memory), "int16", scale=state_scale, variable=True)
    y = mb.tensor("y", (1, 1), scale=state_scale * 2.0 ** -15 * 2 ** 24, zero_point=0)
    mb.op("SVDF", [x, wf, wt, b, state], [y], rank=1)
    return mb.build([x], [y])


@pytest.mark.parametrize("backend", ["reference", "llvm", *_C_BACKENDS])
def test_time_sums_past_int32_wrap_as_tflite_micro_does(backend):
    """Every step adds about 2^30 to the time sum (outputs of sum / 2^24): tflite-micro gives
    64, 127, then -64 (3 x 2^30 read as -2^30 in int32, where a saturating or wider sum would
    give 127), 0, 64, 64. SMLAD's wrapped sum, the uint32 loop's and the reference's agree."""
    model, frames = _saturating_svdf(memory=5), [np.full((1, 4), 127, np.int8)] * 6
    oracle = TFLiteOracle(model)
    assert [int(oracle([x])[0][0, 0]) for x in frames] == [64, 127, -64, 0, 64, 64]  # it does wrap
    assert_stream_matches(model, frames, (backend,))


@pytest.mark.parametrize("drop", ["evicted", "new worker"])
def test_the_oracle_continues_a_stream_when_its_worker_drops_the_model(drop):
    """The worker keeps a few models loaded; one that outlives more of them, or a worker
    replaced by a fresh_process oracle, loses a stateful model. Its oracle then replays the
    stream so far, and the next answer is the uninterrupted stream's (a reload alone would
    restart from a reset state: the outputs of frames 2 and 3 differ from a fresh start's)."""
    model = svdf_model([Layer(4, 1, 5), Layer(3, 1, 3, "int8", 7)], inputs=6, seed=2)
    frames = stream(1, 6, 4, 6)
    steady = TFLiteOracle(model)
    want = [steady([x])[0] for x in frames]
    assert not np.array_equal(want[2], TFLiteOracle(model)([frames[2]])[0]), "the state must matter here"
    interrupted = TFLiteOracle(model)
    got = [interrupted([x])[0] for x in frames[:2]]
    if drop == "evicted":
        others = [TFLiteOracle(svdf_model([Layer(2, 1, 2)], inputs=3, seed=k)) for k in range(oracle_module._WORKER_MODELS)]
        assert all(o([np.zeros((1, 3), np.int8)])[0].shape == (1, 2) for o in others)
    else:
        TFLiteOracle(model, fresh_process=True)
    got += [interrupted([x])[0] for x in frames[2:]]
    for t, (g, w) in enumerate(zip(got, want)):
        assert np.array_equal(g, w), f"frame {t}: {g} vs the uninterrupted stream's {w}"


def test_only_models_with_variable_tensors_keep_their_stream():
    assert oracle_module.keeps_state(svdf_model([Layer(2, 1, 2)], inputs=3))
    mb = ModelBuilder()
    x, y = mb.tensor("x", (1, 4), scale=0.1), mb.tensor("y", (1, 4), scale=0.1)
    mb.op("RELU", [x], [y])
    assert not oracle_module.keeps_state(mb.build([x], [y]))
    assert not oracle_module.keeps_state(b"not a flatbuffer")


def test_the_state_matters_and_lives_outside_the_arena():
    """A run that forgets the state differs from tflite-micro from the second frame on
    (the test above can fail); the plan keeps each state tensor in the state area, past
    the arena, laid out once, never reused."""
    model = svdf_model([Layer(4, 2, 5), Layer(3, 1, 2, "int8", -4)], inputs=10, seed=1)
    frames = stream(1, 10, 6, 2)
    oracle = TFLiteOracle(model)
    want = [oracle([x])[0] for x in frames]
    graph = load_tflite(model)
    from mcuc.ir.interpreter import run

    forgetful = [run(graph, [x])[0] for x in frames]  # a reset state every time
    assert np.array_equal(forgetful[0], want[0])
    assert any(not np.array_equal(f, w) for f, w in zip(forgetful[1:], want[1:]))
    program = schedule(graph, CompileOptions())
    states = graph.states
    assert [t.name for t in states] == ["state0", "state1"]
    assert program.state_base >= program.arena_bytes and program.state_bytes == sum(t.nbytes for t in states)
    assert all(program.in_state(program.offsets[t]) and not program.in_arena(t) for t in states)
    assert not any(b.name.startswith("state") for b in program.buffers)
    # The int8 state resets to its zero point, as tflite-micro's ResetVariableTensors memsets it.
    area = program.reset_state_area()
    second = program.offsets[states[1]] - program.state_base
    assert set(area[second:second + states[1].nbytes]) == {(-4) & 0xFF} and not area[:states[0].nbytes].any()


def test_an_sram_budget_no_schedule_meets_names_the_state_beside_the_arena(tmp_path, capsys):
    """--sram budgets the arena; the error says so, and how much the state adds."""
    model = tmp_path / "kws.tflite"
    model.write_bytes(svdf_model([Layer(4, 2, 5)], inputs=10, seed=1))
    assert main(["compile", str(model), "-o", str(tmp_path / "out"), "--sram", "16"]) != 0
    error = capsys.readouterr().err
    assert "fits 16 B of SRAM (the arena; the state kept between invocations takes 80 B beside it)" in error, error


def _refused(layer_kwargs: dict, match: str, **model_kwargs) -> None:
    with pytest.raises(MCUCError, match=match):
        load_tflite(svdf_model([Layer(**layer_kwargs)], **model_kwargs))


def test_what_tflite_micro_refuses_is_refused():
    _refused(dict(units=3, rank=2, memory=4), "SVDF.*has no bias; tflite-micro's Prepare reads", bias=False)
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 4), scale=0.05, zero_point=0)
    wf = mb.tensor("wf", (2, 4), scale=0.01, data=np.ones((2, 4)))
    wt = mb.tensor("wt", (2, 3), "int16", scale=0.004, data=np.ones((2, 3)))
    b = mb.tensor("b", (2,), "int32", scale=0.1, data=np.zeros(2))
    state = mb.tensor("state", (1, 6), "int16", scale=0.001, variable=True)
    y = mb.tensor("y", (1, 2), scale=0.1)
    mb.op("SVDF", [x, wf, wt, b, state], [y], rank=1)
    with pytest.raises(MCUCError, match="SVDF.*bias scale 0.1 must be within 1e-05 of state scale"):
        load_tflite(mb.build([x], [y]))


def test_a_state_tensor_must_be_kept_by_exactly_one_op():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 8), scale=0.05)
    state = mb.tensor("state", (1, 8), scale=0.05, variable=True)
    y = mb.tensor("y", (1, 8), scale=0.1)
    mb.op("ADD", [x, state], [y])
    with pytest.raises(MCUCError, match="state tensor 'state' must be read by exactly one op, as one of the inputs "
                                        "it keeps"):
        load_tflite(mb.build([x], [y]))


def test_the_plan_verifier_holds_the_state_rule():
    """check_program refuses a state tensor moved into the arena, two state tensors on
    the same bytes, and a state area that starts inside the arena."""
    from mcuc.ir.program_check import RULE_STATE, PlanError, check_program

    graph = load_tflite(svdf_model([Layer(4, 2, 5), Layer(3, 1, 2)], inputs=10, seed=1))
    program = schedule(graph, CompileOptions())
    check_program(program)
    first, second = graph.states
    broken = [
        dataclasses.replace(program, offsets={**program.offsets, first: 0}),
        dataclasses.replace(program, offsets={**program.offsets, second: program.offsets[first]}),
        dataclasses.replace(program, state_base=0, offsets={**program.offsets, first: 0,
                                                            second: program.offsets[second] - program.state_base}),
    ]
    for bad in broken:
        with pytest.raises(PlanError, match="state") as caught:
            check_program(bad)
        assert caught.value.rule == RULE_STATE


@pytest.mark.parametrize("backend", ["reference", "llvm", "c-host"])
def test_the_python_api_streams_and_resets(backend):
    """mcuc.compile(...)'s model continues one stream from call to call; reset_state()
    starts the same stream again."""
    import mcuc

    model = mcuc.compile(svdf_model([Layer(4, 2, 5)], inputs=10, seed=7), backend=backend)
    frames = stream(1, 10, 5, 9)
    first = [model(x) for x in frames]
    model.reset_state()
    again = [model(x) for x in frames]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(first[0], f) for f in first[1:])
