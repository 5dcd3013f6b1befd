"""The GEMM kernels of runtime_c/mcuc_conv.h (pointwise, im2col, fully connected) at the
shapes where their code paths split, byte-exact against tflite-micro: every remainder of
the micro-kernel's unrolled depth loop, odd pixel and channel counts, and the output
stage chosen per channel (a few channels whose accumulators may reach 2^30 take the
general stage while the others keep the fast one)."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.frontend.tflite import load_tflite
from mcuc.oracle import TFLiteOracle

from tests.backends.cortexm.test_cortexm_kernels import _NEEDS_ARM, Layer, check, layers_of
from tests.support.tflite_builder import ModelBuilder, int8_weights, random_quant

_BACKENDS = ["host", pytest.param("cortex-m4", marks=_NEEDS_ARM)]

# In steps of 4 inputs the depths below cover every count modulo the unrolled loop's
# steps per pass, below, at and above one pass.
GEMM_LAYERS = [
    ("CONV_2D", [(1, 3, 3, cin)], dict(out_channels=cout, kernel=(1, 1), fused_activation_function=act))
    for cin, cout, act in [(4, 3, "NONE"), (8, 2, "RELU"), (12, 5, "RELU6"), (16, 4, "NONE"), (20, 6, "RELU"),
                           (28, 3, "NONE"), (32, 8, "RELU6"), (36, 1, "NONE"), (64, 7, "RELU"), (76, 4, "NONE")]
] + [
    ("CONV_2D", [(1, 4, 5, cin)], dict(out_channels=cout, kernel=k, padding="SAME", stride_h=s, stride_w=s))
    for cin, cout, k, s in [(1, 4, (3, 3), 1), (3, 5, (3, 3), 2), (2, 2, (2, 3), 1), (8, 3, (3, 3), 1),
                            (16, 6, (3, 3), 2), (12, 3, (5, 5), 1)]
] + [
    ("FULLY_CONNECTED", [(rows, depth)], dict(units=units, fused_activation_function=act))
    for rows, depth, units, act in [(1, 3, 5, "NONE"), (1, 16, 4, "RELU"), (2, 61, 9, "NONE"), (1, 64, 12, "RELU6"),
                                    (1, 100, 3, "NONE"), (1, 260, 7, "NONE")]
]


@pytest.mark.parametrize("backend", _BACKENDS)
def test_gemm_shapes(backend):
    check(layers_of(GEMM_LAYERS, 11), backend)


def _big_bias_layer(kind: str, seed: int) -> Layer:
    """A layer whose channels 1 and 4 have a bias near +-2^30 (their accumulators cross
    2^30, which the fast output stage cannot take) and a multiplier small enough that
    their outputs do not saturate (about +-60, output zero point 0); the other channels
    are ordinary."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    (xs, xz), (ys, _) = random_quant(rng), random_quant(rng)
    channels = 6
    if kind == "CONV_2D":
        x_shape, w_shape, y_shape, axis = (1, 3, 4, 8), (channels, 1, 1, 8), (1, 3, 4, channels), 0
    elif kind == "DEPTHWISE_CONV_2D":
        x_shape, w_shape, y_shape, axis = (1, 5, 6, channels), (1, 3, 3, channels), (1, 5, 6, channels), 3
    else:
        x_shape, w_shape, y_shape, axis = (2, 20), (channels, 20), (2, channels), 0
    w, w_scales = int8_weights(rng, w_shape, axis=axis)
    inputs = [rng.integers(-128, 128, x_shape).astype(np.int8)]
    bias = rng.integers(-2000, 2001, channels).astype(np.int64)
    big = [1, 4]
    # the median of the big channels' dot products (1x1 and fully connected): half of
    # their accumulators reach beyond +-2^30
    middle = [0, 0]
    if kind != "DEPTHWISE_CONV_2D":
        dots = (inputs[0].reshape(-1, w_shape[-1]).astype(np.int64) - xz) @ w.reshape(channels, -1)[big].T
        middle = np.median(dots, axis=0).astype(np.int64)
    bias[big] = [(1 << 30) - 20 - middle[0], -(1 << 30) + 20 - middle[1]]
    # the big channels' real factor: about 60 output steps for 2^30 accumulator units
    w_scales[big] = np.float32(60.0 * ys / xs / 2**30)
    x = mb.tensor("x", x_shape, "int8", xs, xz)
    wt = mb.tensor("w", w_shape, "int8", w_scales, np.zeros(channels, np.int64), axis=axis, data=w)
    bt = mb.tensor("b", (channels,), "int32", (np.float64(xs) * w_scales).astype(np.float32),
                   np.zeros(channels, np.int64), data=bias.astype(np.int32))
    y = mb.tensor("y", y_shape, "int8", ys, 0)
    if kind == "CONV_2D":
        mb.op(kind, [x, wt, bt], [y], padding="VALID")
    elif kind == "DEPTHWISE_CONV_2D":
        mb.op(kind, [x, wt, bt], [y], padding="SAME", depth_multiplier=1)
    else:
        mb.op(kind, [x, wt, bt], [y])
    model = mb.build([x], [y])
    return Layer(load_tflite(model), inputs, TFLiteOracle(model)(inputs), (kind, "big bias"))


