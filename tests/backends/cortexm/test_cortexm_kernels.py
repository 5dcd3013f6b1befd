"""The Cortex-M kernels (runtime_c/ + backends/cortexm/kernels.py) byte-exact against
tflite-micro, layer by layer, through the whole flow: ModelBuilder -> load_tflite ->
passes.plan (with the backend's scratch requests) -> generated C -> sanitized host build
(c-host) and the emulated Cortex-M4 (DSP path) / Cortex-M0 (portable path).

Builds dominate the cost, so each hypothesis example merges several independent one-layer
models into one graph: one build checks every layer in it, and every layer is a case.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcuc.backends.cortexm import get_target, run_chost, run_cortexm
from mcuc.backends.cortexm.kernels import emit_step, scratch_requests, unsupported_kinds
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.program import FRESH, InPlace
from mcuc.oracle import TFLiteOracle
from mcuc.passes import plan

from tests.support.tflite_builder import single_op_builder

_NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi)")


@dataclass
class Layer:
    """One single-op model: its graph, its inputs and the oracle's outputs."""

    graph: Graph
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    spec: tuple


def make_layer(spec: tuple, seed: int) -> Layer:
    kind, shapes, kwargs = spec
    rng = np.random.default_rng(seed)
    single = single_op_builder(kind, shapes, rng, **kwargs)
    model = single.build()
    inputs = single.random_inputs(rng)
    return Layer(load_tflite(model), inputs, TFLiteOracle(model)(inputs), spec)


def _prefixed(graph: Graph, prefix: str) -> Graph:
    """`graph` with every tensor renamed `prefix` + name (graphs need unique names)."""
    renamed = {t: t.with_(name=prefix + t.name) for t in graph.tensors}

    def new(t):
        return None if t is None else renamed[t]

    ops = tuple(op.with_(inputs=tuple(map(new, op.inputs)), outputs=tuple(map(new, op.outputs)))
                for op in graph.ops)
    return Graph(ops, tuple(map(new, graph.inputs)), tuple(map(new, graph.outputs)), graph.name)


def merged(layers: list[Layer]) -> Graph:
    """The layers side by side in one graph: one build checks them all."""
    graphs = [_prefixed(layer.graph, f"l{i}_") for i, layer in enumerate(layers)]
    return Graph(ops=tuple(op for g in graphs for op in g.ops),
                 inputs=tuple(t for g in graphs for t in g.inputs),
                 outputs=tuple(t for g in graphs for t in g.outputs), name="layers")


def check(layers: list[Layer], backend: str) -> None:
    graph = merged(layers)
    target = get_target("cortex-m0" if backend == "host" else backend)
    program = plan(graph, scratch=lambda op, in_place: scratch_requests(op, in_place, target))
    inputs = [x for layer in layers for x in layer.inputs]
    if backend == "host":
        outputs = run_chost(program, inputs)
    else:
        outputs = run_cortexm(program, inputs, target).outputs
    position = 0
    for layer in layers:
        for want in layer.expected:
            got = np.asarray(outputs[position]).reshape(want.shape)
            position += 1
            assert got.dtype == want.dtype and np.array_equal(got, want), (
                f"{backend}: layer {layer.spec} differs at {np.argwhere(got != want)[:5].tolist()}")


# -- layer strategies ------------------------------------------------------------------------

def _act():
    return st.sampled_from(["NONE", "RELU", "RELU6"])


@st.composite
def conv_layer(draw):
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    cin = draw(st.sampled_from([1, 2, 3, 4, 8, 12, 16]))
    cout = draw(st.integers(1, 12))
    k = draw(st.sampled_from([(1, 1), (1, 1), (3, 3), (2, 3), (5, 5)]))
    stride = draw(st.sampled_from([1, 1, 2]))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    if padding == "VALID":
        h, w = max(h, k[0]), max(w, k[1])
    return ("CONV_2D", [(1, h, w, cin)],
            dict(out_channels=cout, kernel=k, padding=padding, stride_h=stride, stride_w=stride,
                 per_channel=draw(st.booleans()), bias=draw(st.booleans()),
                 fused_activation_function=draw(_act())))


