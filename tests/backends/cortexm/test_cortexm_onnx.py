"""ONNX models (the IR's "onnxruntime" rounding rule, runtime_c/mcuc_ort.h) through the
Cortex-M C backend, byte for byte against onnxruntime.

1. Whole networks (onnx_models: MobileNetV2, ResNet, DS-CNN, MLP, a MobileNetV3 block)
   quantized by onnxruntime in QDQ and operator formats with int8 and uint8 activations,
   every combination on c-host (sanitized host build) with the default exact numerics,
   and the QDQ int8 and uint8 ones with --onnx-numerics ort-x86-avx2 too: int8 QDQ then
   brings the float groups onnxruntime leaves unfused (OrtFloat: exact fused multiply-add
   chains), full-range weights the saturating u8 x s8 int16 pairs, uint8 the uint8-domain
   formulas (OrtInteger.uint8). The ort-x86-avx2 cases run where onnxruntime computes so.
2. The same C cross-compiled for every emulated core family, each with its default
   float ABI (target.py): soft on cortex-m0/m3, where the float groups and float32
   requantization run in libgcc's soft-float, hard on cortex-m4/m7/m33, where they run
   in VFP instructions; what else differs is the instruction set libgcc and the
   kernels are compiled for: ARMv6-M
   (cortex-m0: no 32x32->64 multiply, portable kernels), ARMv7-M (cortex-m3: long
   multiplies, portable kernels), ARMv7E-M (cortex-m4/m7: DSP kernels) and ARMv8-M
   Mainline (cortex-m33: DSP kernels). Each family runs at least one int8 QDQ network
   with float groups; the emulator runs uncounted (verification needs only outputs).
3. A few hypothesis cases of each ONNX layer test of test_onnx_layers with c-host
   standing in for the reference interpreter.
"""
from __future__ import annotations

import functools
import re
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import settings

pytest.importorskip("onnxruntime")
from tests.support import onnx_models  # noqa: E402
from tests.frontend import test_onnx_layers  # noqa: E402
from tests.support.onnx_oracle import as_this_host  # noqa: E402
from tests.support.paths import shared_model_path  # noqa: E402

from mcuc.backends.cortexm import ROUNDING_RULES, run_chost, run_cortexm  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.pipeline import cortexm_scratch  # noqa: E402
from mcuc.passes import plan  # noqa: E402
from mcuc.verify import verify  # noqa: E402

_NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi, "
                                       "libnewlib-arm-none-eabi)")

# (network, format, activations, numerics) on c-host (about a second or two each): every
# combination with exact numerics; the QDQ ones with ort-x86-avx2's float groups and pairs.
CHOST_CASES = [(n, f, a, "exact") for n in sorted(onnx_models.NETWORKS) for f in ("qdq", "qoperator")
               for a in ("int8", "uint8")] + [(n, "qdq", a, "ort-x86-avx2") for n in sorted(onnx_models.NETWORKS)
                                              for a in ("int8", "uint8")]
# Emulated cores, one sample each: every core family on an int8 QDQ network with
# ort-x86-avx2 numerics, whose float groups onnxruntime leaves in float there
# (mobilenet_v3_block: float depthwise, pointwise FMA3 blocks, GlobalAveragePool and Mul,
# next to u8 x s8 pairs, tables, QLinearSoftmax and QLinearAveragePool; resnet: float 3x3
# convs and residual Adds, ~1.5M float MACs, the heaviest soft-float load, which on
# cortex-m0 needs ~800M instructions), the cheap MLP in the formats that bring the pair and
# uint8 kernels, and the default exact numerics (int8 QDQ fused as int8) on each family.
AVX2 = "ort-x86-avx2"
EMULATED_CASES = [("cortex-m0", "mlp", "qdq", "int8", AVX2), ("cortex-m0", "mobilenet_v3_block", "qdq", "uint8", AVX2),
                  ("cortex-m0", "resnet", "qdq", "int8", AVX2), ("cortex-m0", "mlp", "qdq", "int8", "exact"),
                  ("cortex-m3", "mobilenet_v3_block", "qdq", "int8", AVX2),
                  ("cortex-m3", "mlp", "qoperator", "int8", "exact"),
                  ("cortex-m4", "mlp", "qdq", "int8", AVX2), ("cortex-m4", "mlp", "qoperator", "uint8", AVX2),
                  ("cortex-m4", "mobilenet_v3_block", "qoperator", "uint8", AVX2),
                  ("cortex-m4", "mobilenet_v3_block", "qdq", "int8", "exact"),
                  ("cortex-m7", "resnet", "qdq", "int8", AVX2), ("cortex-m7", "mlp", "qdq", "uint8", AVX2),
                  ("cortex-m7", "kws_ds_cnn", "qdq", "int8", "exact"),
                  ("cortex-m33", "mobilenet_v3_block", "qdq", "int8", AVX2),
                  ("cortex-m33", "kws_ds_cnn", "qoperator", "uint8", AVX2),
                  ("cortex-m33", "mobilenet_v3_block", "qdq", "int8", "exact")]

