"""The in-place depthwise kernel (runtime_c/mcuc_depthwise.h) byte-exact against
tflite-micro where its code paths split: the 3x3 assembly loop of four outputs per pass
at stride 1 and 2 with every remainder of the row width, the general stage where the
fast one does not apply, and the SIMD path for kernels 4 to 8 taps wide (5x5, 7x7, 5x3).
Each case is a conv 1x1 -> depthwise chain, so the planner writes the depthwise output
over its input."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.backends.cortexm import get_target, run_chost, run_cortexm
from mcuc.backends.cortexm.kernels import scratch_requests
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.program import InPlace
from mcuc.oracle import TFLiteOracle
from mcuc.passes import plan

from tests.backends.cortexm.test_cortexm_kernels import _NEEDS_ARM
from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias, random_quant, same_or_valid_size

_BACKENDS = ["host", pytest.param("cortex-m4", marks=_NEEDS_ARM)]


def _chain(seed: int, shape: tuple[int, int, int], kernel: tuple[int, int], stride: int, padding: str,
           activation: str = "NONE") -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    h, w, ch = shape
    q0, q1, q2 = (random_quant(rng) for _ in range(3))
    x = mb.tensor("x", (1, h, w, 4), "int8", *q0)
    w1, s1 = int8_weights(rng, (ch, 1, 1, 4))
    wt1 = mb.tensor("w1", (ch, 1, 1, 4), "int8", s1, np.zeros(ch, np.int64), data=w1)
    b1 = mb.tensor("b1", (ch,), "int32", (q0[0] * s1).astype(np.float32), np.zeros(ch, np.int64),
                   data=int32_bias(rng, ch))
    hid = mb.tensor("h", (1, h, w, ch), "int8", *q1)
    mb.op("CONV_2D", [x, wt1, b1], [hid], padding="VALID")
    kh, kw = kernel
    w2, s2 = int8_weights(rng, (1, kh, kw, ch), axis=3)
    wt2 = mb.tensor("w2", (1, kh, kw, ch), "int8", s2, np.zeros(ch, np.int64), axis=3, data=w2)
    b2 = mb.tensor("b2", (ch,), "int32", (q1[0] * s2).astype(np.float32), np.zeros(ch, np.int64),
                   data=int32_bias(rng, ch))
    out = (same_or_valid_size(h, kh, stride, 1, padding), same_or_valid_size(w, kw, stride, 1, padding))
    y = mb.tensor("y", (1, *out, ch), "int8", *q2)
    mb.op("DEPTHWISE_CONV_2D", [hid, wt2, b2], [y], padding=padding, depth_multiplier=1,
          stride_h=stride, stride_w=stride, fused_activation_function=activation)
    return mb.build([x], [y]), [rng.integers(-128, 128, (1, h, w, 4)).astype(np.int8)]


CASES = [
    # 3x3: widths 1-9 (four-output passes and every remainder), stride 1 and 2
    ((7, 9, 8), (3, 3), 1, "SAME", "NONE"), ((5, 6, 4), (3, 3), 1, "SAME", "RELU6"),
    ((6, 5, 8), (3, 3), 1, "VALID", "NONE"), ((4, 3, 4), (3, 3), 1, "SAME", "NONE"),
    ((9, 9, 8), (3, 3), 2, "SAME", "NONE"), ((8, 14, 4), (3, 3), 2, "SAME", "RELU"),
    ((7, 7, 12), (3, 3), 2, "VALID", "NONE"), ((5, 2, 4), (3, 3), 1, "SAME", "NONE"),
    # wide kernels: the two-word SIMD rows
    ((9, 10, 8), (5, 5), 1, "SAME", "NONE"), ((11, 9, 4), (7, 7), 2, "SAME", "RELU6"),
    ((8, 8, 4), (7, 7), 1, "SAME", "NONE"), ((7, 9, 4), (5, 5), 2, "VALID", "NONE"),
    ((6, 7, 4), (3, 5), 1, "SAME", "NONE"), ((6, 9, 4), (2, 4), 1, "SAME", "NONE"),
]


@pytest.mark.parametrize("backend", _BACKENDS)
@pytest.mark.parametrize("seed, case", list(enumerate(CASES)))
def test_in_place_depthwise_paths(backend, seed, case):
    model, inputs = _chain(seed, *case)
    graph = load_tflite(model)
    target = get_target("cortex-m4")
    program = plan(graph, scratch=lambda op, in_place: scratch_requests(op, in_place, target))
    depthwise = [s for s in program.steps if s.op.kind == "DEPTHWISE_CONV_2D"][0]
    assert isinstance(depthwise.placement, InPlace), "the depthwise conv is not in place; this test needs it"
    got = run_chost(program, inputs) if backend == "host" else run_cortexm(program, inputs, target).outputs
    want = TFLiteOracle(model)(inputs)
    assert np.array_equal(np.asarray(got[0]).reshape(want[0].shape), want[0]), case


def _residual(seed: int, shape: tuple[int, int, int], widen: int) -> tuple[bytes, list[np.ndarray]]:
    """x -> depthwise 3x3 -> ADD(depthwise, x) -> conv 1x1 to `widen` x the channels: the
    residual keeps x alive, so the depthwise conv runs out of place; a wide last conv
    leaves the arena room for its channel plane during the depthwise step, widen 1 none
    (x and the depthwise output fill the arena there)."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    h, w, ch = shape
    q0, q1, q2, q3 = (random_quant(rng) for _ in range(4))
    x = mb.tensor("x", (1, h, w, ch), "int8", *q0)
    wd, sd = int8_weights(rng, (1, 3, 3, ch), axis=3)
    wtd = mb.tensor("wd", (1, 3, 3, ch), "int8", sd, np.zeros(ch, np.int64), axis=3, data=wd)
    bd = mb.tensor("bd", (ch,), "int32", (q0[0] * sd).astype(np.float32), np.zeros(ch, np.int64),
                   data=int32_bias(rng, ch))
    out = (h, w)  # stride 1, SAME: the ADD's operands agree
    y = mb.tensor("y", (1, *out, ch), "int8", *q1)
    mb.op("DEPTHWISE_CONV_2D", [x, wtd, bd], [y], padding="SAME", depth_multiplier=1, stride_h=1, stride_w=1)
    s = mb.tensor("s", (1, *out, ch), "int8", *q2)
    mb.op("ADD", [y, x], [s])
    wc, sc = int8_weights(rng, (widen * ch, 1, 1, ch))
    wtc = mb.tensor("wc", (widen * ch, 1, 1, ch), "int8", sc, np.zeros(widen * ch, np.int64), data=wc)
    bc = mb.tensor("bc", (widen * ch,), "int32", (q2[0] * sc).astype(np.float32), np.zeros(widen * ch, np.int64),
                   data=int32_bias(rng, widen * ch))
    z = mb.tensor("z", (1, *out, widen * ch), "int8", *q3)
    mb.op("CONV_2D", [s, wtc, bc], [z], padding="VALID")
    return mb.build([x], [z]), [rng.integers(-128, 128, (1, h, w, ch)).astype(np.int8)]


