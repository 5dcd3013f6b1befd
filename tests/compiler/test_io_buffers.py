"""`--io-buffers caller` end to end: every backend (reference program interpreter, llvm,
c-host, emulated Cortex-M4) runs the graph inputs and outputs in buffers of their own and
gives tflite-micro's bytes, layer by layer and with `--patch auto`; the CLI and the API
agree on the option, and the generated folder says how to call it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np

import mcuc
from mcuc.cli import main
from tests.support.paths import shared_model_path

HAVE_GCC = shutil.which("gcc") is not None and shutil.which("make") is not None
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("make") is not None


def exact(report: dict) -> dict[str, bool]:
    return {name: entry["bit_exact"] for name, entry in report["backends"].items()}


def test_every_backend_bit_exact_with_caller_buffers():
    backends = ["reference", "llvm", *(["c-host"] if HAVE_GCC else []), *(["cortex-m4"] if HAVE_ARM else [])]
    for model in ("ad01_int8", "vww_96_int8"):
        report = mcuc.verify(shared_model_path(model), backends, samples=2, io_buffers="caller")
        assert exact(report) == dict.fromkeys(backends, True), model


def test_patch_auto_with_caller_buffers_on_mcunet_vww1():
    """The --patch auto schedule the Cortex-M4 runs (one search), run by the reference
    program interpreter and on the emulated core, against tflite-micro."""
    from mcuc.ir.program_interpreter import run_program
    from mcuc.model import load_model
    from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
    from mcuc.samples import random_inputs
    from mcuc.verify import EdgeOracle

    model = load_model(shared_model_path("mcunet_vww1"))
    options = CompileOptions(io="int8", patch="auto", io_buffers="caller")
    program = schedule(model.graph, options, cortexm_scratch("cortex-m4"))
    assert program.notes["schedule"] and len(program.caller_buffers) == 2
    inputs = random_inputs(program.graph, np.random.default_rng(0))
    expected = EdgeOracle(model, program.graph)(inputs)
    runs = {"reference": run_program(program, inputs)}
    if HAVE_ARM:
        from mcuc.backends.cortexm import run_cortexm

        runs["cortex-m4"] = run_cortexm(program, inputs, "cortex-m4", count_instructions=False).outputs
    for name, got in runs.items():
        assert all(np.array_equal(a, b) for a, b in zip(got, expected)), name


def test_cli_compile_writes_the_caller_api(tmp_path, capsys):
    path = shared_model_path("ad01_int8")
    assert main(["compile", str(path), "-o", str(tmp_path / "a"), "--io-buffers", "caller", "--arena", "caller",
                 "--name", "ad01", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["io_buffers"] == "caller" and report["inputs"][0]["offset"] is None
    header = (tmp_path / "a" / "model.h").read_text()
    assert "int ad01_invoke_io(void *arena, const void *const inputs[], void *const outputs[]);" in header
    assert "#define AD01_ERROR_IO (-2)" in header and "#define AD01_IO_ALIGN 4u" in header
    assert "ad01_input(" not in header
    assert "ad01_invoke_io" in (tmp_path / "a" / "README.md").read_text()
    arena = mcuc.compile_to_directory(path, tmp_path / "b", name="ad01")
    assert report["arena_bytes"] < arena["arena_bytes"]
    done = subprocess.run([sys.executable, "-m", "mcuc", "compile", str(path), "-o", str(tmp_path / "c"),
                           "--io-buffers", "heap"], capture_output=True, text=True)
    assert done.returncode == 2 and "--io-buffers" in done.stderr and "Traceback" not in done.stderr


def test_api_and_cli_agree_on_io_buffers(tmp_path, capsys):
    from tests.support.paths import REPO_ROOT

    example = str(REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite")
    assert main(["compile", example, "-o", str(tmp_path / "cli"), "--io-buffers", "caller", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    compiled = mcuc.compile(example, io_buffers="caller")  # llvm, with its own caller buffers
    compiled.write(tmp_path / "api")
    assert (tmp_path / "api" / "report.json").read_bytes() == (tmp_path / "cli" / "report.json").read_bytes()
    assert (tmp_path / "api" / "model.c").read_bytes() == (tmp_path / "cli" / "model.c").read_bytes()
    assert cli["io_buffers"] == "caller" and compiled.report["io_buffers"] == "caller"
    x = np.random.default_rng(0).integers(-128, 128, (1, 48, 48, 3), dtype=np.int8)
    assert np.array_equal(compiled(x), mcuc.compile(example)(x))
    assert mcuc.plan(example, io_buffers="caller")["layer_by_layer_bytes"] <= \
        mcuc.plan(example)["layer_by_layer_bytes"]