LAYER_TESTS = ("test_conv", "test_gemm_and_matmul", "test_add_and_mul", "test_global_average_pool",
               "test_average_pool", "test_elementwise_tables", "test_concat_requantizes_inputs",
               "test_softmax", "test_qlinear_softmax_int8_operator", "test_qdq_int8_group_left_in_float")
LAYER_CASES = 3


@functools.lru_cache(maxsize=None)  # shared by the c-host and emulated cases
def _quantized(network: str, fmt: str, activations: str) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnx_models.quantize(onnx_models.NETWORKS[network](np.random.default_rng(7)), fmt, activations, seed=1)


def test_cortexm_declares_the_onnxruntime_rule():
    assert "onnxruntime" in ROUNDING_RULES


@pytest.mark.parametrize("network, fmt, activations, numerics", CHOST_CASES)
def test_onnx_network_on_chost(network, fmt, activations, numerics):
    as_this_host(numerics)
    model = load_model(_quantized(network, fmt, activations), format="onnx", onnx_numerics=numerics)
    report = verify(model, ["c-host"], samples=2, seed=11)
    assert report["backends"]["c-host"]["bit_exact"], report


@_NEEDS_ARM
@pytest.mark.parametrize("target, network, fmt, activations, numerics", EMULATED_CASES)
def test_onnx_network_on_emulated_core(target, network, fmt, activations, numerics):
    as_this_host(numerics)
    model = load_model(_quantized(network, fmt, activations), format="onnx", onnx_numerics=numerics)
    report = verify(model, [target], samples=1, seed=13)
    assert report["backends"][target]["bit_exact"], report


def run_on_chost(graph, inputs):
    """The reference interpreter's signature, executed as the generated C on the host."""
    return run_chost(plan(graph, cortexm_scratch("cortex-m0")), inputs)


@pytest.mark.parametrize("name", LAYER_TESTS)
def test_onnx_layers_on_chost(name, monkeypatch):
    monkeypatch.setattr(test_onnx_layers, "run", run_on_chost)
    test = getattr(test_onnx_layers, name)
    # fewer examples than the reference's run: each one is a C build
    monkeypatch.setattr(test, "_hypothesis_internal_use_settings",
                        settings(test_onnx_layers.SETTINGS, max_examples=LAYER_CASES))
    test()


# Cases built on round-half-to-even ties (QuantizeLinear exactly between two integers;
# QLinearAdd over every pair of input values), which random scales rarely hit.
TIE_CASES = [("test_quantize_linear_on_ties", dict(dtype=d, scale=s)) for d in ("int8", "uint8") for s in (0.5, 0.1)] \
    + [("test_qlinear_add_every_input_pair", dict(dtype=d, seed=0)) for d in ("int8", "uint8")]


@pytest.mark.parametrize("name, params", TIE_CASES)
def test_onnx_ties_on_chost(name, params, monkeypatch):
    monkeypatch.setattr(test_onnx_layers, "run", run_on_chost)
    getattr(test_onnx_layers, name)(**params)


def run_on_cortex_m4(graph, inputs):
    """The same on the emulated cortex-m4, hard float: its FPU rounds (VCVTR) and fuses
    (VFMA) what the portable C computes in integers."""
    return run_cortexm(plan(graph, cortexm_scratch("cortex-m4")), inputs, "cortex-m4", count_instructions=False).outputs


@_NEEDS_ARM
@pytest.mark.parametrize("name, params", [c for c in TIE_CASES if c[1].get("scale", 0.5) == 0.5])
def test_onnx_ties_on_cortex_m4(name, params, monkeypatch):
    monkeypatch.setattr(test_onnx_layers, "run", run_on_cortex_m4)
    getattr(test_onnx_layers, name)(**params)


