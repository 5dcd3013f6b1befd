"""`--layout nhwc` for ONNX models: 4-D graph inputs and outputs are NHWC at the API,
with no TRANSPOSE at the edges, and every backend still equals onnxruntime (which runs the
NCHW model; the oracle moves 4-D tensors between the layouts). Wrong-layout data and
`--layout nchw` on a .tflite model are clear errors."""
from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("onnxruntime")
from tests.support import onnx_models  # noqa: E402

import mcuc  # noqa: E402
from mcuc.api import verify as api_verify  # noqa: E402  (mcuc.verify is also the module's name)
from mcuc.cli import main  # noqa: E402
from mcuc.ir.errors import MCUCError  # noqa: E402
from mcuc.ir.interpreter import run  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.oracle_onnx import OnnxOracle  # noqa: E402
from mcuc.pipeline import CompileOptions, prepare  # noqa: E402
from mcuc.verify import verify  # noqa: E402
from tests.support.paths import REPO_ROOT  # noqa: E402

TFLITE_EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"
BACKENDS = ["reference", "llvm", "c-host"]
# A non-square input with C != H != W: a tensor in the wrong layout has another shape.
INPUT_NCHW = (1, 3, 12, 10)
INPUT_NHWC = (1, 12, 10, 3)
OUTPUT_NHWC = (1, 6, 5, 4)
FORMATS = [("qdq", "int8"), ("qdq", "uint8"), ("qoperator", "int8"), ("qoperator", "uint8")]


def _conv_net(rng: np.random.Generator, end_transposed: bool = False):
    """A float conv net whose output is 4-D: stem conv s2 + ReLU6, depthwise + ReLU,
    pointwise projection (and, if asked, a Transpose to NHWC order as the last node)."""
    net = onnx_models._Net(rng, INPUT_NCHW)
    x = net.conv("input", 3, 8, 3, stride=2, act="relu6")
    x = net.conv(x, 8, 8, 3, group=8)
    x = net.conv(x, 8, 4, 1, act=None, pad=0)
    if end_transposed:
        x = net.node("Transpose", [x], perm=[0, 2, 3, 1])
    return net.model(x, "conv_net")


@lru_cache(maxsize=None)
def _quantized(network: str, fmt: str, activations: str) -> bytes:
    rng = np.random.default_rng(5)
    model = {"conv_net": lambda: _conv_net(rng), "conv_net_transposed": lambda: _conv_net(rng, True),
             **{name: lambda name=name: onnx_models.NETWORKS[name](rng) for name in onnx_models.NETWORKS}}[network]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnx_models.quantize(model, fmt, activations, seed=2)


def _kinds(graph) -> list[str]:
    return [op.kind for op in graph.ops]


def _assert_bit_exact(report: dict) -> None:
    assert all(v["bit_exact"] for v in report["backends"].values()), report


@pytest.mark.parametrize("fmt, activations", FORMATS)
def test_nhwc_edges_have_no_transpose_and_every_backend_matches_onnxruntime(fmt, activations):
    model = load_model(_quantized("conv_net", fmt, activations), format="onnx", layout="nhwc")
    assert model.layout == "nhwc"
    assert "TRANSPOSE" not in _kinds(model.graph)
    assert [t.shape for t in model.graph.inputs] == [INPUT_NHWC]
    assert [t.shape for t in model.graph.outputs] == [OUTPUT_NHWC]
    # The default keeps the model's NCHW API, with one TRANSPOSE at each 4-D edge.
    nchw = load_model(_quantized("conv_net", fmt, activations), format="onnx")
    assert _kinds(nchw.graph).count("TRANSPOSE") == 2
    assert [t.shape for t in nchw.graph.inputs] == [INPUT_NCHW]
    _assert_bit_exact(verify(model, BACKENDS, samples=2, seed=3, options=CompileOptions(layout="nhwc")))


@pytest.mark.parametrize("fmt, activations", [("qdq", "int8"), ("qoperator", "uint8")])
def test_nhwc_together_with_io_int8(fmt, activations):
    """--io int8 --layout nhwc: the API takes and gives int8 NHWC, the graph is the
    compute ops alone, and the oracle still runs the float NCHW model."""
    options = CompileOptions(io="int8", layout="nhwc")
    model = load_model(_quantized("conv_net", fmt, activations), format="onnx", layout="nhwc")
    compiled = prepare(model.graph, options)
    assert _kinds(compiled) == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    assert [(t.dtype, t.shape) for t in compiled.inputs] == [("int8", INPUT_NHWC)]
    assert [(t.dtype, t.shape) for t in compiled.outputs] == [("int8", OUTPUT_NHWC)]
    _assert_bit_exact(verify(model, BACKENDS, samples=2, seed=4, options=options))


