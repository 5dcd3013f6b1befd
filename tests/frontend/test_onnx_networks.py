"""Whole networks built in the test process, quantized by onnxruntime.quantization in QDQ
and operator-oriented formats with int8 and uint8 activations, then compared byte for
byte with onnxruntime (mcuc.verify) on the reference interpreter and, where a backend
declares the onnxruntime rounding rule, on that backend too."""
from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from tests.support import onnx_models  # noqa: E402

from tests.support.onnx_oracle import as_this_host  # noqa: E402

from mcuc.frontend.onnx_numerics import ORT_X86_AVX2  # noqa: E402
from mcuc.ir.numerics import OrtFloat  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.verify import verify  # noqa: E402

FORMATS = ("qdq", "qoperator")
ACTIVATIONS = ("int8", "uint8")
# Backends outside the reference interpreter run ONNX models once they list "onnxruntime"
# in their module's ROUNDING_RULES (the rule family of ir/numerics.py).
OTHER_BACKENDS = {"llvm": "mcuc.backends.llvm", "c-host": "mcuc.backends.cortexm"}


@pytest.fixture(scope="module")
def quantized():
    cache: dict[tuple[str, str, str, bool], bytes] = {}

    def get(network: str, fmt: str, activations: str, reduce_range: bool = False) -> bytes:
        key = (network, fmt, activations, reduce_range)
        if key not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = onnx_models.NETWORKS[network](np.random.default_rng(7))
                cache[key] = onnx_models.quantize(model, fmt, activations, seed=1, reduce_range=reduce_range)
        return cache[key]
    return get


NUMERICS = ("exact", "ort-x86-avx2:threads=2")