@st.composite
def grouped_conv_layer(draw):
    groups = draw(st.sampled_from([2, 4]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 2))
    return ("CONV_2D", [(1, draw(st.integers(3, 6)), draw(st.integers(3, 6)), cin)],
            dict(out_channels=cout, kernel=(3, 3), groups=groups, padding="SAME"))


@st.composite
def depthwise_layer(draw):
    k = draw(st.sampled_from([3, 3, 5, 7, 2]))
    stride = draw(st.sampled_from([1, 2]))
    mult = draw(st.sampled_from([1, 1, 1, 2]))
    ch = draw(st.sampled_from([1, 3, 4, 8, 12]))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    dilation = draw(st.sampled_from([1, 1, 1, 2])) if stride == 1 else 1
    lo = (k - 1) * dilation + 1 if padding == "VALID" else 1
    h, w = draw(st.integers(lo, lo + 7)), draw(st.integers(lo, lo + 7))
    return ("DEPTHWISE_CONV_2D", [(1, h, w, ch)],
            dict(kernel=(k, k), padding=padding, stride_h=stride, stride_w=stride, depth_multiplier=mult,
                 dilation_h_factor=dilation, dilation_w_factor=dilation, per_channel=draw(st.booleans()),
                 # tflite-micro's depthwise kernel crashes on a model without bias
                 bias=True, fused_activation_function=draw(_act())))


@st.composite
def fully_connected_layer(draw):
    rows = draw(st.sampled_from([1, 1, 2]))
    depth = draw(st.integers(1, 40))
    return ("FULLY_CONNECTED", [(rows, depth)],
            dict(units=draw(st.integers(1, 11)), per_channel=draw(st.booleans()), bias=draw(st.booleans()),
                 fused_activation_function=draw(_act())))


@st.composite
def pool_layer(draw):
    kind = draw(st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]))
    f, s = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    return (kind, [(1, draw(st.integers(3, 7)), draw(st.integers(3, 7)), draw(st.integers(1, 5)))],
            dict(filter_height=f, filter_width=f, stride_h=s, stride_w=s, padding=padding,
                 fused_activation_function=draw(_act())))


@st.composite
def binary_layer(draw):
    kind = draw(st.sampled_from(["ADD", "ADD", "SUB", "MUL"]))
    shape = (1, draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 6)))
    other = draw(st.sampled_from([shape, (1, 1, 1, shape[3]), (1, shape[1], 1, 1)]))
    return (kind, [shape, other], dict(fused_activation_function=draw(_act()),
                                       constant_inputs=draw(st.sampled_from([(), (), (1,)]))))


@st.composite
def other_layer(draw):
    shape = (1, draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 6)))
    choice = draw(st.sampled_from(["MEAN", "SOFTMAX", "LOGISTIC", "HARD_SWISH", "RELU", "RELU6",
                                   "QUANTIZE", "TRANSPOSE", "PAD", "RESIZE_NEAREST_NEIGHBOR",
                                   "CONCATENATION", "RESHAPE", "DEQUANTIZE"]))
    if choice == "MEAN":
        return ("MEAN", [shape], dict(axes=draw(st.sampled_from([(1, 2), (3,), (1,), (2, 3)])),
                                      keep_dims=draw(st.booleans())))
    if choice == "TRANSPOSE":
        return ("TRANSPOSE", [shape], dict(perm=draw(st.permutations(range(4)))))
    if choice == "PAD":
        pads = [[0, 0], [draw(st.integers(0, 2)), draw(st.integers(0, 2))],
                [draw(st.integers(0, 2)), draw(st.integers(0, 2))], [0, draw(st.integers(0, 1))]]
        return ("PAD", [shape], dict(paddings=pads))
    if choice == "RESIZE_NEAREST_NEIGHBOR":
        return (choice, [shape], dict(size=(draw(st.integers(1, 8)), draw(st.integers(1, 8))),
                                      align_corners=False, half_pixel_centers=draw(st.booleans())))
    if choice == "CONCATENATION":
        axis = draw(st.integers(1, 3))
        other = tuple(draw(st.integers(1, 3)) if i == axis else d for i, d in enumerate(shape))
        return (choice, [shape, other], dict(axis=axis))
    if choice == "RESHAPE":
        return (choice, [shape], dict(new_shape=(1, -1)))
    return (choice, [shape], {})


