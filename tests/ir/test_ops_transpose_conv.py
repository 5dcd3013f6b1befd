"""TRANSPOSE_CONV (int8 with an int32 bias, int16 activations with an int64 or int16 bias;
per-channel or per-tensor weights; the bias optional): hypothesis
draws shapes, strides, SAME / VALID, output sizes around the natural one (tflite-micro
takes the output tensor's size, never reads the output_shape input, and computes the
padding from the output size), fused activations and quantizations; one model holds a
layer per case and every output byte is compared with tflite-micro on the reference
interpreter, llvm, the portable C on the host and (fixed layers) an emulated Cortex-M4
and Cortex-M0. A padding rounded the other way must be caught; what mcuc
refuses names the op and the rule; patch stages hold the op.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError

from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


@dataclass(frozen=True)
class TConv:
    x: tuple[int, int, int, int]  # N, H, W, C
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: str = "SAME"
    out_hw: tuple[int, int] | None = None  # None: the natural size
    per_channel: bool = True
    bias: bool = True
    activation: str = "NONE"
    qx: tuple[float, int] = (0.05, 3)
    qo: tuple[float, int] = (0.1, -5)
    seed: int = 0
    shape_input: tuple[int, ...] | None = None  # output_shape values (None: the output's shape)
    dtype: str = "int8"  # activations; int16 (16x8): zero points 0, an int64 (or int16) bias
    bias_dtype: str = "int64"  # of an int16 layer

    def natural(self) -> tuple[int, int]:
        n, h, w, _ = self.x
        if self.padding == "SAME":
            return h * self.stride[0], w * self.stride[1]
        return (h - 1) * self.stride[0] + self.kernel[0], (w - 1) * self.stride[1] + self.kernel[1]

    def out_shape(self) -> tuple[int, int, int, int]:
        oh, ow = self.out_hw or self.natural()
        return self.x[0], oh, ow, self.out_channels


def model_of(layers: list[TConv]) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    for i, c in enumerate(layers):
        rng = np.random.default_rng(c.seed)
        x = mb.tensor(f"x{i}", c.x, c.dtype, *c.qx)
        oc, (kh, kw) = c.out_channels, c.kernel
        scales = (rng.uniform(0.002, 0.02, oc) if c.per_channel else np.full(1, 0.01)).astype(np.float32)
        w = mb.tensor(f"w{i}", (oc, kh, kw, c.x[3]), "int8", scales, [0] * scales.size, axis=0,
                      data=rng.integers(-127, 128, (oc, kh, kw, c.x[3])))
        shape = mb.const(f"shape{i}", list(c.shape_input or c.out_shape()))
        operands = [shape, w, x]
        if c.bias:
            bias_dtype = c.bias_dtype if c.dtype == "int16" else "int32"
            limit = 3000 if bias_dtype == "int32" else 30000
            operands.append(mb.tensor(f"b{i}", (oc,), bias_dtype, data=rng.integers(-limit, limit, oc)))
        y = mb.tensor(f"y{i}", c.out_shape(), c.dtype, *c.qo)
        mb.op("TRANSPOSE_CONV", operands, [y], padding=c.padding, stride_h=c.stride[0], stride_w=c.stride[1],
              fused_activation_function=c.activation)
        ins.append(x)
        outs.append(y)
        info = np.iinfo(c.dtype)
        values.append(rng.integers(info.min, info.max + 1, c.x).astype(c.dtype))
    return mb.build(ins, outs), values


@st.composite
def tconvs(draw) -> TConv:
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4)))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    c = TConv(x, draw(st.integers(1, 4)), kernel, stride, padding)
    oh, ow = c.natural()
    if draw(st.booleans()):  # another output size: tflite-micro scatters into whatever the output holds
        oh = max(1, oh + draw(st.integers(-stride[0], stride[0])))
        ow = max(1, ow + draw(st.integers(-stride[1], stride[1])))
    qx = (float(np.float32(2.0 ** draw(st.floats(-8.0, -3.0)))), draw(st.integers(-128, 127)))
    qo = (float(np.float32(qx[0] * 2.0 ** draw(st.floats(0.0, 5.0)))), draw(st.integers(-128, 127)))
    dtype, bias_dtype = "int8", "int64"
    if draw(st.integers(0, 3)) == 0:  # 16x8
        dtype, bias_dtype = "int16", draw(st.sampled_from(["int64", "int16"]))
        qx, qo = (qx[0] / 256, 0), (qo[0] / 256, 0)
    return TConv(x, c.out_channels, kernel, stride, padding, (oh, ow), draw(st.booleans()), draw(st.booleans()),
                 draw(st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])), qx, qo, draw(st.integers(0, 2**31)),
                 None, dtype, bias_dtype)


@settings(deadline=None, max_examples=30)
@given(layers=st.lists(tconvs(), min_size=1, max_size=3))
def test_reference_matches_oracle(layers):
    model, inputs = model_of(layers)
    assert_matches_oracle(model, inputs, what=str(layers))


@settings(deadline=None, max_examples=3)
@given(layers=st.lists(tconvs(), min_size=3, max_size=4))
def test_llvm_and_c_host_match_oracle(layers):
    model, inputs = model_of(layers)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(layers))


FIXED = [TConv((1, 4, 4, 3), 4, (3, 3), (2, 2), "SAME"),
         TConv((1, 3, 5, 2), 3, (4, 2), (2, 1), "VALID", per_channel=False, bias=False, activation="RELU", seed=1),
         TConv((2, 2, 3, 4), 2, (3, 3), (3, 2), "SAME", out_hw=(5, 7), seed=2),
         TConv((1, 1, 1, 2), 2, (8, 6), (4, 4), "VALID", out_hw=(1, 1), seed=3),
         # On DSP cores these run as convolutions over the dilated input (1x1 and im2col
         # kernels, input channels a multiple of 4 or not, cropped and enlarged outputs).
         TConv((1, 3, 3, 8), 5, (1, 1), (2, 2), "VALID", seed=6),
         TConv((1, 5, 4, 4), 6, (5, 3), (3, 2), "SAME", out_hw=(14, 9), activation="RELU6", seed=7),
         TConv((1, 4, 4, 3), 2, (2, 2), (2, 2), "SAME", out_hw=(9, 6), per_channel=False, seed=8),
         # 16x8 (the gather form on every core)
         TConv((1, 3, 4, 3), 4, (3, 3), (2, 2), "SAME", qx=(0.0002, 0), qo=(0.001, 0), seed=9, dtype="int16"),
         TConv((2, 2, 2, 2), 3, (4, 3), (2, 1), "VALID", activation="RELU", qx=(0.0001, 0), qo=(0.0004, 0),
               seed=10, dtype="int16", bias_dtype="int16")]


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    model, inputs = model_of(FIXED)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


@NEEDS_ARM
def test_dsp_cores_run_it_as_a_convolution_over_the_dilated_input(tmp_path, monkeypatch):
    """cortex-m4 code dilates the input and calls the conv GEMM kernels for every batch-1
    layer; an unflipped kernel there must be caught."""
    import re

    import mcuc
    from mcuc.backends.cortexm import kernels_transpose_conv as ktc
    from mcuc.ir.tensor import Tensor

    model, inputs = model_of(FIXED)
    mcuc.compile_to_directory(model, tmp_path, target="cortex-m4")
    source = (tmp_path / "model.c").read_text()
    assert len(re.findall(r"_dilate\(arena\)", source)) == sum(c.x[0] == 1 and c.dtype == "int8" for c in FIXED)
    assert "mcuc_conv_im2col" in source
    real = ktc.as_dilated_conv

    def unflipped(op):
        view = real(op)
        w = op.inputs[1]
        return None if view is None else view.with_(inputs=
            (view.inputs[0], Tensor(w.name, w.shape, "int8", w.quant, w.data), *view.inputs[2:]))

    model, inputs = model_of([FIXED[0]])
    assert_matches_oracle(model, inputs, ("cortex-m4",))
    monkeypatch.setattr(ktc, "as_dilated_conv", unflipped)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs, ("cortex-m4",))


def test_valid_padding_when_the_output_is_smaller_than_the_kernel():
    """VALID with an output smaller than the kernel: (out + stride - k) / stride truncates
    toward zero and leaves a padding of 1 on both axes here (out 1, k 8 and 6, stride 4)."""
    from mcuc.ir.ops.transpose_conv import tflm_padding

    assert tflm_padding(False, 1, 8, 4) == 1 and tflm_padding(False, 1, 6, 4) == 0
    model, inputs = model_of([FIXED[3]])
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"))


def test_output_shape_input_is_ignored_as_tflite_micro_does():
    case = TConv((1, 3, 3, 2), 3, (3, 3), (2, 2), "SAME", shape_input=(1, 9, 9, 3), seed=4)
    model, inputs = model_of([case])
    assert_matches_oracle(model, inputs, ("reference", "llvm"))


def test_odd_padding_pixel_before_is_caught(monkeypatch):
    """tflite-micro uses only the leading padding, total / 2 rounded down: rounding up
    (the odd pixel before) must be caught."""
    from mcuc.frontend import tflite_more
    from mcuc.ir.ops.transpose_conv import tflm_padding

    case = TConv((1, 4, 4, 2), 2, (3, 3), (2, 2), "SAME", seed=5)
    model, inputs = model_of([case])
    assert_matches_oracle(model, inputs)
    monkeypatch.setattr(tflite_more, "tflm_padding", lambda same, out, k, s: tflm_padding(same, out + 1, k + 2, s))
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_what_mcuc_refuses_names_the_op_and_rule():
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 2, 3), "int8", 0.1, 0)
    w = mb.tensor("w", (2, 3, 3, 3), "int8", [0.01, 0.01], [1, 0], data=np.ones((2, 3, 3, 3)))
    y = mb.tensor("y", (1, 4, 4, 2), "int8", 0.1, 0)
    mb.op("TRANSPOSE_CONV", [mb.const("s", [1, 4, 4, 2]), w, x], [y], padding="SAME", stride_h=2, stride_w=2)
    with pytest.raises(MCUCError, match=r"TRANSPOSE_CONV.*zero point 0"):
        load_tflite(mb.build([x], [y]))
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 2, 3), "int8", 0.1, 0)
    w = mb.tensor("w", (2, 3, 3, 3), "int8", [0.01, 0.01], [0, 0], data=np.ones((2, 3, 3, 3)))
    b = mb.tensor("b", (2,), "int64", data=np.ones(2))
    y = mb.tensor("y", (1, 4, 4, 2), "int8", 0.1, 0)
    mb.op("TRANSPOSE_CONV", [mb.const("s", [1, 4, 4, 2]), w, x, b], [y], padding="SAME", stride_h=2, stride_w=2)
    with pytest.raises(MCUCError, match=r"TRANSPOSE_CONV.*bias.*int32"):
        load_tflite(mb.build([x], [y]))
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 2, 3), "int8")
    w = mb.tensor("w", (2, 3, 3, 3), "int8", [0.01, 0.01], [0, 0], data=np.ones((2, 3, 3, 3)))
    y = mb.tensor("y", (1, 4, 4, 2), "int8", 0.1, 0)
    mb.op("TRANSPOSE_CONV", [mb.const("s", [1, 4, 4, 2]), w, x], [y], padding="SAME", stride_h=2, stride_w=2)
    with pytest.raises(MCUCError, match=r"TRANSPOSE_CONV.*quantized"):
        load_tflite(mb.build([x], [y]))
    for zp, bias_dtype, rule in ((5, "int64", r"int16 input and output zero points \(5, 0\).*requires 0"),
                                 (0, "int32", r"bias 'b' must be a constant int64 or int16 tensor")):
        mb = ModelBuilder()
        x = mb.tensor("x", (1, 2, 2, 3), "int16", 0.001, zp)
        w = mb.tensor("w", (2, 3, 3, 3), "int8", [0.01, 0.01], [0, 0], data=np.ones((2, 3, 3, 3)))
        b = mb.tensor("b", (2,), bias_dtype, data=np.ones(2))
        y = mb.tensor("y", (1, 4, 4, 2), "int16", 0.001, 0)
        mb.op("TRANSPOSE_CONV", [mb.const("s", [1, 4, 4, 2]), w, x, b], [y], padding="SAME", stride_h=2, stride_w=2)
        with pytest.raises(MCUCError, match=rf"TRANSPOSE_CONV.*{rule}"):
            load_tflite(mb.build([x], [y]))


def test_patch_stages_hold_transpose_conv():
    """conv -> TRANSPOSE_CONV (x2) -> conv in one 2-D patch stage, recomputed and with
    cached halos: each region reads the input rows and columns whose scatter reaches it,
    with its own size and leading padding; the reference, llvm, the portable C and (the
    dilated convolution inside the stage) an emulated Cortex-M4 equal tflite-micro. The
    audio model's search runs too."""
    import shutil

    from mcuc.backends.cortexm import get_target, run_chost, run_cortexm
    from mcuc.backends.cortexm.kernels import scratch_requests as cortexm_scratch
    from mcuc.backends.llvm import compile_program as compile_llvm, scratch_requests as llvm_scratch
    from mcuc.ir.program_interpreter import run_program
    from mcuc.oracle import TFLiteOracle
    from mcuc.passes.patch_schedule import schedule_with_patches

    rng = np.random.default_rng(9)
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 4, 4, 4), "int8", 0.05, 3)
    w = mb.tensor("w", (4, 3, 3, 4), "int8", [0.01] * 4, [0] * 4, data=rng.integers(-60, 60, (4, 3, 3, 4)))
    b = mb.tensor("b", (4,), "int32", data=rng.integers(-500, 500, 4))
    h = mb.tensor("h", (1, 4, 4, 4), "int8", 0.06, -5)
    mb.op("CONV_2D", [x, w, b], [h], padding="SAME")
    t = mb.tensor("t", (1, 8, 8, 4), "int8", 0.1, 2)
    mb.op("TRANSPOSE_CONV", [mb.const("s", [1, 8, 8, 4]), w, h, b], [t], padding="SAME", stride_h=2, stride_w=2)
    y = mb.tensor("y", (1, 8, 8, 4), "int8", 0.1, 0)
    mb.op("CONV_2D", [t, w, b], [y], padding="SAME")
    model = mb.build([x], [y])
    inputs = [rng.integers(-128, 128, (1, 4, 4, 4)).astype(np.int8)]
    want = TFLiteOracle(model)(inputs)[0]
    graph = load_tflite(model)
    for patch in ("2x2@2", "3x2@2+cache"):
        program = schedule_with_patches(graph, patch, None, llvm_scratch)
        assert [st.op.kind for st in program.steps] == ["PATCH_STAGE"]
        assert np.array_equal(run_program(program, inputs)[0], want), patch
        assert np.array_equal(compile_llvm(program)(inputs)[0], want), patch
    m0 = get_target("cortex-m0")
    program = schedule_with_patches(graph, "3x2@2+cache", None, lambda op, in_place: cortexm_scratch(op, in_place, m0))
    assert np.array_equal(run_chost(program, inputs)[0], want)
    if shutil.which("arm-none-eabi-gcc"):
        m4 = get_target("cortex-m4")
        program = schedule_with_patches(graph, "2x2@2", None, lambda op, in_place: cortexm_scratch(op, in_place, m4))
        assert np.array_equal(run_cortexm(program, inputs, m4).outputs[0], want)
    model, inputs = audio_model()
    want = TFLiteOracle(model)(inputs)
    program = schedule_with_patches(load_tflite(model), "auto", None, llvm_scratch)
    assert all(np.array_equal(g, w) for g, w in zip(run_program(program, inputs), want))