@pytest.mark.parametrize("numerics", NUMERICS)
@pytest.mark.parametrize("activations", ACTIVATIONS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("network", sorted(onnx_models.NETWORKS))
def test_network_bit_exact_on_reference(quantized, network, fmt, activations, numerics):
    """Full-range int8 weights (quantize_static's default). exact: int8 QDQ on int8,
    exact sums, on every host (where this CPU's u8 x s8 kernels saturate int16 pairs,
    verify proves the difference is exactly that); ort-x86-avx2: int8 QDQ as uint8,
    saturating pairs, unfused groups in float, checked where onnxruntime runs so."""
    as_this_host(numerics)
    model = load_model(quantized(network, fmt, activations), format="onnx", onnx_numerics=numerics)
    report = verify(model, ["reference"], samples=4, seed=3)
    assert report["backends"]["reference"]["bit_exact"], report
    if activations == "int8":  # s8 x s8 sums are exact everywhere: no host difference to explain
        assert report["onnxruntime"]["equal"] or numerics != "exact", report


def _declares_onnxruntime(backend: str) -> bool:
    try:
        module = importlib.import_module(OTHER_BACKENDS[backend])
    except ImportError:
        return False
    return "onnxruntime" in getattr(module, "ROUNDING_RULES", ())


@pytest.mark.parametrize("backend", sorted(OTHER_BACKENDS))
@pytest.mark.parametrize("network", sorted(onnx_models.NETWORKS))
def test_network_bit_exact_on_backend(quantized, network, backend):
    if not _declares_onnxruntime(backend):
        pytest.skip(f"backend {backend} does not declare the onnxruntime rounding rule "
                    f"({OTHER_BACKENDS[backend]}.ROUNDING_RULES)")
    # 7-bit weights (quantize_static's reduce_range): the weights' other quantization.
    # Every format x activations combination with full-range weights runs on llvm in
    # tests/backends/llvm/test_llvm_onnx.py and on c-host in tests/backends/cortexm/test_cortexm_onnx.py.
    model = load_model(quantized(network, "qdq", "uint8", reduce_range=True), format="onnx")
    report = verify(model, [backend], samples=2, seed=5)
    assert report["backends"][backend]["bit_exact"], report


def test_onnxruntime_runs_shared_int8_qdq_ops_in_float(quantized, tmp_path):
    """With session.qdqisint8allowed=0 (x86 builds' default) onnxruntime's optimized graph
    of an int8 QDQ residual network keeps float Conv/Add nodes next to fused ones, and the
    frontend with --onnx-numerics ort-x86-avx2 marks the same groups OrtFloat (if this
    fails, onnxruntime changed how it converts int8 QDQ pairs)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.qdqisint8allowed", "0")
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(quantized("resnet", "qdq", "int8"), options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(str(tmp_path / "optimized.onnx")).graph.node
    float_convs = sum(n.op_type == "Conv" and n.domain == "" for n in nodes)
    fused_convs = sum(n.op_type == "QLinearConv" for n in nodes)
    float_adds = sum(n.op_type == "Add" and n.domain == "" for n in nodes)
    graph = load_model(quantized("resnet", "qdq", "int8"), format="onnx", onnx_numerics=ORT_X86_AVX2).graph
    ours = [op for op in graph.ops if op.kind == "CONV_2D"]
    assert float_convs == sum(isinstance(op.attrs.numerics, OrtFloat) for op in ours) > 0
    assert fused_convs == sum(not isinstance(op.attrs.numerics, OrtFloat) for op in ours) > 0
    assert float_adds == sum(isinstance(op.attrs.numerics, OrtFloat) for op in graph.ops if op.kind == "ADD") > 0


def test_mobilenet_runs_nhwc_without_transposes_between_convolutions(quantized):
    """The layout is settled at import: TRANSPOSE only right after the input's QUANTIZE
    and right before the output's DEQUANTIZE (none here: the output is 2-D)."""
    graph = load_model(quantized("mobilenet_v2", "qdq", "int8"), format="onnx").graph
    kinds = [op.kind for op in graph.ops]
    assert kinds[:2] == ["QUANTIZE", "TRANSPOSE"]
    assert "TRANSPOSE" not in kinds[2:]
    assert kinds.count("CONV_2D") >= 10 and kinds.count("DEPTHWISE_CONV_2D") >= 5 and "ADD" in kinds
    assert all(getattr(op.attrs, "rounding", "onnxruntime") == "onnxruntime" for op in graph.ops)


@pytest.mark.parametrize("activations", ACTIVATIONS)
@pytest.mark.parametrize("network", sorted(onnx_models.NETWORKS))
def test_every_intermediate_tensor_matches(quantized, network, activations):
    """Operator-oriented models keep every quantized tensor as a real onnxruntime value:
    each one, not only the outputs, equals the reference interpreter's (a wrong op that a
    later saturation hides still fails here)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from mcuc.frontend.onnx import NHWC_TO_NCHW, OnnxImporter
    from mcuc.ir.interpreter import run

    data = quantized(network, "qoperator", activations)
    importer = OnnxImporter(onnx.load_from_string(data), "nchw", as_this_host("exact"))  # operator nodes: no QDQ choice
    graph = importer.run()
    names = [k for k, v in importer.values.items() if v.qparams is not None]
    exposed = onnx.load_from_string(data)
    for n in names:
        exposed.graph.output.append(helper.make_empty_tensor_value_info(n))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(11).normal(0, 1, onnx_models.input_shape(exposed)).astype(np.float32)
    theirs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {exposed.graph.input[0].name: x})))
    ours = {}
    run(graph, [x], observe=lambda op, ys: ours.update({op.outputs[0]: ys[0]}))
    compared = 0
    for n in names:
        value = importer.values[n]
        if value.tensor not in ours:
            continue  # a graph input's QUANTIZE result is compared through its consumers
        mine = ours[value.tensor].transpose(NHWC_TO_NCHW) if value.nchw else ours[value.tensor]
        offset = 128 if value.qparams.dtype == "uint8" else 0
        expected = theirs[n].astype(np.int64) - offset
        assert expected.shape == mine.shape and np.array_equal(expected, mine.astype(np.int64)), n
        compared += 1
    assert compared >= 3
