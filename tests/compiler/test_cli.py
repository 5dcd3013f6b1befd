"""The `mcuc` command line as a user meets it: figures, JSON shapes, exit codes, and
one-line errors (no tracebacks) for bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcuc.cli import main
from tests.support.paths import REPO_ROOT, shared_model_path
from tests.support.tflite_builder import single_op_model

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_counts_mcunet_vww1_macs(capsys):
    path = shared_model_path("mcunet_vww1")
    code, out, _ = run_cli(capsys, "inspect", str(path), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["macs"] == 11_578_816
    assert len(report["ops"]) == 63
    conv = [r for r in report["ops"] if r["kind"] == "CONV_2D"]
    assert conv and all(r["macs"] > 0 and r["weight_bytes"] > 0 for r in conv)
    # the table form carries the same total
    code, out, _ = run_cli(capsys, "inspect", str(path))
    assert "11,578,816" in out


def test_inspect_live_bytes_are_inputs_plus_outputs(capsys):
    code, out, _ = run_cli(capsys, "inspect", str(EXAMPLE), "--json")
    first = json.loads(out)["ops"][0]
    in_bytes = sum(int(np.prod(s)) for s in first["inputs"])
    out_bytes = sum(int(np.prod(s)) for s in first["outputs"])
    assert first["activation_bytes"] == in_bytes + out_bytes  # int8 tensors


def test_verify_json_shape_and_exit_code(capsys):
    code, out, _ = run_cli(capsys, "verify", str(EXAMPLE), "--backends", "reference", "--samples", "2", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["model"] == "mobilenet_tiny_int8" and report["samples"] == 2
    assert report["backends"] == {"reference": {"bit_exact": True, "max_abs_diff": 0}}


def test_verify_exits_1_when_a_backend_differs(capsys, monkeypatch):
    """A backend that is off by one in one byte must fail verification."""
    import mcuc.backend_registry as registry

    def off_by_one(model, options):
        built = registry._reference(model, options)

        def wrong(inputs):
            outs = built.run(inputs)
            outs[0] = outs[0].copy()
            outs[0].flat[0] = np.int8(outs[0].flat[0] ^ 1)
            return outs
        return registry.Built(wrong, built.plan)

    monkeypatch.setitem(registry._FACTORIES, "reference", off_by_one)
    code, out, _ = run_cli(capsys, "verify", str(EXAMPLE), "--backends", "reference", "--samples", "1", "--json")
    report = json.loads(out)
    assert code == 1
    assert report["backends"]["reference"]["bit_exact"] is False
    assert report["backends"]["reference"]["max_abs_diff"] == 1


def test_run_writes_the_reference_output(tmp_path, capsys):
    from mcuc.ir.interpreter import run
    from mcuc.model import load_model

    model = load_model(EXAMPLE)
    x = np.random.default_rng(3).integers(-128, 128, model.graph.inputs[0].shape, dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    code, _, _ = run_cli(capsys, "run", str(EXAMPLE), "--input", str(tmp_path / "x.npy"),
                         "--output", str(tmp_path / "y.npy"))
    assert code == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), run(model.graph, [x])[0])


@pytest.mark.parametrize("content, message", [
    (b"", "truncated"),
    (b"this is not a model at all" * 4, "TFL3"),
])
def test_malformed_model_is_one_line_error(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(content)
    code, out, err = run_cli(capsys, "inspect", str(bad))
    assert code == 2 and out == ""
    assert err.startswith("mcuc: error:") and err.count("\n") == 1
    assert message.lower() in err.lower()


def test_missing_file_and_bad_input_are_errors(tmp_path, capsys):
    code, _, err = run_cli(capsys, "inspect", str(tmp_path / "nope.tflite"))
    assert code == 2 and "does not exist" in err
    np.save(tmp_path / "x.npy", np.zeros((1, 48, 48, 3), np.float32))
    code, _, err = run_cli(capsys, "run", str(EXAMPLE), "--input", str(tmp_path / "x.npy"),
                           "--output", str(tmp_path / "y.npy"))
    assert code == 2 and "must be int8" in err


def test_unsupported_op_names_the_op(tmp_path, capsys):
    from tests.support.tflite_builder import ModelBuilder

    mb = ModelBuilder()
    x = mb.tensor("x", (1, 4), scale=0.1, zero_point=0)
    y = mb.tensor("y", (1, 4), scale=0.1, zero_point=0)
    mb.op("NEG", [x], [y])
    bad = tmp_path / "neg.tflite"
    bad.write_bytes(mb.build([x], [y]))
    code, _, err = run_cli(capsys, "verify", str(bad))
    assert code == 2 and "NEG" in err and "op 0" in err


def test_console_script_has_no_traceback(tmp_path):
    """The installed entry point, as a user runs it, prints no traceback on bad input."""
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    proc = subprocess.run([sys.executable, "-m", "mcuc", "inspect", str(bad)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("mcuc: error:")


def test_closed_stdout_is_quiet_not_a_traceback():
    """`mcuc inspect MODEL | head`: a reader that leaves before mcuc writes gets no
    traceback on stderr (the pipe is closed before the model has even loaded)."""
    proc = subprocess.Popen([sys.executable, "-m", "mcuc", "inspect", str(EXAMPLE)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO_ROOT)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in stderr, stderr


def test_ops_lists_what_mcuc_reads(capsys):
    """`mcuc ops`: every TFLite builtin and ONNX op type the frontends read, as text and
    JSON (what an unsupported-op message points to)."""
    import json

    from mcuc.cli import main
    from mcuc.frontend.onnx import supported_onnx_ops
    from mcuc.frontend.tflite import supported_builtins

    assert main(["ops"]) == 0
    text = capsys.readouterr().out
    assert f"TFLite builtins ({len(supported_builtins())}):" in text
    assert all(name in text for name in supported_builtins())
    assert all(name in text for group in supported_onnx_ops().values() for name in group)
    assert main(["ops", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == {"tflite": supported_builtins(), "onnx": supported_onnx_ops()}
    assert "CONV_2D" in listed["tflite"] and "QLinearConv" in listed["onnx"]["qoperator"]
