"""Every int16 layer is, on every backend, either computed byte for byte as tflite-micro
computes it or refused with an error naming the op (by the frontend, or by the backend):
never computed with the int8 rule. One small layer per op (int16 activations; 16x8 weights
where the op has them), full-range random inputs, tflite-micro as the oracle.

This found ADD, SUB and MUL of int16 computed through the Cortex-M backend's int8 tables,
and 16x8 convolutions computed with the int8 output stage on reference and llvm. Since
then every int16 layer below runs on every backend; the frontend refuses five."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.oracle import TFLiteOracle

from tests.ir.test_ops_compare import outputs_on
from tests.ir.test_ops_elementwise import (ACTIVATIONS, ALL_INT16, INT16_SCALE_PAIRS, binary_model, broadcast_shapes,
                                          quantizations, unary_model)
from tests.support.tflite_builder import ModelBuilder

S = (1, 4, 5, 3)
Q = np.float32(1 / 4096)


def _one(kind: str, inputs: list[tuple], out_shape, out_scale=Q, consts=(), **options) -> bytes:
    """A one-op model: `inputs` are (shape, dtype, scale) activations, `consts` (name,
    values, dtype[, scale, axis]) constant operands after them."""
    mb = ModelBuilder()
    ins = [mb.tensor(f"x{i}", shape, dtype, scale, 0) for i, (shape, dtype, scale) in enumerate(inputs)]
    operands = list(ins)
    for name, values, dtype, *quant in consts:
        values = np.asarray(values)
        scale, axis = quant[0] if quant else None, quant[1] if len(quant) > 1 else 0
        operands.append(mb.tensor(name, values.shape, dtype, scale, None if scale is None else 0, axis=axis,
                                  data=values))
    y = mb.tensor("y", out_shape, "int16", out_scale, 0)
    mb.op(kind, operands, [y], **options)
    return mb.build(ins, [y])


_RNG = np.random.default_rng(16)
_W = _RNG.integers(-127, 128, (4, 3, 3, 3))
_W_SCALES = np.array([0.01, 0.02, 0.015, 0.03], np.float32)
_ACT = [(S, "int16", Q)]

CASES = {
    "ADD": lambda: _one("ADD", [(S, "int16", Q), (S, "int16", 2 * Q)], S, 4 * Q),
    "SUB": lambda: _one("SUB", [(S, "int16", Q), (S, "int16", 2 * Q)], S, 4 * Q),
    "MUL": lambda: _one("MUL", [(S, "int16", Q), (S, "int16", 2 * Q)], S, 4096 * Q),
    "MAXIMUM": lambda: _one("MAXIMUM", [(S, "int16", Q), (S, "int16", Q)], S),
    "SQUARED_DIFFERENCE": lambda: _one("SQUARED_DIFFERENCE", [(S, "int16", Q), (S, "int16", Q)], S, 8192 * Q),
    "PRELU": lambda: _one("PRELU", _ACT, S, consts=[("a", [[[3, -50, 100]]], "int8", np.float32(0.01))]),
    "AVERAGE_POOL_2D": lambda: _one("AVERAGE_POOL_2D", _ACT, (1, 2, 2, 3), padding="VALID", stride_w=2, stride_h=2,
                                    filter_width=2, filter_height=2),
    "MAX_POOL_2D": lambda: _one("MAX_POOL_2D", _ACT, (1, 2, 2, 3), padding="VALID", stride_w=2, stride_h=2,
                                filter_width=2, filter_height=2),
    "MEAN": lambda: _one("MEAN", _ACT, (1, 1, 1, 3), 2 * Q, consts=[("ax", [1, 2], "int32")], keep_dims=True),
    "RELU": lambda: _one("RELU", _ACT, S),
    "LEAKY_RELU": lambda: _one("LEAKY_RELU", _ACT, S, 2 * Q, alpha=0.2),
    "RELU6": lambda: _one("RELU6", _ACT, S),
    "CONCATENATION": lambda: _one("CONCATENATION", _ACT * 2, (1, 4, 5, 6), axis=3),
    "RESHAPE": lambda: _one("RESHAPE", _ACT, (1, 60), consts=[("sh", [1, 60], "int32")], new_shape=[1, 60]),
    "PAD": lambda: _one("PAD", _ACT, (1, 6, 7, 3), consts=[("p", [[0, 0], [1, 1], [0, 2], [0, 0]], "int32")]),
    "TRANSPOSE": lambda: _one("TRANSPOSE", _ACT, (1, 3, 4, 5), consts=[("perm", [0, 3, 1, 2], "int32")]),
    "SLICE": lambda: _one("SLICE", _ACT, (1, 2, 3, 2), consts=[("b", [0, 1, 1, 0], "int32"),
                                                               ("s", [1, 2, 3, 2], "int32")]),
    "RESIZE_BILINEAR": lambda: _one("RESIZE_BILINEAR", _ACT, (1, 7, 9, 3), consts=[("sz", [7, 9], "int32")],
                                    half_pixel_centers=True),
    "RESIZE_NEAREST_NEIGHBOR": lambda: _one("RESIZE_NEAREST_NEIGHBOR", _ACT, (1, 8, 10, 3),
                                            consts=[("sz", [8, 10], "int32")]),
    "GATHER": lambda: _one("GATHER", _ACT, (1, 4, 2, 3), consts=[("ids", [4, 0], "int32")], axis=2),
    "SPACE_TO_DEPTH": lambda: _one("SPACE_TO_DEPTH", [((1, 4, 6, 3), "int16", Q)], (1, 2, 3, 12), block_size=2),
    "BATCH_MATMUL": lambda: _one("BATCH_MATMUL", [((1, 3, 5), "int16", Q), ((1, 5, 2), "int16", Q)], (1, 3, 2),
                                 256 * Q),
    "SUM": lambda: _one("SUM", _ACT, (1, 3), 16 * Q, consts=[("ax", [1, 2], "int32")]),
    "STRIDED_SLICE": lambda: _one("STRIDED_SLICE", _ACT, (1, 2, 2, 3),
                                  consts=[("b", [0, 0, 4, 0], "int32"), ("e", [1, 4, 0, 3], "int32"),
                                          ("s", [1, 2, -2, 1], "int32")]),
    "PACK": lambda: _one("PACK", _ACT * 2, (1, 4, 5, 2, 3), values_count=2, axis=3),
    "SQUEEZE": lambda: _one("SQUEEZE", [((1, 4, 1, 3), "int16", Q)], (4, 3)),
    "EXPAND_DIMS": lambda: _one("EXPAND_DIMS", _ACT, (1, 4, 5, 1, 3), consts=[("ax", [3], "int32")]),
    "REVERSE_V2": lambda: _one("REVERSE_V2", _ACT, S, consts=[("ax", [1], "int32")]),
    "BROADCAST_TO": lambda: _one("BROADCAST_TO", [((1, 1, 5, 3), "int16", Q)], (2, 4, 5, 3),
                                 consts=[("sh", [2, 4, 5, 3], "int32")]),
    "DEPTH_TO_SPACE": lambda: _one("DEPTH_TO_SPACE", [((1, 2, 3, 8), "int16", Q)], (1, 4, 6, 2), block_size=2),
    "MIRROR_PAD": lambda: _one("MIRROR_PAD", _ACT, (1, 6, 7, 3), consts=[("p", [[0, 0], [1, 1], [1, 1], [0, 0]], "int32")],
                               mode=0),  # REFLECT
    "QUANTIZE int16 -> int8": lambda: _quantize("int16", "int8"),
    "QUANTIZE int8 -> int16": lambda: _quantize("int8", "int16"),
    "QUANTIZE int16 -> int16": lambda: _quantize("int16", "int16"),
    "DEQUANTIZE int16": lambda: _quantize("int16", "float32"),
    "CONV_2D 16x8": lambda: _one("CONV_2D", _ACT, (1, 4, 5, 4), 64 * Q,
                                 consts=[("w", _W, "int8", _W_SCALES, 0),
                                         ("b", [100, -5000, 0, 77], "int64", Q * _W_SCALES, 0)], padding="SAME"),
    "DEPTHWISE_CONV_2D 16x8": lambda: _one("DEPTHWISE_CONV_2D", _ACT, S, 16 * Q,
                                           consts=[("w", _W[:1], "int8", _W_SCALES[:3], 3)],
                                           padding="SAME", depth_multiplier=1),
    "FULLY_CONNECTED 16x8": lambda: _one("FULLY_CONNECTED", [((2, 15), "int16", Q)], (2, 4), 32 * Q,
                                         consts=[("w", _W.reshape(4, -1)[:, :15], "int8", _W_SCALES, 0),
                                                 ("b", [1, 2, 3, 4], "int32", Q * _W_SCALES, 0)]),
}


def _quantize(src: str, dst: str) -> bytes:
    mb = ModelBuilder()
    quant = {"float32": (None, None), "int8": (np.float32(0.01), 0), "int16": (Q, 0)}
    x = mb.tensor("x", S, src, *quant[src])
    y = mb.tensor("y", S, dst, *quant[dst])
    mb.op("DEQUANTIZE" if dst == "float32" else "QUANTIZE", [x], [y])
    return mb.build([x], [y])


def _leaky_relu(alpha: float, in_quant, out_quant) -> bytes:
    mb = ModelBuilder()
    x = mb.tensor("x", ALL_INT16.shape, "int16", *in_quant)
    y = mb.tensor("y", ALL_INT16.shape, "int16", *out_quant)
    mb.op("LEAKY_RELU", [x], [y], alpha=alpha)
    return mb.build([x], [y])


def _inputs(model: bytes) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.integers(np.iinfo(t.dtype).min, np.iinfo(t.dtype).max + 1, t.shape).astype(t.dtype)
            for t in load_tflite(model).inputs]


BACKENDS = ["reference", "llvm", "c-host", "cortex-m4", "cortex-m0"]
# What each backend refuses today, case -> backends (docs/operators.md says the same):
# nothing the frontend loads. Everything else must be exact, so a kernel that starts
# refusing changes this table.
REFUSED_ON: dict[str, set[str]] = {}
# (tflite-micro refuses these five on int16 too: it fails to prepare or to invoke them)
REFUSED_WHEN_LOADED = {"RESIZE_BILINEAR", "GATHER", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "MIRROR_PAD"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_int16_layer_is_exact_or_refused(case, backend):
    if backend != "reference" and backend != "llvm" and shutil.which("gcc" if backend == "c-host" else "arm-none-eabi-gcc") \
            is None:
        pytest.skip(f"no compiler for {backend}")
    model = CASES[case]()
    kind = case.split()[0]
    try:
        inputs = _inputs(model)
    except MCUCError as e:  # refused when loaded, for every backend alike
        assert case in REFUSED_WHEN_LOADED, f"the frontend refuses an int16 {kind}: {e}"
        assert kind in str(e) and "int16" in str(e), f"the frontend's refusal does not name the op and type: {e}"
        return
    assert case not in REFUSED_WHEN_LOADED, f"the frontend loads int16 {kind} now: update REFUSED_WHEN_LOADED"
    want = TFLiteOracle(model)(inputs)
    try:
        got = outputs_on(backend, model, inputs)
    except MCUCError as e:
        assert backend in REFUSED_ON.get(case, ()), f"{backend} refuses int16 {kind}: {e}"
        assert kind in str(e), f"{backend}'s refusal does not name the op: {e}"
        return
    assert backend not in REFUSED_ON.get(case, ()), f"{backend} runs int16 {kind} now: update REFUSED_ON"
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == w.dtype and np.array_equal(np.asarray(g), w), \
            f"{backend}: int16 {kind} differs from tflite-micro in {np.count_nonzero(np.asarray(g) != w)} values"


@settings(deadline=None, max_examples=12)
@given(shapes=broadcast_shapes(), kind=st.sampled_from(["ADD", "SUB", "MUL"]), q1=quantizations("int16"),
       q2=quantizations("int16"), qo=quantizations("int16"), activation=st.sampled_from(ACTIVATIONS),
       constant_second=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_int16_add_sub_and_mul_in_c_match_tflite_micro(shapes, kind, q1, q2, qo, activation, constant_second, seed):
    """The portable C (mcuc_add_s16, mcuc_mul_s16: one TFLM formula per element, any
    broadcast, a constant operand from flash) on the host, sanitized."""
    if shutil.which("gcc") is None:
        pytest.skip("no host C compiler")
    model, inputs = binary_model(kind, shapes, (q1, q2, qo), activation, constant_second,
                                 np.random.default_rng(seed), "int16")
    want = TFLiteOracle(model)(inputs)
    got = outputs_on("c-host", model, inputs)
    assert np.array_equal(got[0], want[0]), f"{np.count_nonzero(got[0] != want[0])} values differ from tflite-micro"


@pytest.mark.parametrize("backend", ["c-host", "cortex-m4", "cortex-m0"])
def test_every_int16_value_through_the_c_maps(backend):
    """mcuc_map_s16 and mcuc_dequantize_s16 on all 65536 int16 values: RELU (scale ratio
    in double), RELU6 and LEAKY_RELU (negative and large alphas) with zero points,
    QUANTIZE to int16 and int8, DEQUANTIZE (float32
    product: soft-float on cortex-m0, the FPU on cortex-m4)."""
    if shutil.which("gcc" if backend == "c-host" else "arm-none-eabi-gcc") is None:
        pytest.skip(f"no compiler for {backend}")
    pairs = INT16_SCALE_PAIRS if backend == "c-host" else INT16_SCALE_PAIRS[:1]
    models = [unary_model(kind, ALL_INT16.shape, "int16", (a, 0), out, (b, 0))
              for a, b in pairs for kind, out in (("RELU", "int16"), ("QUANTIZE", "int16"), ("QUANTIZE", "int8"))]
    models += [unary_model("RELU6", ALL_INT16.shape, "int16", (0.001, 1234), "int16", (0.001, 1234))]
    models += [_leaky_relu(alpha, (0.001, 300), (0.0023, -17)) for alpha in (0.1, -0.3, 1.7)]
    models += [unary_model("DEQUANTIZE", ALL_INT16.shape, "int16", (scale, zp), "float32", None)
               for scale, zp in ((0.009324876591563225, 0), (3.0517578125e-05, 0), (1e-30, 5), (1e6, -7))]
    for model in models:
        want = TFLiteOracle(model)([ALL_INT16])[0]
        got = np.asarray(outputs_on(backend, model, [ALL_INT16])[0])
        assert got.dtype == want.dtype and np.array_equal(got.view(np.uint8), want.view(np.uint8)), \
            f"{backend}: {load_tflite(model).ops[0].label}: {np.count_nonzero(got != want)} values differ"


@pytest.mark.parametrize("target, compiler", [
    ("cortex-m0", ["gcc"]),
    ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"])])
def test_int16_kernels_compile_without_warnings(tmp_path, target, compiler):
    """The generated C of every int16 layer above under -Wall -Wextra -Wconversion
    -Wcast-align -Wpedantic -Werror."""
    import subprocess

    import mcuc
    from tests.ir.test_ops_movement import STRICT

    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed")
    for case in (c for c in CASES if c not in REFUSED_WHEN_LOADED):
        folder = tmp_path / case.replace(" ", "_").replace(">", "")
        mcuc.compile_to_directory(CASES[case](), folder, target=target)
        done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (case, done.stderr[:2000])
