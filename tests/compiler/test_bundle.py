"""A folder of several models (`mcuc compile A B ... -o DIR`, compiler/bundle.py): names
from the files or --name, clashes refused before anything is written, the shared arena's
figures, the refusal of a model that keeps state, the API equal to the CLI, a folder
compiled again without stale files, and the C warning-free under strict flags. The
firmware built from such a folder runs in tests/backends/cortexm/test_firmware_bundle.py.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import pytest

import mcuc
from mcuc.backends.cortexm import bundle as cortexm_bundle
from mcuc.cli import main
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import Trait, kinds_with
from mcuc.model import load_model
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
from tests.ir.test_ops_svdf import Layer, svdf_model
from tests.support.paths import shared_model_path

STRICT = ("-Wall", "-Wextra", "-Wconversion", "-Wshadow", "-Wcast-align", "-Wpedantic", "-std=c99", "-Werror")


@pytest.fixture(scope="module")
def hello():
    return shared_model_path("hello_world_int8.tflite")


@pytest.fixture(scope="module")
def ad01():
    return shared_model_path("ad01_int8.tflite")


def test_names_clash_is_an_error_naming_both_files(tmp_path, hello, capsys):
    for folder, stem in (("a", "net"), ("b", "Net")):
        (tmp_path / folder).mkdir()
        shutil.copyfile(hello, tmp_path / folder / f"{stem}.tflite")
    a, b = str(tmp_path / "a" / "net.tflite"), str(tmp_path / "b" / "Net.tflite")
    out = tmp_path / "out"
    assert main(["compile", a, b, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert a in err and b in err and "--name" in err and "Traceback" not in err
    assert not out.exists()  # refused before anything was written
    assert main(["compile", a, b, "-o", str(out), "--name", "net_a,net_b"]) == 0
    assert {"model_net_a.c", "model_net_b.h", "models.h"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize("extra, message", [
    (["--name", "one"], "--name gives 1 name for 2 models"),
    (["--name", "a,b,c"], "--name gives 3 names for 2 models"),
    (["--name", "x,int"], "C keyword"),
    (["--library", "hello_world_int8"], "the folder's library name"),
    (["--library", "model_ad01_int8"], "file name of the model"),
    (["--library", "2x"], "choose another --library"),
    (["--calibrate", "x.npy"], "--calibrate quantizes one float .onnx model"),
])
def test_bad_several_model_options_are_one_line_errors(tmp_path, hello, ad01, capsys, extra, message):
    assert main(["compile", str(hello), str(ad01), "-o", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_exclusive_and_library_need_several_models(tmp_path, hello, capsys):
    for extra in (["--exclusive"], ["--library", "lib"]):
        assert main(["compile", str(hello), "-o", str(tmp_path / "out"), *extra]) == 2
        assert "several models" in capsys.readouterr().err
    with pytest.raises(MCUCError, match="several models"):
        mcuc.compile_to_directory(hello, tmp_path / "out", exclusive=True)


def test_api_equals_cli_and_the_shared_arena_is_the_largest_plan(tmp_path, hello, ad01, capsys):
    assert main(["compile", str(hello), str(ad01), "-o", str(tmp_path / "cli"), "--exclusive", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    api = mcuc.compile_to_directory([hello, ad01], tmp_path / "api", exclusive=True)
    for name in ("report.json", "models.h", "models.c", "model_ad01_int8.c", "model_hello_world_int8.h",
                 "Makefile", "CMakeLists.txt", "README.md"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    # The folder does not depend on where the models were read from.
    assert str(hello.parent) not in (tmp_path / "api" / "report.json").read_text()
    assert [m["file"] for m in api["models"]] == [hello.name, ad01.name]
    alone = [mcuc.compile_to_directory(m, tmp_path / f"alone{i}")["arena_bytes"] for i, m in enumerate((hello, ad01))]
    for report in (cli, api):
        assert [m["arena_bytes"] for m in report["models"]] == alone
        assert report["shared_arena_bytes"] == report["arena_bytes"] == max(alone) < sum(alone)
        assert report["sum_of_arenas_bytes"] == sum(alone)
    header = (tmp_path / "api" / "models.h").read_text()
    assert f"#define MODELS_ARENA_BYTES {max(alone)}u" in header
    assert "#if MODELS_ARENA_BYTES < AD01_INT8_ARENA_BYTES" in header
    readme = (tmp_path / "api" / "README.md").read_text()
    assert "`hello_world_int8`" in readme and "`ad01_int8`" in readme
    assert "never call two models' `<name>_invoke` concurrently or interleaved" in readme
    assert "write a model's\n  inputs right before each call" in readme
    assert "mcuc refuses to share an arena with a model whose plan would keep something in it" in readme
    assert "No model keeps state between calls" in readme and "reset_state" not in readme


def test_without_exclusive_each_model_keeps_its_arena(tmp_path, hello, ad01):
    report = mcuc.compile_to_directory([hello, ad01], tmp_path / "out", name=["hw", "ad"], library="nets")
    assert report["exclusive"] is False and report["shared_arena_bytes"] is None
    assert report["arena_bytes"] == report["sum_of_arenas_bytes"] == sum(m["arena_bytes"] for m in report["models"])
    out = tmp_path / "out"
    assert not (out / "nets.c").exists() and "NETS_ARENA_BYTES" not in (out / "nets.h").read_text()
    assert "static uint8_t hw_arena[" in (out / "model_hw.c").read_text()
    cmake = (out / "CMakeLists.txt").read_text()
    assert "set(HW_ARENA_SECTION" in cmake and "set(AD_ARENA_SECTION" in cmake and "add_library(nets STATIC" in cmake
    assert "model_hw.c model_ad.c" in (out / "Makefile").read_text()


def test_a_model_keeps_its_state_apart_and_shares_only_its_arena(tmp_path, hello, ad01, monkeypatch):
    # An SVDF model keeps its state in an array of its own, so it may share the arena.
    svdf = tmp_path / "svdf.tflite"
    svdf.write_bytes(svdf_model([Layer(4, 2, 5)], inputs=10, seed=1))
    program = schedule(load_model(svdf).graph, CompileOptions(), cortexm_scratch("cortex-m4"))
    assert "SVDF" in kinds_with(Trait.STATEFUL) and program.state_bytes > 0
    assert cortexm_bundle.persistent_state(program) == []
    mcuc.compile_to_directory([hello, svdf], tmp_path / "shared", exclusive=True)
    source = (tmp_path / "shared" / "model_svdf.c").read_text()
    assert "static uint8_t svdf_state_area[" in source and "void svdf_reset_state(void)" in source
    # An arena buffer that outlives one invocation, or a state tensor in the arena, is state there.
    plain = schedule(load_model(hello).graph, CompileOptions(), cortexm_scratch("cortex-m4"))
    kept = dataclasses.replace(plain, buffers=(*plain.buffers, dataclasses.replace(plain.buffers[0], kind="state")))
    assert "of kind 'state'" in cortexm_bundle.persistent_state(kept)[0]
    misplaced = dataclasses.replace(program, offsets={**program.offsets, program.graph.states[0]: 0})
    assert "state tensor state0 in the arena" in cortexm_bundle.persistent_state(misplaced)[0]
    original = cortexm_bundle.persistent_state
    monkeypatch.setattr(cortexm_bundle, "persistent_state",
                        lambda p: original(kept) if p.graph.name == plain.graph.name else [])
    with pytest.raises(MCUCError, match=f"the model {hello} keeps state between invocations .*of kind 'state'.*"
                                        "compile without --exclusive"):
        mcuc.compile_to_directory([hello, ad01], tmp_path / "out", exclusive=True)
    assert not (tmp_path / "out").exists()


def test_compiling_again_replaces_the_folder_without_stale_files(tmp_path, hello, ad01):
    out = tmp_path / "out"
    mcuc.compile_to_directory([hello, ad01], out, exclusive=True)
    (out / "notes.txt").write_text("mine")
    mcuc.compile_to_directory([hello, ad01], out, name="hw,ad")  # ours: no force needed
    names = {p.name for p in out.iterdir()}
    assert {"model_hw.c", "model_ad.h", "memory_hw.svg", "notes.txt"} <= names
    assert not names & {"model_hello_world_int8.c", "models.c", "report_ad01_int8.html"}
    mcuc.compile_to_directory(hello, out, name="hw")  # one model in the folder of several
    names = {p.name for p in out.iterdir()}
    assert {"model.c", "model.h", "notes.txt"} <= names and not any(n.startswith("model_") for n in names)
    assert "models.h" not in names
    mcuc.compile_to_directory([hello, ad01], out)  # and back
    assert not (out / "model.c").exists() and (out / "model_ad01_int8.c").exists()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed")
@pytest.mark.parametrize("arena", ["static", "caller"])
def test_portable_folder_is_warning_free_under_strict_flags(tmp_path, hello, ad01, arena):
    out = tmp_path / "out"
    mcuc.compile_to_directory([hello, ad01], out, target="cortex-m0", exclusive=True, arena=arena)
    sources = sorted(p.name for p in out.glob("*.c"))
    assert ("models.c" in sources) == (arena == "static")
    for source in sources:
        done = subprocess.run(["gcc", *STRICT, "-O2", "-fsyntax-only", "-I", str(out), str(out / source)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