def _ties_model(seed: int, depthwise: bool) -> bytes:
    """A QDQ Conv on 8 channels, 6x6 (or 10x10 for the depthwise one): 1x1 to 5 channels
    (an odd count: the pair stream pads a zero channel; fuzz found it crashing the emitter),
    or depthwise 3x3 with padding 1, whose requantization scale is exactly 2^-4
    (x_scale 0.5 * w_scale 2^-6 / y_scale 2^-3) with weights in {-1, 0, 1}: every
    accumulator is exact in float32, one in 16 lies exactly on a tie (v = acc / 16 =
    j + 1/2) and most outputs stay within int8, so the bounded signed stage meets a tie in
    almost every pixel pair or row."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    shape, size = ((8, 1, 3, 3), 10) if depthwise else ((5, 8, 1, 1), 6)
    w = rng.integers(-1, 2, shape).astype(np.int8)
    window = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8) if depthwise else dict(kernel_shape=[1, 1])
    inits = [numpy_helper.from_array(np.float32(0.5), "xs"), numpy_helper.from_array(np.int8(3), "xz"),
             numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(2.0**-6), "ws"),
             numpy_helper.from_array(np.int8(0), "wz"),
             numpy_helper.from_array(rng.integers(-40, 40, shape[0]).astype(np.int32), "b"),
             numpy_helper.from_array(np.float32(0.5 * 2.0**-6), "bs"), numpy_helper.from_array(np.int32(0), "bz"),
             numpy_helper.from_array(np.float32(2.0**-3), "ys"), numpy_helper.from_array(np.int8(-5), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"]),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], **window),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    graph = helper.make_graph(nodes, "ties", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@_NEEDS_ARM
@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m0"])
@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_on_exact_ties(target, depthwise, tmp_path):
    """onnxruntime's requantization on exact ties: on cortex-m4 the assembly loops (the
    pointwise GEMM's pair stream, the in-place depthwise 3x3 rows) flag them and the C
    redoes those pixels (the generated C is checked to take those loops under
    onnxruntime's bounded stage); on cortex-m0 the portable kernels' bounded signed stage
    takes its general path; both against onnxruntime on inputs that hit the ties."""
    from mcuc.backends.cortexm import write_project
    from mcuc.backends.cortexm.target import get_target
    from mcuc.pipeline import CompileOptions, schedule

    data = _ties_model(5, depthwise)
    if target == "cortex-m4":
        options = CompileOptions(target=target, io="int8", layout="nhwc")
        program = schedule(load_model(data, format="onnx", layout="nhwc").graph, options, cortexm_scratch(target))
        source = (write_project(program, tmp_path / "c", get_target(target)) / "model.c").read_text()
        if depthwise:
            assert "mcuc_depthwise_in_place" in source and ".checked = 0" in source, "not the in-place kernel"
        else:
            assert "mcuc_conv_1x1_streams" in source and re.search(r"\.frac = [1-9]", source), \
                "not the onnxruntime pair stream"
    report = verify(load_model(data, format="onnx"), [target], samples=3, seed=2)
    assert report["backends"][target]["bit_exact"], report


@pytest.mark.parametrize("target, says", [("cortex-m4", True), ("cortex-m0", False)])
def test_readme_states_the_fpscr_assumption(target, says, tmp_path):
    """An onnxruntime-rule model for a core with an FPU: the generated README says the
    FPU paths need the FPSCR as reset; a core without one (and a TFLite model, whose
    kernels have no float) does not."""
    from mcuc.backends.cortexm import write_project
    from mcuc.backends.cortexm.target import get_target
    from mcuc.pipeline import CompileOptions, schedule

    program = schedule(load_model(_quantized("mlp", "qdq", "int8"), format="onnx").graph,
                       CompileOptions(target=target), cortexm_scratch(target))
    readme = (write_project(program, tmp_path / "c", get_target(target)) / "README.md").read_text()
    assert ("FPSCR" in readme) == says
    tflite = load_model(shared_model_path("ad01_int8"))
    program = schedule(tflite.graph, CompileOptions(target=target), cortexm_scratch(target))
    assert "FPSCR" not in (write_project(program, tmp_path / "t", get_target(target)) / "README.md").read_text()
