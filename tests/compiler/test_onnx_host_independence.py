"""What mcuc compiles for an ONNX model depends on the model and the options only: not on
the CPU, the environment or the onnxruntime of the machine that compiles. And `mcuc
verify`'s rule for onnxruntime differences: explained by this host's kernels, or a failure.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from tests.support import onnx_models  # noqa: E402
from tests.support.onnx_oracle import as_this_host  # noqa: E402
from tests.support.paths import REPO_ROOT  # noqa: E402

from mcuc.frontend.onnx_numerics import EXACT, ORT_X86_AVX2, OnnxNumerics, parse_onnx_numerics  # noqa: E402
from mcuc.ir.errors import MCUCError  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.oracle_onnx import host_numerics  # noqa: E402
from mcuc.verify import verify  # noqa: E402

REPO = REPO_ROOT
SOURCE_FOLDERS = ("compiler", "frontend", "ir", "passes", "backends")


def _model(network: str = "resnet", activations: str = "int8") -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onnx_models.quantize(onnx_models.NETWORKS[network](np.random.default_rng(7)), "qdq", activations,
                                    seed=1)


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("numerics", ["exact", "ort-x86-avx2"])
def test_compiled_folder_is_the_same_whatever_the_environment_says(tmp_path, numerics):
    """`mcuc compile` in fresh processes under the environment variables that used to
    steer the numerics (and a fake CPU count): byte-identical folders."""
    model = tmp_path / "resnet.onnx"
    model.write_bytes(_model())
    folders = []
    for i, env in enumerate([{}, {"MCUC_ONNXRUNTIME_HOST": "x86-avx2", "MCUC_ONNXRUNTIME_THREADS": "7"},
                             {"MCUC_ONNXRUNTIME_HOST": "exact", "MCUC_ONNXRUNTIME_THREADS": "1",
                              "OMP_NUM_THREADS": "3"}]):
        out = tmp_path / f"out{i}"
        subprocess.run([sys.executable, "-m", "mcuc", "compile", str(model), "-o", str(out), "--target", "cortex-m4",
                        "--onnx-numerics", numerics], check=True, capture_output=True,
                       env={**os.environ, **env}, cwd=tmp_path)
        folders.append(_folder_bytes(out))
    assert folders[0] and folders[0] == folders[1] == folders[2]
    assert b'"onnx_numerics": "%s"' % numerics.encode() in folders[0]["report.json"]


@pytest.mark.parametrize("machine, flags", [("x86_64", {"avx2", "fma"}), ("x86_64", {"avx512f", "avx512_vnni"}),
                                            ("aarch64", {"asimd"})])
def test_compilation_never_asks_the_host(monkeypatch, machine, flags):
    """The host facts only the oracle reads, faked for another kind of machine: the
    compiled graph is the same, and compiling never calls them."""
    from mcuc import oracle_onnx

    data = _model("mobilenet_v3_block", "uint8")
    before = {n: load_model(data, format="onnx", onnx_numerics=n).graph for n in ("exact", "ort-x86-avx2")}

    def fake_facts(*_args, **_kwargs):
        raise AssertionError("compilation read the host")

    monkeypatch.setattr(oracle_onnx, "host_facts", fake_facts)
    monkeypatch.setattr(oracle_onnx, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(oracle_onnx.platform, "machine", lambda: machine)
    for name, graph in before.items():
        assert repr(load_model(data, format="onnx", onnx_numerics=name).graph) == repr(graph)


def test_only_the_oracle_reads_the_cpu_or_the_environment():
    """No module but compiler/oracle_onnx.py mentions /proc/cpuinfo, and no module reads
    an MCUC_ONNXRUNTIME_* variable or platform.machine() (names in code, not comments)."""
    offenders = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
            reads_host = any("cpuinfo" in s or s.startswith("MCUC_ONNXRUNTIME") for s in strings) or "machine" in attrs
            if reads_host and path.relative_to(REPO) != Path("compiler/oracle_onnx.py"):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_host_facts_name_what_onnxruntime_computes():
    """host_numerics for the kinds of host: x86 without VNNI saturates u8 x s8 pairs,
    AVX-512F has a 16-float NCHWc block, ARM neither."""
    assert host_numerics(EXACT, "x86_64", {"avx2", "fma"}) == OnnxNumerics(
        "exact as this host's onnxruntime runs it", False, True, 8, 1)
    assert host_numerics(ORT_X86_AVX2, "x86_64", {"avx2", "fma"}) == ORT_X86_AVX2
    vnni = host_numerics(ORT_X86_AVX2, "x86_64", {"avx512f", "avx512bw", "avx512_vnni"})
    assert (vnni.u8s8_pairs_saturate, vnni.nchwc_block) == (False, 16)
    assert host_numerics(EXACT, "aarch64", {"asimd", "asimddp"}) == EXACT
    assert host_numerics(EXACT, "x86_64", {"avx2", "avx_vnni"}) == EXACT


@pytest.mark.parametrize("text, message", [("fast", "unknown --onnx-numerics 'fast'"),
                                           ("exact:threads=2", "only ort-x86-avx2 takes a parameter"),
                                           ("ort-x86-avx2:threads=0", "threads=N with N >= 1"),
                                           ("ort-x86-avx2:cores=2", "threads=N")])
def test_bad_numerics_option_is_a_clear_error(text, message):
    with pytest.raises(MCUCError, match=message):
        parse_onnx_numerics(text)
    assert parse_onnx_numerics("ort-x86-avx2:threads=4").threads == 4


def _saturating_uint8_conv() -> bytes:
    """A uint8 QDQ 1x1 conv whose int16 pair sums overflow for large inputs."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.float32(0.05), "xs"), numpy_helper.from_array(np.uint8(0), "xz"),
             numpy_helper.from_array(np.full((4, 8, 1, 1), 127, np.int8), "w"),
             numpy_helper.from_array(np.full(4, 0.01, np.float32), "ws"), numpy_helper.from_array(np.zeros(4, np.int8), "wz"),
             numpy_helper.from_array(np.float32(2.0), "ys"), numpy_helper.from_array(np.uint8(0), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "xs", "xz"], ["d"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["d", "wd"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["y"]),
             helper.make_node("DequantizeLinear", ["y", "ys", "yz"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 3, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 3, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_verify_explains_this_hosts_pair_saturation(monkeypatch):
    """exact numerics on a host whose onnxruntime saturates u8 x s8 pairs: verify reports
    the differing bytes and passes, because the reference with saturating pairs equals
    onnxruntime byte for byte."""
    if not as_this_host(EXACT).u8s8_pairs_saturate:
        pytest.skip("onnxruntime on this host sums u8 x s8 products exactly: nothing to explain")
    import mcuc.verify as verify_module

    # Inputs of 240: each pair of products is 2 x 240 x 127 > 32767.
    monkeypatch.setattr(verify_module, "random_inputs", lambda graph, rng: [np.full((1, 8, 3, 3), 12.0, np.float32)])
    report = verify(load_model(_saturating_uint8_conv(), format="onnx"), ["reference"], samples=1)
    ort = report["onnxruntime"]
    assert not ort["equal"] and ort["ok"] and ort["differing_bytes"] > 0, report
    assert "saturating int16 pairs" in ort["explained_by"]
    assert report["backends"]["reference"]["bit_exact"]


def test_verify_fails_on_a_difference_the_host_does_not_explain(monkeypatch, tmp_path):
    """A deliberately broken requantization (one step up): the reference differs from
    onnxruntime, the host's kernels cannot explain it, verify fails and exits 1."""
    from mcuc.cli import main
    from mcuc.ir import ort_numerics

    data = _model("kws_ds_cnn", "int8")
    (tmp_path / "m.onnx").write_bytes(data)
    assert main(["verify", str(tmp_path / "m.onnx"), "--backends", "reference", "--samples", "2"]) == 0
    original = ort_numerics.requantize_output

    def off_by_one(*args, **kwargs):
        out = np.asarray(original(*args, **kwargs))
        return np.clip(out.astype(np.int64) + 1, np.iinfo(out.dtype).min, np.iinfo(out.dtype).max).astype(out.dtype)

    monkeypatch.setattr(ort_numerics, "requantize_output", off_by_one)
    report = verify(load_model(data, format="onnx"), ["reference"], samples=2)
    assert not report["onnxruntime"]["ok"] and "explained_by" not in report["onnxruntime"], report
    assert not report["backends"]["reference"]["bit_exact"]
    assert main(["verify", str(tmp_path / "m.onnx"), "--backends", "reference", "--samples", "2"]) == 1