@pytest.mark.parametrize("network, fmt, activations", [("mobilenet_v3_block", "qdq", "int8"),
                                                       ("mobilenet_v3_block", "qoperator", "uint8"),
                                                       ("kws_ds_cnn", "qdq", "uint8")])
def test_nhwc_networks_match_onnxruntime(network, fmt, activations):
    """Whole networks (Concat, Resize, Pad, pooling, residual Mul, a non-square input)
    with their input NHWC: no TRANSPOSE anywhere, byte-exact on every host backend."""
    model = load_model(_quantized(network, fmt, activations), format="onnx", layout="nhwc")
    assert "TRANSPOSE" not in _kinds(model.graph)
    _assert_bit_exact(verify(model, BACKENDS, samples=2, seed=5, options=CompileOptions(layout="nhwc")))


@settings(deadline=None, max_examples=6)
@given(seed=st.integers(0, 2**32 - 1), fmt_activations=st.sampled_from(FORMATS))
def test_nhwc_model_is_the_nchw_model_transposed(seed, fmt_activations):
    """The same input, given NCHW to the default model and NHWC to the --layout nhwc one,
    gives the same output bytes up to the same transpose."""
    data = _quantized("conv_net", *fmt_activations)
    nchw = load_model(data, format="onnx").graph
    nhwc = load_model(data, format="onnx", layout="nhwc").graph
    x = np.random.default_rng(seed).normal(0, 1.5, INPUT_NCHW).astype(np.float32)
    [y_nchw] = run(nchw, [x])
    [y_nhwc] = run(nhwc, [np.ascontiguousarray(x.transpose(0, 2, 3, 1))])
    assert y_nhwc.shape == OUTPUT_NHWC
    assert np.ascontiguousarray(y_nchw.transpose(0, 2, 3, 1)).tobytes() == y_nhwc.tobytes()


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_quantized_graph_input_and_output_in_nhwc(dtype):
    """An int8/uint8 graph input and output keep the model's dtype and take NHWC shapes;
    uint8 still moves onto int8 by exact QUANTIZE ops, and nothing is transposed."""
    model = load_model(onnx_models.qlinear_conv_model(dtype, 8, 6), format="onnx", layout="nhwc")
    assert [(t.dtype, t.shape) for t in model.graph.inputs] == [(dtype, (1, 8, 6, 3))]
    assert [(t.dtype, t.shape) for t in model.graph.outputs] == [(dtype, (1, 8, 6, 6))]
    assert "TRANSPOSE" not in _kinds(model.graph)
    _assert_bit_exact(verify(model, BACKENDS, samples=3, seed=6, options=CompileOptions(layout="nhwc")))


def test_a_4d_output_the_model_already_permuted_still_follows_the_one_rule():
    """Every 4-D output is the ONNX tensor moved to NHWC (what the oracle does too), even
    one the model's last Transpose gave in NHWC order: that edge alone keeps a TRANSPOSE."""
    model = load_model(_quantized("conv_net_transposed", "qdq", "int8"), format="onnx", layout="nhwc")
    onnx_shape = OUTPUT_NHWC  # the model's own output: Transpose(0, 2, 3, 1) of NCHW (1, 4, 6, 5)
    assert [t.shape for t in model.graph.outputs] == [tuple(onnx_shape[i] for i in (0, 2, 3, 1))]
    assert _kinds(model.graph).count("TRANSPOSE") == 1
    _assert_bit_exact(verify(model, ["reference"], samples=2, seed=7, options=CompileOptions(layout="nhwc")))


def test_wrong_layout_input_is_a_clear_error():
    data = _quantized("conv_net", "qdq", "int8")
    x_nchw = np.random.default_rng(0).normal(0, 1, INPUT_NCHW).astype(np.float32)
    compiled = mcuc.compile(data, backend="reference", layout="nhwc")
    with pytest.raises(MCUCError, match=r"expected shape \[1, 12, 10, 3\], layout NHWC, got \[1, 3, 12, 10\]; "
                                        r"it looks NCHW: transpose it with x.transpose\(0, 2, 3, 1\), or compile "
                                        r"the model with --layout nchw"):
        compiled(x_nchw)
    # The same data in the right layout runs, and equals onnxruntime's NCHW output transposed.
    x_nhwc = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
    [expected] = OnnxOracle(data)([x_nchw])
    assert compiled(x_nhwc).tobytes() == np.ascontiguousarray(expected.transpose(0, 2, 3, 1)).tobytes()
    # The default (NCHW) model given NHWC data points at --layout nhwc.
    with pytest.raises(MCUCError, match=r"expected shape \[1, 3, 12, 10\], layout NCHW.*it looks NHWC.*"
                                        r"--layout nhwc"):
        mcuc.compile(data, backend="reference")(x_nhwc)