ANY_LAYER = st.one_of(conv_layer(), conv_layer(), depthwise_layer(), depthwise_layer(), fully_connected_layer(),
                      pool_layer(), binary_layer(), other_layer(), other_layer(), grouped_conv_layer())


def layers_of(specs: list[tuple], seed: int) -> list[Layer]:
    return [make_layer(spec, seed + i) for i, spec in enumerate(specs)]


# 6 layers per example: (max_examples 9 + 9) x 6 layers = 108 layer cases on each backend.
_SETTINGS = settings(deadline=None, max_examples=9, suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(specs=st.lists(ANY_LAYER, min_size=6, max_size=6), seed=st.integers(0, 2**31))
def test_layers_c_host(specs, seed):
    check(layers_of(specs, seed), "host")


@_NEEDS_ARM
@_SETTINGS
@given(specs=st.lists(ANY_LAYER, min_size=6, max_size=6), seed=st.integers(0, 2**31))
def test_layers_cortex_m4(specs, seed):
    check(layers_of(specs, seed), "cortex-m4")


@_NEEDS_ARM
@settings(deadline=None, max_examples=3, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(st.one_of(conv_layer(), depthwise_layer(), fully_connected_layer()), min_size=6, max_size=6),
       seed=st.integers(0, 2**31))
def test_layers_cortex_m0_portable_path(specs, seed):
    check(layers_of(specs, seed), "cortex-m0")


# -- specialization and in-place kernels --------------------------------------------------

FIXED_LAYERS = [
    # The kernels' special cases: pointwise GEMM with odd pixel/channel counts, the first
    # conv on 3 channels, depthwise 3x3/5x5/7x7 at stride 1 and 2, FC with a depth tail.
    ("CONV_2D", [(1, 5, 3, 8)], dict(out_channels=7, kernel=(1, 1))),
    ("CONV_2D", [(1, 9, 9, 3)], dict(out_channels=8, kernel=(3, 3), padding="SAME", stride_h=2, stride_w=2)),
    ("DEPTHWISE_CONV_2D", [(1, 9, 8, 8)], dict(kernel=(3, 3), padding="SAME")),
    ("DEPTHWISE_CONV_2D", [(1, 9, 8, 8)], dict(kernel=(3, 3), padding="SAME", stride_h=2, stride_w=2)),
    ("DEPTHWISE_CONV_2D", [(1, 9, 9, 4)], dict(kernel=(5, 5), padding="SAME")),
    ("DEPTHWISE_CONV_2D", [(1, 10, 9, 4)], dict(kernel=(7, 7), padding="SAME", stride_h=2, stride_w=2)),
    ("FULLY_CONNECTED", [(1, 37)], dict(units=9)),
    # deeper than the DSP kernel's 256-input chunk: sums carried between chunks, a tail
    ("FULLY_CONNECTED", [(2, 603)], dict(units=6)),
    # constant operands (read from flash), broadcast and not
    ("ADD", [(1, 3, 4, 5), (1, 1, 1, 5)], dict(constant_inputs=(1,))),
    ("ADD", [(1, 3, 4, 5), (1, 3, 4, 5)], dict(constant_inputs=(1,))),
    ("MUL", [(1, 3, 4, 5), (1, 3, 1, 1)], dict(constant_inputs=(1,))),
    ("SUB", [(1, 3, 4, 5), (1, 1, 4, 1)], dict(constant_inputs=(1,))),
    ("SUB", [(1, 2, 3, 4), (1, 2, 3, 4)], dict(fused_activation_function="RELU6")),
]


@pytest.mark.parametrize("backend", ["host", pytest.param("cortex-m4", marks=_NEEDS_ARM)])
def test_special_cases(backend):
    check(layers_of(FIXED_LAYERS, 7), backend)


def _depthwise_chain(seed: int, stride: int = 1) -> tuple[bytes, list[np.ndarray]]:
    """conv 1x1 -> depthwise 3x3: the depthwise input dies there, so the planner writes
    its output over its input (the in-place kernel)."""
    from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias, random_quant

    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    q0, q1, q2 = (random_quant(rng) for _ in range(3))
    x = mb.tensor("x", (1, 7, 6, 4), "int8", *q0)
    w1, s1 = int8_weights(rng, (8, 1, 1, 4))
    wt1 = mb.tensor("w1", (8, 1, 1, 4), "int8", s1, np.zeros(8, np.int64), data=w1)
    b1 = mb.tensor("b1", (8,), "int32", (q0[0] * s1).astype(np.float32), np.zeros(8, np.int64), data=int32_bias(rng, 8))
    h = mb.tensor("h", (1, 7, 6, 8), "int8", *q1)
    mb.op("CONV_2D", [x, wt1, b1], [h], padding="VALID")
    w2, s2 = int8_weights(rng, (1, 3, 3, 8), axis=3)
    wt2 = mb.tensor("w2", (1, 3, 3, 8), "int8", s2, np.zeros(8, np.int64), axis=3, data=w2)
    b2 = mb.tensor("b2", (8,), "int32", (q1[0] * s2).astype(np.float32), np.zeros(8, np.int64), data=int32_bias(rng, 8))
    y = mb.tensor("y", (1, -(-7 // stride), -(-6 // stride), 8), "int8", *q2)
    mb.op("DEPTHWISE_CONV_2D", [h, wt2, b2], [y], padding="SAME", depth_multiplier=1,
          stride_h=stride, stride_w=stride)
    return mb.build([x], [y]), [rng.integers(-128, 128, (1, 7, 6, 4)).astype(np.int8)]


@pytest.mark.parametrize("backend", ["host", pytest.param("cortex-m4", marks=_NEEDS_ARM)])
@pytest.mark.parametrize("seed, stride", [(3, 1), (4, 1), (5, 2), (6, 2)])
def test_in_place_depthwise(backend, seed, stride):
    """The in-place kernel (padded channel plane; on the M4 the 4-output SIMD 3x3 path,
    with the fast or the general output stage as the layer's constants allow)."""
    model, inputs = _depthwise_chain(seed, stride)
    graph = load_tflite(model)
    target = get_target("cortex-m4")
    program = plan(graph, scratch=lambda op, in_place: scratch_requests(op, in_place, target))
    depthwise = [s for s in program.steps if s.op.kind == "DEPTHWISE_CONV_2D"][0]
    assert isinstance(depthwise.placement, InPlace), "the planner did not place the depthwise conv in place; this test needs it"
    got = run_chost(program, inputs) if backend == "host" else run_cortexm(program, inputs, target).outputs
    want = TFLiteOracle(model)(inputs)
    assert np.array_equal(np.asarray(got[0]).reshape(want[0].shape), want[0])


def test_op_names_stay_inside_comments(tmp_path):
    """An op's name comes from the model file: in the generated C it is comment text that
    can neither close its comment nor open a nested one, so the project compiles with
    -Wall -Werror and the name's C never runs."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    from mcuc.backends.cortexm.project import write_project

    layer = make_layer(("CONV_2D", [(1, 6, 6, 4)], dict(out_channels=4, kernel=(3, 3))), 2)
    hostile = "x */ int injected = 1; /* nested /* \n#error reached"
    graph = layer.graph.with_(ops=tuple(op.with_(name=hostile) for op in layer.graph.ops))
    target = get_target("cortex-m0")
    program = plan(graph, scratch=lambda op, in_place: scratch_requests(op, in_place, target))
    out = write_project(program, tmp_path / "project", target)
    source = (out / "model.c").read_text()
    assert "*/ int injected" not in source and "\n#error" not in source
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", str(out / "model.c")],
                   check=True, cwd=out)


def test_layer_constants_are_specialized_into_the_code():
    """Shapes, strides and channel counts appear as literals in the step's C, and the
    depthwise weights are stored in the SIMD kernel's lane order (c0, c2, c1, c3)."""
    layer = make_layer(("DEPTHWISE_CONV_2D", [(1, 9, 8, 8)], dict(kernel=(3, 3), padding="SAME")), 1)
    target = get_target("cortex-m4")
    program = plan(layer.graph, scratch=lambda op, in_place: scratch_requests(op, in_place, target))
    # The out-of-place kernel is the one under test here, whatever the planner chose.
    code = emit_step(0, dataclasses.replace(program.steps[0], placement=FRESH, scratch=()), program, target)
    assert "static const mcuc_dims_t in_dims = { .n = 1, .h = 9, .w = 8, .c = 8 };" in code.decls
    assert "static const mcuc_dims_t out_dims = { .n = 1, .h = 9, .w = 8, .c = 8 };" in code.decls
    assert ".kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1, .pad_top = 1, .pad_left = 1" \
        in code.decls
    assert "mcuc_depthwise_c4(in, out, &in_dims, &out_dims, &window," in code.decls
    w = layer.graph.ops[0].inputs[1].data.reshape(9, 8)
    first_lanes = [int(w[0, 0]), int(w[0, 2]), int(w[0, 1]), int(w[0, 3])]
    assert "{\n    " + ", ".join(map(str, first_lanes)) + "," in code.decls


def test_a_wrong_kernel_is_caught():
    """The comparison can fail: a layer whose expected output is perturbed by one in one
    element is reported."""
    layer = make_layer(("CONV_2D", [(1, 4, 4, 8)], dict(out_channels=4, kernel=(1, 1))), 5)
    bad = layer.expected[0].copy()
    bad.flat[3] = np.int8(int(bad.flat[3]) ^ 1)
    layer.expected = [bad]
    with pytest.raises(AssertionError):
        check([layer], "host")


def test_every_ir_op_kind_has_a_kernel():
    assert unsupported_kinds() == []


def test_unsupported_configuration_is_a_clear_error():
    layer = make_layer(("CONV_2D", [(1, 4, 4, 4)], dict(out_channels=4, kernel=(1, 1))), 2)
    op = layer.graph.ops[0]
    x = op.inputs[0]
    batched = x.with_(shape=(2, 4, 4, 4))
    out = op.output.with_(shape=(2, 4, 4, 4))
    graph = Graph(ops=(op.with_(inputs=(batched,) + op.inputs[1:], outputs=(out,)),), inputs=(batched,),
                  outputs=(out,))
    target = get_target("cortex-m4")
    program = plan(graph, scratch=lambda o, ip: scratch_requests(o, ip, target))
    with pytest.raises(MCUCError, match="CONV_2D.*batch 2"):
        emit_step(0, program.steps[0], program, target)


# -- patch-based stages ------------------------------------------------------------------------

def _weights_and_bias(mb, rng, name, shape, in_scale, axis) -> tuple[int, int]:
    """Per-channel int8 weights along `axis` and their int32 bias (input x weight scale)."""
    from tests.support.tflite_builder import int8_weights, int32_bias

    w, s = int8_weights(rng, shape, axis=axis)
    n = shape[axis]
    return (mb.tensor(name, shape, "int8", s, np.zeros(n, np.int64), axis=axis, data=w),
            mb.tensor(name + "_b", (n,), "int32", (in_scale * s).astype(np.float32), np.zeros(n, np.int64),
                      data=int32_bias(rng, n)))


def _chain_model(seed: int) -> tuple[bytes, list[np.ndarray]]:
    """conv 3x3 SAME -> depthwise 3x3 stride 2 -> conv 1x1 -> max pool 2x2: every window
    kind a stage holds, with padding that only the border patches see."""
    from tests.support.tflite_builder import ModelBuilder, random_quant

    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    q = [random_quant(rng) for _ in range(4)]

    def conv_weights(name, shape, in_scale, axis):
        return _weights_and_bias(mb, rng, name, shape, in_scale, axis)

    x = mb.tensor("x", (1, 11, 10, 3), "int8", *q[0])
    h1 = mb.tensor("h1", (1, 11, 10, 8), "int8", *q[1])
    mb.op("CONV_2D", [x, *conv_weights("w1", (8, 3, 3, 3), q[0][0], 0)], [h1], padding="SAME")
    h2 = mb.tensor("h2", (1, 6, 5, 8), "int8", *q[2])
    mb.op("DEPTHWISE_CONV_2D", [h1, *conv_weights("w2", (1, 3, 3, 8), q[1][0], 3)], [h2], padding="SAME",
          stride_h=2, stride_w=2, depth_multiplier=1)
    h3 = mb.tensor("h3", (1, 6, 5, 12), "int8", *q[3])
    mb.op("CONV_2D", [h2, *conv_weights("w3", (12, 1, 1, 8), q[2][0], 0)], [h3], padding="VALID")
    y = mb.tensor("y", (1, 3, 2, 12), "int8", *q[3])
    mb.op("MAX_POOL_2D", [h3], [y], padding="VALID", filter_height=2, filter_width=2, stride_h=2, stride_w=2)
    return mb.build([x], [y]), [rng.integers(-128, 128, (1, 11, 10, 3)).astype(np.int8)]


@pytest.mark.parametrize("backend", ["host", pytest.param("cortex-m4", marks=_NEEDS_ARM)])
@pytest.mark.parametrize("grid", ["2x2@2", "3x2@1", "1x2@3", "6x1@2+cache", "3x2@3+cache"])
def test_patch_stage(backend, grid):
    """A PATCH_STAGE (regions, border padding, gathers of partial rows, scatters into the
    stage output; with +cache line bands, their shifts and scatters into them) equals
    tflite-micro byte for byte."""
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule

    model, inputs = _chain_model(11)
    target = "cortex-m4"
    program = schedule(load_tflite(model), CompileOptions(target, patch=grid), cortexm_scratch(target))
    assert any(s.op.kind == "PATCH_STAGE" for s in program.steps)
    got = run_chost(program, inputs) if backend == "host" else run_cortexm(program, inputs, get_target(target)).outputs
    want = TFLiteOracle(model)(inputs)
    assert np.array_equal(np.asarray(got[0]).reshape(want[0].shape), want[0])


@settings(deadline=None, max_examples=6, suppress_health_check=list(HealthCheck))
@given(rows=st.integers(1, 3), cols=st.integers(1, 3), end=st.integers(1, 3), seed=st.integers(0, 1000),
       cache=st.booleans())
def test_patch_stage_random_grids_c_host(rows, cols, end, seed, cache):
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule

    model, inputs = _chain_model(seed)
    # op `end`'s output: h2 6x5, h3 6x5, y 3x2 (grids beyond the output are not legal)
    out_h, out_w = [(11, 10), (6, 5), (6, 5), (3, 2)][end]
    grid = f"{min(rows, out_h)}x{min(cols, out_w)}@{end}" + ("+cache" if cache else "")
    program = schedule(load_tflite(model), CompileOptions("cortex-m4", patch=grid), cortexm_scratch("cortex-m4"))
    got = run_chost(program, inputs)
    want = TFLiteOracle(model)(inputs)
    assert np.array_equal(np.asarray(got[0]).reshape(want[0].shape), want[0]), grid


def _stride1_chain_model(seed: int) -> tuple[bytes, list[np.ndarray]]:
    """conv 3x3 -> depthwise 3x3 -> conv 1x1, all stride 1: a one-row patch keeps two of
    its band's three rows, so each shift moves rows over bytes it reads later."""
    from tests.support.tflite_builder import ModelBuilder, random_quant

    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    q = [random_quant(rng) for _ in range(4)]

    def weights(name, shape, in_scale, axis):
        return _weights_and_bias(mb, rng, name, shape, in_scale, axis)

    x = mb.tensor("x", (1, 12, 10, 4), "int8", *q[0])
    h1 = mb.tensor("h1", (1, 12, 10, 8), "int8", *q[1])
    mb.op("CONV_2D", [x, *weights("w1", (8, 3, 3, 4), q[0][0], 0)], [h1], padding="SAME")
    h2 = mb.tensor("h2", (1, 12, 10, 8), "int8", *q[2])
    mb.op("DEPTHWISE_CONV_2D", [h1, *weights("w2", (1, 3, 3, 8), q[1][0], 3)], [h2], padding="SAME",
          depth_multiplier=1)
    y = mb.tensor("y", (1, 12, 10, 6), "int8", *q[3])
    mb.op("CONV_2D", [h2, *weights("w3", (6, 1, 1, 8), q[2][0], 0)], [y], padding="VALID")
    return mb.build([x], [y]), [rng.integers(-128, 128, (1, 12, 10, 4)).astype(np.int8)]


@pytest.mark.parametrize("backend", ["host", pytest.param("cortex-m4", marks=_NEEDS_ARM)])
def test_patch_band_shifts_that_overlap(backend):
    """Line-band shifts whose source and destination overlap (two kept rows of 80 bytes
    moved up by one row: mcuc_move_down_words' eight-word passes and its tail) keep the
    stage byte-exact with tflite-micro."""
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule

    model, inputs = _stride1_chain_model(4)
    target = "cortex-m4"
    program = schedule(load_tflite(model), CompileOptions(target, patch="12x1@2+cache"), cortexm_scratch(target))
    source = "".join(emit_step(i, s, program, get_target(target)).decls for i, s in enumerate(program.steps))
    moves = re.findall(r"mcuc_move_down_words\(\(uint32_t \*\)\(void \*\)\(arena \+ (\d+)\), "
                       r"\(const uint32_t \*\)\(const void \*\)\(arena \+ (\d+)\), (\d+)\);", source)
    assert any(int(src) - int(dst) < 4 * int(words) for dst, src, words in moves), moves
    got = run_chost(program, inputs) if backend == "host" else run_cortexm(program, inputs, get_target(target)).outputs
    want = TFLiteOracle(model)(inputs)
    assert np.array_equal(np.asarray(got[0]).reshape(want[0].shape), want[0])


@_NEEDS_ARM
def test_plan_cycles_measures_every_schedule_of_the_front(tmp_path, capsys):
    """`mcuc plan --cycles`: each row of the front run on the emulated core, the first
    (layer by layer) with the same instructions and cycles as running that schedule
    directly, the others relative to it."""
    import json

    from mcuc.cli import main
    from mcuc.pipeline import CompileOptions, cortexm_scratch, cortexm_target, schedule
    from mcuc.samples import random_inputs

    model, _ = _chain_model(11)
    path = tmp_path / "chain.tflite"
    path.write_bytes(model)
    assert main(["plan", str(path), "--cycles", "--json", "--target", "cortex-m4"]) == 0
    rows = json.loads(capsys.readouterr().out)["front"]
    assert len(rows) >= 2 and all(r["instructions"] > 0 and r["cycles"] > 0 for r in rows)
    assert rows[0]["instruction_factor"] == 1.0 and rows[0]["cycle_factor"] == 1.0
    program = schedule(load_tflite(model), CompileOptions("cortex-m4"), cortexm_scratch("cortex-m4"))
    direct = run_cortexm(program, random_inputs(program.graph, np.random.default_rng(0)), cortexm_target("cortex-m4"))
    assert (rows[0]["instructions"], rows[0]["cycles"]) == (direct.instructions, direct.cycles)
    for r in rows[1:]:
        assert r["instruction_factor"] == round(r["instructions"] / rows[0]["instructions"], 4)
    assert main(["plan", str(path), "--cycles", "--svg", str(tmp_path / "p.svg")]) == 0
    assert "est. cycles" in capsys.readouterr().out