@pytest.mark.parametrize("backend", _BACKENDS)
def test_output_stage_per_channel(backend):
    layers = [_big_bias_layer(kind, seed) for seed, kind in
              enumerate(["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "CONV_2D"])]
    for layer in layers:  # the big channels' outputs are not clamped: the test sees their stage
        big = layer.expected[0].reshape(-1, 6)[:, [1, 4]]
        assert np.all(np.abs(big.astype(int)) < 100), (layer.spec, big)
    check(layers, backend)


def _decode_wide(words: np.ndarray, out: int, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start [out], weights [out, depth4], constants [out, 3]) read back from the wide
    pair-stream layout as mcuc_gemm_pairs_wide_asm walks it."""
    depth4 = -(-depth // 4) * 4
    per_pair = 4 + depth4 + 6
    pairs = words.astype(np.int64).reshape(-1, per_pair)
    as_signed = (pairs + 2**31) % 2**32 - 2**31
    start = as_signed[:, :2].reshape(-1)
    assert np.array_equal(as_signed[:, :2], as_signed[:, 2:4]), "the start values come twice"
    halves = np.stack([pairs[:, 4:4 + depth4] & 0xFFFF, pairs[:, 4:4 + depth4] >> 16], axis=-1)
    halves = (halves + 2**15) % 2**16 - 2**15  # pair, word, lane
    steps = halves.reshape(len(pairs), depth4 // 4, 2, 2, 2)  # pair, step, channel, even/odd, lane
    # lanes: even word (k, k+2), odd word (k+1, k+3)
    w = steps[..., [0, 1, 0, 1], [0, 0, 1, 1]]  # pair, step, channel, (k, k+1, k+2, k+3)
    weights = w.transpose(0, 2, 1, 3).reshape(2 * len(pairs), depth4)
    tail = as_signed[:, 4 + depth4:].reshape(len(pairs), 3, 2).transpose(0, 2, 1).reshape(-1, 3)
    return start[:out], weights[:out], tail[:out]


@pytest.mark.parametrize("out, depth", [(1, 3), (5, 8), (6, 27), (3, 64)])
def test_wide_pair_stream_layout(out, depth):
    from mcuc.backends.cortexm.constants import pair_streams

    rng = np.random.default_rng(out * 100 + depth)
    w = rng.integers(-128, 128, (out, depth)).astype(np.int8)
    start = rng.integers(-2**31, 2**31, out)
    mult, rnd, shift = (rng.integers(-2**31, 2**31, out) for _ in range(3))
    got_start, got_w, got_k = _decode_wide(pair_streams(w, start, mult, rnd, shift, wide=True), out, depth)
    assert np.array_equal(got_start, start)
    assert np.array_equal(got_w[:, :depth], w) and not got_w[:, depth:].any()
    assert np.array_equal(got_k, np.stack([mult, rnd, shift], axis=1))


@pytest.mark.parametrize("cin, optimize, wide", [(8, "speed", 1), (64, "speed", 1), (68, "speed", 0),
                                                 (8, "size", 0)])
def test_short_rows_take_the_wide_layout_at_speed(cin, optimize, wide):
    from mcuc.backends.cortexm.kernels import emit_step, scratch_requests
    from mcuc.pipeline import cortexm_target
    from mcuc.passes import plan

    layer = layers_of([("CONV_2D", [(1, 3, 3, cin)], dict(out_channels=4, kernel=(1, 1)))], 3)[0]
    target = cortexm_target("cortex-m4", optimize)
    program = plan(layer.graph, scratch=lambda op, in_place: scratch_requests(op, in_place, target))
    code = emit_step(0, program.steps[0], program, target)
    assert f".wide = {wide}" in code.decls