def test_wrong_layout_input_on_the_command_line(tmp_path, capsys):
    model_path = tmp_path / "conv_net.onnx"
    # (int8: s8 x s8 sums are exact in every onnxruntime, so the CLI's default numerics match it here)
    model_path.write_bytes(_quantized("conv_net", "qoperator", "int8"))
    x = np.random.default_rng(1).normal(0, 1, INPUT_NCHW).astype(np.float32)
    np.save(tmp_path / "x_nchw.npy", x)
    np.save(tmp_path / "x_nhwc.npy", np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    code = main(["run", str(model_path), "--layout", "nhwc", "--input", str(tmp_path / "x_nchw.npy"),
                 "--output", str(tmp_path / "y.npy"), "--backend", "c-host"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "expected shape [1, 12, 10, 3], layout NHWC" in err and "Traceback" not in err
    code = main(["run", str(model_path), "--layout", "nhwc", "--input", str(tmp_path / "x_nhwc.npy"),
                 "--output", str(tmp_path / "y.npy"), "--backend", "c-host"])
    assert code == 0
    expected = OnnxOracle(model_path.read_bytes(), "nhwc")([np.load(tmp_path / "x_nhwc.npy")])[0]
    assert np.load(tmp_path / "y.npy").tobytes() == expected.tobytes()


def test_compile_states_the_shapes_in_the_chosen_layout(tmp_path, capsys):
    model_path = tmp_path / "conv_net.onnx"
    model_path.write_bytes(_quantized("conv_net", "qdq", "uint8"))
    for layout, in_shape, out_shape in (("nhwc", INPUT_NHWC, OUTPUT_NHWC), ("nchw", INPUT_NCHW, (1, 4, 6, 5))):
        out = tmp_path / layout
        assert main(["compile", str(model_path), "-o", str(out), "--layout", layout]) == 0
        header = (out / "model.h").read_text()
        assert f'float32[{"][".join(map(str, in_shape))}] {layout.upper()} */' in header
        assert f'float32[{"][".join(map(str, out_shape))}] {layout.upper()} */' in header
        report = json.loads((out / "report.json").read_text())
        assert [(t["shape"], t["layout"]) for t in report["inputs"]] == [(list(in_shape), layout.upper())]
        assert [(t["shape"], t["layout"]) for t in report["outputs"]] == [(list(out_shape), layout.upper())]
        assert ("TRANSPOSE" in {step["kind"] for step in report["memory"]}) == (layout == "nchw")
    capsys.readouterr()


def test_layout_nchw_on_a_tflite_model_is_an_error(tmp_path, capsys):
    with pytest.raises(MCUCError, match=r"--layout nchw: a \.tflite model is NHWC"):
        load_model(TFLITE_EXAMPLE, layout="nchw")
    with pytest.raises(MCUCError, match=r"--layout nchw: a \.tflite model is NHWC"):
        mcuc.compile(TFLITE_EXAMPLE, backend="reference", layout="nchw")
    code = main(["compile", str(TFLITE_EXAMPLE), "-o", str(tmp_path / "out"), "--layout", "nchw"])
    err = capsys.readouterr().err
    assert code == 2 and "a .tflite model is NHWC" in err and "Traceback" not in err


def test_layout_nhwc_on_a_tflite_model_changes_nothing():
    default, nhwc = load_model(TFLITE_EXAMPLE), load_model(TFLITE_EXAMPLE, layout="nhwc")
    assert nhwc.layout == default.layout == "nhwc"
    assert [t.shape for t in nhwc.graph.inputs] == [t.shape for t in default.graph.inputs]
    assert _kinds(nhwc.graph) == _kinds(default.graph)
    _assert_bit_exact(verify(nhwc, ["reference"], samples=2, options=CompileOptions(layout="nhwc")))


def test_unknown_layout_is_an_error():
    with pytest.raises(MCUCError, match="unknown --layout 'nwhc'; choose nchw or nhwc"):
        CompileOptions(layout="nwhc")
    with pytest.raises(MCUCError, match="unknown --layout 'nwhc'; choose nchw or nhwc"):
        load_model(_quantized("conv_net", "qdq", "int8"), format="onnx", layout="nwhc")


def test_verify_reads_the_model_again_in_the_layout_asked():
    """A Model loaded NCHW and verified with layout="nhwc" is checked in NHWC."""
    report = api_verify(load_model(_quantized("conv_net", "qdq", "int8"), format="onnx"), ["reference"],
                         samples=2, layout="nhwc")
    _assert_bit_exact(report)
    compiled = mcuc.compile(load_model(_quantized("conv_net", "qdq", "int8"), format="onnx"), backend="reference",
                            layout="nhwc")
    assert [t.shape for t in compiled.inputs] == [INPUT_NHWC]
