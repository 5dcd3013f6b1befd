"""The llvm backend on small generated graphs under the real memory plan, and on a
deliberately corrupted plan.

1. Hypothesis builds MobileNet-style graphs (expand 1x1 -> depthwise -> project 1x1,
   residual ADD, a two-branch CONCATENATION, and a pooling/FC/SOFTMAX head) as TFLite
   models; mcuc.passes.plan schedules them with buffer reuse, in-place depthwise and
   ADD, and aliasing; llvm's bytes equal tflite-micro's and the reference's.
2. The memory plan is really used: moving one buffer onto a live one makes the llvm
   output differ, while the untouched plan matches.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mcuc.backends.llvm import compile_program, scratch_requests
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.interpreter import run
from mcuc.ir.program import InPlace, Program
from mcuc.passes import plan
from tests.backends.llvm.test_llvm_layers import check_model, same_bytes
from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias, random_int8, random_quant

seeds = st.integers(0, 2**32 - 1)


@dataclasses.dataclass
class Act:
    """An activation tensor of the model being built: index, shape and quantization."""

    index: int
    shape: tuple[int, ...]
    scale: float
    zero_point: int


class GraphMaker:
    """Adds layers with random, oracle-legal weights and output scales that keep most
    outputs inside int8 (so saturation does not hide errors)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.mb = ModelBuilder()
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}_{self.count}"

    def input(self, shape) -> Act:
        scale, zp = random_quant(self.rng)
        return Act(self.mb.tensor("input", shape, "int8", scale, zp), tuple(shape), scale, zp)

    def output(self, shape, taps: int, in_scale: float, w_scale: float, quant=None) -> Act:
        if quant is None:
            spread = 74.0 * 74.0 * np.sqrt(taps) * in_scale * w_scale
            quant = (float(np.float32(spread / 40.0 * np.exp(self.rng.uniform(-0.5, 0.5)))),
                     int(self.rng.integers(-30, 30)))
        return Act(self.mb.tensor(self.name("act"), shape, "int8", *quant), tuple(shape), *quant)

    def _weights(self, shape, axis, x: Act, channels: int):
        w, scales = int8_weights(self.rng, shape, axis=axis)
        w_t = self.mb.tensor(self.name("w"), shape, "int8", scales, np.zeros(scales.size, np.int64), axis=axis, data=w)
        b_scales = (np.float64(x.scale) * scales.astype(np.float64)).astype(np.float32)
        b_t = self.mb.tensor(self.name("b"), (channels,), "int32", b_scales, np.zeros(channels, np.int64),
                             data=int32_bias(self.rng, channels))
        return w_t, b_t, float(np.median(scales))

    def conv(self, x: Act, out_channels: int, kernel: int = 1, stride: int = 1, act: str = "RELU6", quant=None) -> Act:
        n, h, w, c = x.shape
        w_t, b_t, w_scale = self._weights((out_channels, kernel, kernel, c), 0, x, out_channels)
        y = self.output((n, -(-h // stride), -(-w // stride), out_channels), kernel * kernel * c, x.scale, w_scale, quant)
        self.mb.op("CONV_2D", [x.index, w_t, b_t], [y.index], padding="SAME", stride_h=stride, stride_w=stride,
                   fused_activation_function=act)
        return y

    def depthwise(self, x: Act, kernel: int, stride: int, act: str = "RELU6", quant=None) -> Act:
        n, h, w, c = x.shape
        w_t, b_t, w_scale = self._weights((1, kernel, kernel, c), 3, x, c)
        y = self.output((n, -(-h // stride), -(-w // stride), c), kernel * kernel, x.scale, w_scale, quant)
        self.mb.op("DEPTHWISE_CONV_2D", [x.index, w_t, b_t], [y.index], padding="SAME", stride_h=stride,
                   stride_w=stride, depth_multiplier=1, fused_activation_function=act)
        return y

    def add(self, a: Act, b: Act) -> Act:
        scale = float(np.float32(max(a.scale, b.scale) * 1.5))
        y = Act(self.mb.tensor(self.name("sum"), a.shape, "int8", scale, 0), a.shape, scale, 0)
        self.mb.op("ADD", [a.index, b.index], [y.index], fused_activation_function="NONE")
        return y

    def same_quant(self, kind: str, inputs: list[Act], shape, **options) -> Act:
        x = inputs[0]
        y = Act(self.mb.tensor(self.name(kind.lower()), shape, "int8", x.scale, x.zero_point), tuple(shape),
                x.scale, x.zero_point)
        extra = []
        if kind == "RESHAPE":
            extra = [self.mb.const(self.name("shape"), list(shape))]
        self.mb.op(kind, [t.index for t in inputs] + extra, [y.index], **options)
        return y

    def build(self, x: Act, outputs: list[Act]) -> bytes:
        return self.mb.build([x.index], [o.index for o in outputs])


def mobile_graph(rng: np.random.Generator, hw: int, channels: int, expand: int, kernel: int, stride: int,
                 blocks: int, branch: bool, head: str) -> tuple[bytes, tuple[int, ...]]:
    g = GraphMaker(rng)
    x = g.input((1, hw, hw, channels))
    cur = g.conv(x, channels, kernel=3, stride=1)
    for b in range(blocks):
        s = stride if b == 0 else 1
        hidden = g.conv(cur, channels * expand)
        hidden = g.depthwise(hidden, kernel, s)
        projected = g.conv(hidden, channels, act="NONE")
        cur = g.add(cur, projected) if s == 1 else projected
    outputs = []
    if branch:
        # Two branches with the concatenation's quantization, concatenated on channels.
        quant = (float(np.float32(cur.scale * 2)), int(rng.integers(-10, 10)))
        left = g.conv(cur, channels, act="RELU", quant=quant)
        right = g.depthwise(cur, 3, 1, act="RELU", quant=quant)
        n, h, w, c = cur.shape
        cur = g.same_quant("CONCATENATION", [left, right], (n, h, w, 2 * c), axis=3)
    n, h, w, c = cur.shape
    if head == "avgpool":
        pooled = g.same_quant("AVERAGE_POOL_2D", [cur], (n, 1, 1, c), padding="VALID", filter_height=h,
                              filter_width=w, stride_h=1, stride_w=1)
    else:
        pooled = g.same_quant("MAX_POOL_2D", [cur], (n, -(-h // 2), -(-w // 2), c), padding="SAME",
                              filter_height=2, filter_width=2, stride_h=2, stride_w=2)
        outputs.append(pooled)
        pooled = g.same_quant("AVERAGE_POOL_2D", [pooled], (n, 1, 1, c), padding="VALID",
                              filter_height=pooled.shape[1], filter_width=pooled.shape[2], stride_h=1, stride_w=1)
    flat = g.same_quant("RESHAPE", [pooled], (n, c))
    classes = int(rng.integers(2, 6))
    w_t, b_t, w_scale = g._weights((classes, c), 0, flat, classes)
    logits = g.output((n, classes), c, flat.scale, w_scale)
    g.mb.op("FULLY_CONNECTED", [flat.index, w_t, b_t], [logits.index], fused_activation_function="NONE")
    probs = Act(g.mb.tensor("probs", (n, classes), "int8", 1.0 / 256.0, -128), (n, classes), 1.0 / 256.0, -128)
    g.mb.op("SOFTMAX", [logits.index], [probs.index], beta=1.0)
    outputs.append(probs)
    return g.build(x, outputs), x.shape


@settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(4, 12), st.integers(1, 8), st.sampled_from([1, 2, 3]), st.sampled_from([3, 5]),
       st.sampled_from([1, 2]), st.integers(1, 2), st.booleans(), st.sampled_from(["avgpool", "maxpool"]), seeds)
def test_mobile_graphs_match_oracle_under_the_memory_plan(hw, channels, expand, kernel, stride, blocks, branch,
                                                           head, seed):
    rng = np.random.default_rng(seed)
    model, in_shape = mobile_graph(rng, hw, channels, expand, kernel, stride, blocks, branch, head)
    check_model(model, lambda r: [random_int8(r, in_shape)], rng, samples=2)


def test_generated_graphs_exercise_in_place_steps():
    """The graphs above are planned with in-place depthwise and ADD (else the in-place
    kernels would go untested here)."""
    rng = np.random.default_rng(7)
    model, _ = mobile_graph(rng, 8, 4, 2, 3, 1, 2, True, "avgpool")
    program = plan(load_tflite(model), scratch_requests)
    in_place = {s.op.kind for s in program.steps if isinstance(s.placement, InPlace)}
    assert "DEPTHWISE_CONV_2D" in in_place and "ADD" in in_place


# -- a corrupted memory plan -----------------------------------------------------------

def moved_onto_live_buffer(program: Program) -> Program:
    """The plan with one intermediate tensor moved onto the bytes of another tensor
    that is still live when it is written (the first graph input, read again later)."""
    graph = program.graph
    x = graph.inputs[0]
    readers = [i for i, s in enumerate(program.steps) if x in s.op.inputs]
    last_read = max(readers)
    victim = next(s.op.output for s in program.steps[:last_read] if s.op.output not in graph.outputs)
    offsets = dict(program.offsets)
    offsets[victim] = program.offsets[x]
    return dataclasses.replace(program, offsets=offsets)


def residual_model(rng: np.random.Generator) -> tuple[bytes, tuple[int, ...]]:
    """input -> conv -> conv -> ADD(input): the input is live until the last step."""
    g = GraphMaker(rng)
    x = g.input((1, 6, 6, 4))
    h = g.conv(x, 4)
    h = g.conv(h, 4, act="NONE")
    y = g.add(x, h)
    return g.build(x, [y]), x.shape


def test_a_buffer_moved_onto_a_live_one_changes_the_output():
    rng = np.random.default_rng(11)
    model, in_shape = residual_model(rng)
    graph = load_tflite(model)
    program = plan(graph, scratch_requests)
    corrupted = moved_onto_live_buffer(program)
    good, bad = compile_program(program), compile_program(corrupted)
    differs = 0
    for _ in range(5):
        inputs = [random_int8(rng, in_shape)]
        reference = run(graph, inputs)[0]
        assert same_bytes(good(inputs)[0], reference)
        differs += not same_bytes(bad(inputs)[0], reference)
    assert differs == 5


def test_program_cache_returns_the_compiled_program():
    rng = np.random.default_rng(5)
    model, _ = residual_model(rng)
    program = plan(load_tflite(model), scratch_requests)
    first = compile_program(program)
    assert compile_program(program) is first
    # An equal program built again reuses the machine code (same IR text).
    again = compile_program(plan(load_tflite(model), scratch_requests))
    assert again.from_cache and again.ir_text == first.ir_text


@pytest.mark.parametrize("opt_level", [0, 3])
def test_other_opt_levels_give_the_same_bytes(opt_level):
    rng = np.random.default_rng(9)
    model, in_shape = mobile_graph(rng, 6, 3, 2, 3, 2, 1, True, "maxpool")
    graph = load_tflite(model)
    compiled = compile_program(plan(graph, scratch_requests), opt_level=opt_level)
    inputs = [random_int8(rng, in_shape)]
    for got, want in zip(compiled(inputs), run(graph, inputs)):
        assert same_bytes(got, want)
