"""ONNX models (the IR's "onnxruntime" rounding rule) through the llvm backend, byte for
byte against onnxruntime.

1. The hypothesis layer tests of test_onnx_layers (conv/depthwise/grouped, Gemm/MatMul,
   Add/Mul with a one-element operand, average pools with and without padding counted,
   elementwise tables, QLinearConcat, Pad, Resize, Transpose/Reshape, softmax in both
   operator forms), each run with the llvm backend standing in for the reference
   interpreter: the same generated layers, compared with onnxruntime.
2. Whole networks (onnx_models: MobileNetV2, ResNet, DS-CNN, MLP, a MobileNetV3 block)
   quantized by onnxruntime in QDQ and operator formats with int8 and uint8 activations.
3. The QDQ groups onnxruntime leaves in float (OrtFloat numerics): every MLAS kernel shape of
   ir/ops/ort_float.py against the reference, float GlobalAveragePool/AveragePool groups
   and MobileNetV2 (4 seeds x 10 inputs) against onnxruntime.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from tests.support import onnx_models  # noqa: E402
from tests.frontend import test_onnx_float_groups  # noqa: E402
from tests.frontend import test_onnx_layers  # noqa: E402
from tests.support.onnx_oracle import as_this_host, model_and_oracle  # noqa: E402
from tests.frontend.test_onnx_float_groups import NUMERICS  # noqa: E402

from mcuc.backends.llvm import ROUNDING_RULES, compile_program, scratch_requests  # noqa: E402
from mcuc.ir.numerics import OrtFloat  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.passes import plan  # noqa: E402
from mcuc.verify import verify  # noqa: E402

LAYER_TESTS = ("test_conv", "test_gemm_and_matmul", "test_add_and_mul", "test_global_average_pool",
               "test_average_pool", "test_max_pool_and_flatten", "test_elementwise_tables",
               "test_concat_requantizes_inputs", "test_pad", "test_resize_nearest", "test_transpose", "test_reshape_across_layouts",
               "test_softmax", "test_qlinear_softmax_int8_operator", "test_quantize_linear_on_ties", "test_qlinear_add_every_input_pair",
               "test_qdq_int8_group_left_in_float", "test_qdq_int8_add_of_a_shared_tensor")


def run_on_llvm(graph, inputs):
    """The reference interpreter's signature, executed by the llvm backend under the
    memory plan."""
    return compile_program(plan(graph, scratch_requests))(inputs)


def test_llvm_declares_the_onnxruntime_rule():
    assert "onnxruntime" in ROUNDING_RULES


def parameter_sets(test) -> list[dict]:
    """Every combination of a test's pytest.mark.parametrize arguments ([{}] if none:
    hypothesis tests draw their own)."""
    combos = [{}]
    for mark in getattr(test, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = [n.strip() for n in mark.args[0].split(",")] if isinstance(mark.args[0], str) else list(mark.args[0])
        values = [v if len(names) > 1 else (v,) for v in mark.args[1]]
        combos = [{**c, **dict(zip(names, v))} for c in combos for v in values]
    return combos


# Hypothesis layers per kind on llvm (each one JIT-compiled): fewer than the reference
# run's test_onnx_layers.CASES_PER_LAYER, which holds the >= 100 cases per CI run.
LLVM_CASES_PER_LAYER = 8


@pytest.mark.parametrize("name", LAYER_TESTS)
def test_onnx_layers_on_llvm(name, monkeypatch):
    from hypothesis import settings

    monkeypatch.setattr(test_onnx_layers, "run", run_on_llvm)
    test = getattr(test_onnx_layers, name)
    chosen = getattr(test, "_hypothesis_internal_use_settings", None)
    if chosen is not None:
        monkeypatch.setattr(test, "_hypothesis_internal_use_settings",
                            settings(chosen, max_examples=min(chosen.max_examples, LLVM_CASES_PER_LAYER)))
    for params in parameter_sets(test):
        test(**params)


@pytest.mark.parametrize("activations", ["int8", "uint8"])
@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("network", sorted(onnx_models.NETWORKS))
def test_onnx_networks_on_llvm(network, fmt, activations):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = onnx_models.quantize(onnx_models.NETWORKS[network](np.random.default_rng(7)), fmt, activations, seed=1)
    report = verify(load_model(data, format="onnx"), ["llvm"], samples=2, seed=11)
    assert report["backends"]["llvm"]["bit_exact"], report


def _forced_float(graph, gemm_transposed_b: bool):
    """The graph with its conv/FC/MEAN ops marked as onnxruntime float groups (with the
    threads of the float-group tests' numerics), whatever onnxruntime fuses."""
    from dataclasses import replace

    from mcuc.frontend.onnx_numerics import parse_onnx_numerics
    from mcuc.ir.numerics import ORT_GLOBAL_AVERAGE_POOL, OrtFloat

    threads = parse_onnx_numerics(NUMERICS).threads
    ops = []
    for op in graph.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN"):
            numerics = OrtFloat(threads=threads if op.kind == "CONV_2D" else 1,
                                gemm_transposed_b=gemm_transposed_b,
                                mean_kernel=getattr(op.attrs.numerics, "mean_kernel", ORT_GLOBAL_AVERAGE_POOL))
            op = op.with_(attrs=replace(op.attrs, numerics=numerics))
        ops.append(op)
    return graph.with_(ops=tuple(ops))


@pytest.mark.parametrize("case", test_onnx_float_groups.CONVS + test_onnx_float_groups.FCS, ids=str)
def test_float_groups_on_llvm_equal_reference(case):
    """Every MLAS kernel shape of ir/ops/ort_float.py (M == 1 blocks of four and their
    tails, transposed-B lanes in 4/2/1-unit blocks, FMA3 blocks per thread segment) as
    llvm code: byte-exact with the reference interpreter on many inputs."""
    from mcuc.ir.interpreter import run

    quantized, _, shape = test_onnx_float_groups._float_model(case, 3)
    graph = _forced_float(load_model(quantized, format="onnx").graph, case[0] == "gemm_t")
    compiled = compile_program(plan(graph, scratch_requests))
    rng = np.random.default_rng(5)
    for _ in range(8):
        x = rng.normal(0, 1, shape).astype(np.float32)
        assert compiled([x])[0].tobytes() == run(graph, [x])[0].tobytes()


@pytest.mark.parametrize("share_input, share_output", [(True, False), (False, True)])
def test_global_average_pool_left_in_float_on_llvm(share_input, share_output):
    quantized, _ = test_onnx_float_groups._gap_model(0, (1, 12, 7, 7), share_input, share_output)
    model, oracle = model_and_oracle(quantized, NUMERICS)
    graph = model.graph
    assert any(isinstance(op.attrs.numerics, OrtFloat) for op in graph.ops if op.kind == "MEAN")
    compiled = compile_program(plan(graph, scratch_requests))
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.normal(0, 2, (1, 12, 7, 7)).astype(np.float32)
        assert all(e.tobytes() == a.tobytes() for e, a in zip(oracle([x]), compiled([x])))


def test_mobilenet_v2_qdq_int8_on_llvm_many_inputs():
    """The network whose depthwise float group needs MLAS's M == 1 kernel order: llvm
    byte-exact with onnxruntime on 4 seeds x 10 inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = onnx_models.quantize(onnx_models.mobilenet_v2(np.random.default_rng(7)), "qdq", "int8", seed=1)
    model, oracle = model_and_oracle(data, NUMERICS)
    compiled = compile_program(plan(model.graph, scratch_requests))
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for _ in range(10):
            x = rng.normal(0, 1, (1, 3, 96, 96)).astype(np.float32)
            assert oracle([x])[0].tobytes() == compiled([x])[0].tobytes()


@pytest.mark.parametrize("attrs", test_onnx_float_groups.POOLS, ids=str)
def test_average_pool_left_in_float_on_llvm(attrs):
    shape = (1, 2 * as_this_host(NUMERICS).nchwc_block, 9, 9)
    quantized, _ = test_onnx_float_groups._gap_model(1, shape, True, False, "AveragePool", 0.03, **attrs)
    model, oracle = model_and_oracle(quantized, NUMERICS)
    compiled = compile_program(plan(model.graph, scratch_requests))
    rng = np.random.default_rng(2)
    for _ in range(10):
        x = rng.normal(0, 2, shape).astype(np.float32)
        assert all(e.tobytes() == a.tobytes() for e, a in zip(oracle([x]), compiled([x])))