# -- a small audio-style model ---------------------------------------------------------------

def audio_model() -> tuple[bytes, list[np.ndarray]]:
    """A 1-D audio encoder / decoder written as NHWC with height 1: strided CONV_2D down,
    a DEPTHWISE_CONV_2D, TRANSPOSE_CONV upsampling by 2 (SAME, per-channel, bias, RELU),
    a skip ADD, and a second TRANSPOSE_CONV back to the input rate (VALID, trimmed by the
    output size) with one output channel."""
    rng = np.random.default_rng(23)
    mb = ModelBuilder("audio upsampler")
    T, C = 32, 8
    x = mb.tensor("audio", (1, 1, T, 1), "int8", 0.02, 0)

    def weights(name, shape, axis=0):
        n = shape[axis]
        return mb.tensor(name, shape, "int8", rng.uniform(0.004, 0.02, n).astype(np.float32), [0] * n, axis=axis,
                         data=rng.integers(-127, 128, shape))

    def bias(name, n):
        return mb.tensor(name, (n,), "int32", data=rng.integers(-500, 500, n))

    h1 = mb.tensor("h1", (1, 1, T // 2, C), "int8", 0.03, -20)
    mb.op("CONV_2D", [x, weights("w1", (C, 1, 5, 1)), bias("b1", C)], [h1], padding="SAME", stride_w=2,
          fused_activation_function="RELU")
    h2 = mb.tensor("h2", (1, 1, T // 4, C), "int8", 0.1, -30)
    mb.op("CONV_2D", [h1, weights("w2", (C, 1, 3, C)), bias("b2", C)], [h2], padding="SAME", stride_w=2,
          fused_activation_function="RELU")
    h3 = mb.tensor("h3", (1, 1, T // 4, C), "int8", 0.4, -10)
    mb.op("DEPTHWISE_CONV_2D", [h2, weights("w3", (1, 1, 3, C), axis=3), bias("b3", C)], [h3], padding="SAME")
    up1 = mb.tensor("up1", (1, 1, T // 2, C), "int8", 0.4, -100)
    mb.op("TRANSPOSE_CONV", [mb.const("s1", [1, 1, T // 2, C]), weights("w4", (C, 1, 4, C)), h3, bias("b4", C)],
          [up1], padding="SAME", stride_h=1, stride_w=2, fused_activation_function="RELU")
    skip = mb.tensor("skip", (1, 1, T // 2, C), "int8", 0.4, -60)
    mb.op("ADD", [up1, h1], [skip])
    y = mb.tensor("y", (1, 1, T, 1), "int8", 2.0, 1)
    mb.op("TRANSPOSE_CONV", [mb.const("s2", [1, 1, T, 1]), weights("w5", (1, 1, 3, C)), skip], [y],
          padding="VALID", stride_h=1, stride_w=2)
    return mb.build([x], [y]), [rng.integers(-128, 128, (1, 1, T, 1)).astype(np.int8)]


def test_audio_model_matches_oracle_on_every_backend():
    import shutil

    model, inputs = audio_model()
    backends = ("reference", "llvm", "c-host") + (("cortex-m4", "cortex-m0") if shutil.which("arm-none-eabi-gcc")
                                                  else ())
    assert_matches_oracle(model, inputs, backends, "audio model")


@NEEDS_ARM
def test_generated_c_compiles_without_warnings(tmp_path):
    import subprocess

    import mcuc
    from tests.ir.test_ops_movement import STRICT

    model, _ = model_of(FIXED)
    for target, compiler in (("cortex-m0", ["gcc"]),
                             ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                            "-mfpu=fpv4-sp-d16"])):
        folder = tmp_path / target
        mcuc.compile_to_directory(model, folder, target=target)
        done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])