@pytest.mark.parametrize("backend", _BACKENDS)
@pytest.mark.parametrize("seed, shape, widen, granted", [
    (0, (9, 10, 8), 4, True), (1, (6, 13, 4), 3, True), (2, (5, 8, 12), 4, True),
    (3, (9, 10, 8), 1, False),
])
def test_out_of_place_depthwise_takes_the_plane_where_the_arena_has_room(backend, seed, shape, widen, granted):
    model, inputs = _residual(seed, shape, widen)
    graph = load_tflite(model)
    target = get_target("cortex-m4")
    scratch = lambda op, in_place: scratch_requests(op, in_place, target)  # noqa: E731
    program = plan(graph, scratch=scratch)
    depthwise = [s for s in program.steps if s.op.kind == "DEPTHWISE_CONV_2D"][0]
    assert not isinstance(depthwise.placement, InPlace), "the residual should keep the depthwise input alive"
    assert [b.name.endswith(".plane") for b in depthwise.scratch] == ([True] if granted else [])
    # the optional plane never grows the arena
    assert program.arena_bytes == plan(graph, scratch=lambda op, in_place: [
        r for r in scratch(op, in_place) if not r.optional]).arena_bytes
    got = run_chost(program, inputs) if backend == "host" else run_cortexm(program, inputs, target).outputs
    want = TFLiteOracle(model)(inputs)
    assert np.array_equal(np.asarray(got[0]).reshape(want[0].shape), want[0]), (shape, widen)
