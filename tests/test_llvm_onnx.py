"""ONNX models (the IR's "onnxruntime" rounding rule) through the llvm backend, byte for
byte against onnxruntime.

1. The hypothesis layer tests of test_onnx_layers (conv/depthwise/grouped, Gemm/MatMul,
   Add/Mul with a one-element operand, average pools with and without padding counted,
   elementwise tables, QLinearConcat, Pad, Resize, Transpose/Reshape, softmax in both
   operator forms), each run with the llvm backend standing in for the reference
   interpreter: the same generated layers, compared with onnxruntime.
2. Whole networks (onnx_models: MobileNetV2, ResNet, DS-CNN, MLP, a MobileNetV3 block)
   quantized by onnxruntime in QDQ and operator formats with int8 and uint8 activations.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
import onnx_models  # noqa: E402
import test_onnx_layers  # noqa: E402

from mcuc.backends.llvm import ROUNDING_RULES, compile_program, scratch_requests  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.passes import plan  # noqa: E402
from mcuc.verify import verify  # noqa: E402

LAYER_TESTS = ("test_conv", "test_gemm_and_matmul", "test_add_and_mul", "test_global_average_pool",
               "test_average_pool", "test_max_pool_and_flatten", "test_elementwise_tables",
               "test_concat_requantizes_inputs", "test_pad", "test_resize_nearest", "test_transpose", "test_reshape_across_layouts",
               "test_softmax", "test_qlinear_softmax_int8_operator", "test_quantize_linear_on_ties", "test_qlinear_add_every_input_pair")


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


@pytest.mark.parametrize("name", LAYER_TESTS)
def test_onnx_layers_on_llvm(name, monkeypatch):
    monkeypatch.setattr(test_onnx_layers, "run", run_on_llvm)
    test = getattr(test_onnx_layers, name)
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
