"""Several models in one folder (`mcuc compile A B C -o DIR --exclusive`): one library
whose models share one arena, the largest of their plans. Three shared models
(hello_world_int8, kws_ref_model, ad01_int8) are built with the folder's own Makefile
(cortex-m4, hard float), linked with a firmware's main that runs each in turn in the one
arena, run in the emulator and compared with tflite-micro byte for byte. The arena's
symbol is as large as the largest single-model plan; an arena one byte too small does
not build (the folder header's preprocessor check); CMake builds the same folder.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mcuc
from mcuc.ir.errors import MCUCError
from mcuc.model import load_model
from mcuc.oracle import TFLiteOracle
from tests.support.paths import shared_model_path

if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
    pytest.skip("arm-none-eabi-gcc and make are needed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi make)",
                allow_module_level=True)

from mcuc.backends.cortexm import bundle as cortexm_bundle  # noqa: E402
from mcuc.backends.cortexm.emulator import Emulator  # noqa: E402
from mcuc.backends.cortexm.target import get_target  # noqa: E402
from mcuc.backends.cortexm.toolchain import (FLASH_BYTES, FLASH_ORIGIN, RAM_BYTES, RAM_ORIGIN,  # noqa: E402
                                             find_arm_gcc, make_library, run_tool, write_harness)
from tests.backends.cortexm.test_firmware_image import HARD_M4, MAIN_C, section_of  # noqa: E402

MODELS = ("hello_world_int8", "kws_ref_model", "ad01_int8")


@pytest.fixture(scope="module")
def paths() -> dict[str, Path]:
    return {name: shared_model_path(f"{name}.tflite") for name in MODELS}


def firmware_main(models: dict[str, Path], arena: str) -> str:
    """The firmware's own code: one input and one output buffer per model; fw_run runs
    every model in turn in the shared arena, writing each one's input right before its
    run and copying its output out before the next model runs."""
    io = []
    body = []
    for name in models:
        upper = name.upper()
        arg = "fw_arena, " if arena == "caller" else ""
        io.append(f"int8_t fw_in_{name}[{upper}_INPUT_0_BYTES], fw_out_{name}[{upper}_OUTPUT_0_BYTES];")
        body.append(f"    memcpy({name}_input({arg}0), fw_in_{name}, {upper}_INPUT_0_BYTES);\n"
                    f"    if ({name}_invoke({arg.rstrip(', ')}) != {upper}_OK) {{\n        return 1;\n    }}\n"
                    f"    memcpy(fw_out_{name}, {name}_output({arg}0), {upper}_OUTPUT_0_BYTES);")
    if arena == "caller":
        io.append("uint8_t fw_arena[MODELS_ARENA_BYTES] __attribute__((aligned(MODELS_ARENA_ALIGN), "
                  "section(\".fw_arena\")));")
    main = MAIN_C.replace('#include "alpha/model.h"\n#include "beta/model.h"\n', '#include "models.h"\n')
    main = main.replace("int8_t fw_in_alpha[ALPHA_INPUT_0_BYTES], fw_out_alpha[ALPHA_OUTPUT_0_BYTES];\n"
                        "int8_t fw_in_beta[BETA_INPUT_0_BYTES], fw_out_beta[BETA_OUTPUT_0_BYTES];\n", "")
    return main % {"arena_decl": "\n".join(io), "body": "\n".join(body) + "\n    return 0;"}


def build_image(tmp: Path, models: dict[str, Path], *, arena: str = "static", cflags: str = "") -> Path:
    """The folder of `models` (--exclusive, cortex-m4, hard float) built by its Makefile
    and linked with firmware_main into one ELF."""
    gcc = find_arm_gcc()
    folder = tmp / "models"
    mcuc.compile_to_directory(list(models.values()), folder, target="cortex-m4", float_abi="hard",
                              exclusive=True, arena=arena)
    library = make_library(folder, "cortex-m4", tmp / "build", opt="-O2", extra_cflags=cflags,
                           make_vars={"CROSS": str(gcc)[: -len("gcc")]})
    assert library.name == "libmodels.a"
    write_harness(tmp, "unused")
    link_ld = (tmp / "link.ld").read_text()
    (tmp / "link.ld").write_text(link_ld.replace(
        "  .bss (NOLOAD) : {", "  .fw_arena (NOLOAD) : { . = ALIGN(8); *(.fw_arena) } > RAM\n\n  .bss (NOLOAD) : {", 1))
    (tmp / "main.c").write_text(firmware_main(models, arena))
    elf = tmp / "firmware.elf"
    run_tool([str(gcc), *HARD_M4, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(folder),
              "-ffunction-sections", "-fdata-sections", "-nostartfiles", "--specs=nano.specs",
              "-T", str(tmp / "link.ld"), "-Wl,--gc-sections", str(tmp / "main.c"), str(library),
              "-o", str(elf)], "linking the three-model firmware")
    return elf


def run_all(elf: Path, models: dict[str, Path], seed: int) -> tuple[dict[str, bytes], dict[str, bytes], int]:
    """(emulated outputs, tflite-micro outputs, fw_run's status) on random inputs."""
    emulator = Emulator(elf, get_target("cortex-m4"), (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
    rng = np.random.default_rng(seed)
    inputs, writes, reads = {}, [], []
    for name, path in models.items():
        graph = load_model(path).graph
        (x,), (y,) = graph.inputs, graph.outputs
        assert x.dtype == y.dtype == "int8"
        inputs[name] = rng.integers(-128, 128, x.shape, dtype=np.int8)
        writes.append((emulator.symbol(f"fw_in_{name}").address, inputs[name].tobytes()))
        reads.append((emulator.symbol(f"fw_out_{name}").address, y.size))
    call = emulator.call("fw_run", writes=writes, reads=reads, count_instructions=False)
    expected = {name: TFLiteOracle(path.read_bytes())([inputs[name]])[0].tobytes() for name, path in models.items()}
    return dict(zip(models, call.reads)), expected, call.return_value


def single_arenas(tmp: Path, models: dict[str, Path]) -> dict[str, int]:
    """Each model's arena compiled alone (`mcuc compile MODEL`)."""
    return {name: mcuc.compile_to_directory(path, tmp / f"alone_{name}", target="cortex-m4")["arena_bytes"]
            for name, path in models.items()}


def test_three_models_share_one_arena_in_one_hard_float_image(tmp_path, paths):
    elf = build_image(tmp_path, paths, cflags='-DMODELS_ARENA_SECTION=\\".fw_arena\\"')
    got, expected, status = run_all(elf, paths, seed=0)
    assert status == 0
    assert got == expected
    other, _, _ = run_all(elf, paths, seed=1)
    assert other != expected  # the comparison can fail
    # One arena, in the section MODELS_ARENA_SECTION named, as large as the largest plan.
    alone = single_arenas(tmp_path, paths)
    emulator = Emulator(elf, get_target("cortex-m4"), (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
    assert emulator.symbol("models_arena").size == max(alone.values()) < sum(alone.values())
    assert section_of(elf, "models_arena") == ".fw_arena"
    assert not any(name in emulator.symbols for name in (f"{m}_arena" for m in paths))
    report = json.loads((tmp_path / "models" / "report.json").read_text())
    assert report["shared_arena_bytes"] == report["arena_bytes"] == max(alone.values())
    assert report["sum_of_arenas_bytes"] == sum(alone.values())
    assert {m["name"]: m["arena_bytes"] for m in report["models"]} == alone


def test_caller_arena_shared_by_three_models(tmp_path, paths):
    elf = build_image(tmp_path, paths, arena="caller")
    got, expected, status = run_all(elf, paths, seed=2)
    assert status == 0 and got == expected
    emulator = Emulator(elf, get_target("cortex-m4"), (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
    assert "models_arena" not in emulator.symbols  # the caller's buffer only
    assert emulator.symbol("fw_arena").size == json.loads((tmp_path / "models" / "report.json").read_text())["shared_arena_bytes"]


def test_an_arena_one_byte_short_does_not_build(tmp_path, paths, monkeypatch):
    real = cortexm_bundle.shared_arena_bytes
    monkeypatch.setattr(cortexm_bundle, "shared_arena_bytes", lambda programs: real(programs) - 1)
    folder = tmp_path / "models"
    mcuc.compile_to_directory(list(paths.values()), folder, exclusive=True)
    gcc = find_arm_gcc()
    with pytest.raises(MCUCError, match="MODELS_ARENA_BYTES is smaller than the arena of the kws_ref_model model"):
        make_library(folder, "cortex-m4", tmp_path / "build", opt="-O2", make_vars={"CROSS": str(gcc)[: -len("gcc")]})


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is needed (Debian: cmake)")
def test_cmake_builds_the_folder_as_one_library(tmp_path, paths):
    folder = tmp_path / "models"
    mcuc.compile_to_directory(list(paths.values()), folder, exclusive=True, library="audio", name="hw,kws,ad")
    toolchain = tmp_path / "arm-none-eabi.cmake"
    toolchain.write_text(
        "set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR arm)\n"
        f"set(CMAKE_C_COMPILER {find_arm_gcc()})\nset(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n"
        'set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")\n')
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(folder), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
                 "-DAUDIO_ARENA_SECTION=.dtcm_bss"],
                ["cmake", "--build", str(build)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    symbols = subprocess.run(["arm-none-eabi-nm", str(build / "libaudio.a")], capture_output=True, text=True,
                             check=True).stdout
    for name in ("hw", "kws", "ad"):
        assert f" T {name}_invoke" in symbols
    assert " audio_arena" in symbols
    sections = subprocess.run(["arm-none-eabi-objdump", "-h", str(build / "libaudio.a")], capture_output=True,
                              text=True, check=True).stdout
    assert ".dtcm_bss" in sections  # AUDIO_ARENA_SECTION reached the compiler
