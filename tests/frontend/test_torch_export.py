"""The PyTorch path end to end, as a user takes it: MobileNetV2 (width 0.35) and MNASNet
(depth 0.5) in torch.nn (tests/support/torch_models.py) at 96x96 with random weights,
exported by torch.onnx (both exporters), `mcuc compile --calibrate` on random calibration
data, then `mcuc verify` of the quantized model mcuc wrote: byte-exact against onnxruntime running that model. The generated C
settles the layout at the input: no transpose runs between convolutions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the PyTorch path needs torch (mcuc's test extra installs it)")
from tests.support import torch_models  # noqa: E402

from mcuc.calibrate import quantized_path_for  # noqa: E402
from mcuc.cli import main  # noqa: E402

CASES = [(network, exporter) for network in torch_models.NETWORKS for exporter in torch_models.EXPORTERS]
HOST_BACKENDS = "reference,llvm,c-host"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(network, exporter) -> (output directory, quantized .onnx) of `mcuc compile
    --calibrate --target cortex-m4`, built once per module."""
    cache: dict[tuple[str, str], tuple[Path, Path]] = {}

    def get(network: str, exporter: str) -> tuple[Path, Path]:
        if (network, exporter) not in cache:
            work = tmp_path_factory.mktemp(f"{network}-{exporter}")
            model = torch_models.export(network, exporter, work / f"{network}.onnx")
            samples = torch_models.calibration_samples(work / "calibration.npy")
            out = work / "build"
            code = main(["compile", str(model), "--calibrate", str(samples), "-o", str(out),
                         "--target", "cortex-m4"])
            assert code == 0
            cache[(network, exporter)] = (out, quantized_path_for(model, out))
        return cache[(network, exporter)]
    return get


def _verify(capsys, model: Path, backends: str, samples: int) -> dict:
    capsys.readouterr()
    code = main(["verify", str(model), "--backends", backends, "--samples", str(samples), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if all(v["bit_exact"] for v in report["backends"].values()) else 1)
    return report


@pytest.mark.parametrize("network,exporter", CASES)
def test_pytorch_model_is_bit_exact_with_onnxruntime(compiled, capsys, network, exporter):
    _, quantized = compiled(network, exporter)
    assert quantized.is_file(), "--calibrate must leave the quantized model for the user to inspect"
    report = _verify(capsys, quantized, HOST_BACKENDS, samples=2)
    assert set(report["backends"]) == set(HOST_BACKENDS.split(","))
    for backend, verdict in report["backends"].items():
        assert verdict["bit_exact"] and verdict["max_abs_diff"] == 0, (backend, verdict)


def test_pytorch_model_is_bit_exact_on_cortex_m4(compiled, capsys):
    """The firmware build itself, run in the emulator (one network, one sample: the
    host backends above cover the rest in CI; benchmarks/ measures every core)."""
    _, quantized = compiled("mnasnet0_5", "dynamo")
    report = _verify(capsys, quantized, "cortex-m4", samples=1)
    assert report["backends"]["cortex-m4"]["bit_exact"], report


@pytest.mark.parametrize("network,exporter", CASES)
def test_generated_c_has_no_transpose_between_convolutions(compiled, network, exporter):
    out, _ = compiled(network, exporter)
    steps = torch_models.invoked_steps((out / "model.c").read_text())
    assert sum(kind in ("CONV_2D", "DEPTHWISE_CONV_2D") for kind in steps) == 52, steps
    assert torch_models.transposes_between_convolutions(steps) == 0, steps
    assert steps.count("TRANSPOSE") <= 1, steps  # the NCHW image once, at the input; the logits are 2-D


def test_step_parser_sees_a_transpose_between_convolutions():
    """The check above can fail: a transpose between two convolutions is found."""
    fake = "int m_invoke(void)\n{\n" + "".join(
        f"    /* step {i}: {kind}(x) */\n" for i, kind in enumerate(["QUANTIZE", "CONV_2D", "TRANSPOSE", "CONV_2D"]))
    steps = torch_models.invoked_steps(fake)
    assert steps == ["QUANTIZE", "CONV_2D", "TRANSPOSE", "CONV_2D"]
    assert torch_models.transposes_between_convolutions(steps) == 1
