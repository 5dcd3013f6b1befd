"""The generated folder as a firmware project uses it: model names that make valid,
prefixed C (and clear errors for names that cannot), every core and float ABI the
Makefile offers builds (and the others are refused with a message), CMake builds the
library for cortex-m4 with arm-none-eabi-gcc, and the shared models' model.c compiles
without a warning under strict flags on arm-none-eabi-gcc and the host's gcc.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import mcuc
from mcuc.backends.cortexm.c_syntax import check_model_name, default_model_name
from mcuc.cli import main
from mcuc.ir.errors import MCUCError
from tests.backends.cortexm.test_firmware_image import small_model
from tests.support.paths import shared_model_names, shared_model_path

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("make") is not None
needs_arm = pytest.mark.skipif(not HAVE_ARM, reason="arm-none-eabi-gcc and make are needed")

STRICT = ("-Wall", "-Wextra", "-Wconversion", "-Wshadow", "-Wcast-align", "-Wpedantic", "-std=c99", "-Werror")
"""The warning flags of strict firmware builds (issue 15); -Wconversion includes
-Wsign-conversion for C."""


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return small_model(1, 8, 8, 4, 8, 4)


# -- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("int", "C keyword"), ("static", "C keyword"), ("_model", "leading '_'"), ("__x", "leading '_'"),
    ("2net", "not a C identifier"), ("my-net", "not a C identifier"), ("net\u00e9", "not a C identifier"),
    ("", "not a C identifier"), ("mcuc_net", "mcuc_ prefix"), ("MCUC", "mcuc_ prefix"),
])
def test_invalid_names_are_refused(name, why):
    with pytest.raises(MCUCError, match="keyword" if "keyword" in why else
                       "mcuc_ prefix" if "mcuc" in why else "not a C identifier"):
        check_model_name(name)


def test_default_name_is_the_file_name_made_valid():
    assert default_model_name("vww_96_int8") == "vww_96_int8"
    assert default_model_name("my-model.v2") == "my_model_v2"
    assert default_model_name("2020_kws") == "kws"
    assert default_model_name("__init__") == "init__"
    assert default_model_name("int") == "model_int"
    assert default_model_name("mcuc_test") == "model_mcuc_test"
    assert default_model_name("\u00e9") == "model"
    for stem in ("my-model.v2", "2020_kws", "int", "mcuc", "___"):
        assert check_model_name(default_model_name(stem))


def test_cli_name_prefixes_symbols_macros_sections_and_guard(tmp_path, model_bytes, capsys):
    model = tmp_path / "my-model.v2.tflite"
    model.write_bytes(model_bytes)
    assert main(["compile", str(model), "-o", str(tmp_path / "default")]) == 0
    assert "int my_model_v2_invoke(void);" in (tmp_path / "default" / "model.h").read_text()
    assert main(["compile", str(model), "-o", str(tmp_path / "named"), "--name", "kws"]) == 0
    header = (tmp_path / "named" / "model.h").read_text()
    source = (tmp_path / "named" / "model.c").read_text()
    assert "#ifndef KWS_MODEL_H" in header and "#define KWS_ARENA_BYTES" in header
    assert "int kws_invoke(void);" in header and "void *kws_input(int index);" in header
    assert "static uint8_t kws_arena[" in source and "KWS_ARENA_SECTION" in source
    assert "my_model_v2_" not in header + source  # the model file name stays in comments only
    capsys.readouterr()
    assert main(["compile", str(model), "-o", str(tmp_path / "bad"), "--name", "for"]) == 2
    assert capsys.readouterr().err.strip() == \
        "mcuc: error: model name 'for' is a C keyword; choose another --name"
    assert not (tmp_path / "bad").exists()


def test_api_name_and_write(tmp_path, model_bytes):
    report = mcuc.compile_to_directory(model_bytes, tmp_path / "a", name="first")
    assert report["c_prefix"] == "first"
    compiled = mcuc.compile(model_bytes, name="second")
    assert compiled.write(tmp_path / "b")["c_prefix"] == "second"
    assert compiled.write(tmp_path / "c", name="third")["c_prefix"] == "third"
    with pytest.raises(MCUCError, match="not a C identifier"):
        mcuc.compile(model_bytes, name="a b")
    with pytest.raises(MCUCError, match="cortex-m0 has no FPU"):
        mcuc.compile_to_directory(model_bytes, tmp_path / "d", target="cortex-m0", float_abi="hard")


# -- the Makefile ---------------------------------------------------------------------------

def make(folder: Path, *variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(folder), "OPT=-O1", *variables], capture_output=True, text=True)


@needs_arm
def test_every_offered_cpu_and_float_abi_builds(tmp_path, model_bytes):
    built = {}
    for target in ("cortex-m4", "cortex-m0"):
        folder = tmp_path / target
        mcuc.compile_to_directory(model_bytes, folder, target=target, name="net")
        makefile = (folder / "Makefile").read_text()
        offered = next(line for line in makefile.splitlines() if line.startswith("CPUS := ")).split()[2:]
        # Every offered core with the folder's default float ABI, and the other ABIs once.
        default = "hard" if target == "cortex-m4" else "soft"
        builds = [(cpu, default) for cpu in offered]
        builds += [("cortex-m4", "soft"), ("cortex-m4", "softfp")] if target == "cortex-m4" else \
            [("cortex-m4", "hard")]
        for cpu, abi in builds:
            done = make(folder, f"CPU={cpu}", f"FLOAT_ABI={abi}", f"BUILD=out-{cpu}-{abi}")
            assert done.returncode == 0, (target, cpu, abi, done.stderr)
            assert (folder / f"out-{cpu}-{abi}" / "libnet.a").is_file()
        built[target] = offered
    assert built["cortex-m4"] == ["cortex-m4", "cortex-m7", "cortex-m33"]
    assert built["cortex-m0"] == ["cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "host"]
    assert "FLOAT_ABI ?= hard" in (tmp_path / "cortex-m4" / "Makefile").read_text()
    assert "FLOAT_ABI ?= soft" in (tmp_path / "cortex-m0" / "Makefile").read_text()
    # What is not offered is refused with a reason, not an implicit declaration.
    done = make(tmp_path / "cortex-m4", "CPU=host")
    assert done.returncode != 0 and "CPU=host is not offered by this folder" in done.stderr
    done = make(tmp_path / "cortex-m0", "CPU=cortex-m0", "FLOAT_ABI=hard")
    assert done.returncode != 0 and "CPU=cortex-m0 has no FPU" in done.stderr
    # A build outside the Makefile for a core without DSP says what is wrong.
    done = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-c", "model.c", "-o", "/dev/null"],
                          cwd=tmp_path / "cortex-m4", capture_output=True, text=True)
    assert done.returncode != 0 and "build it for a core with the DSP extension" in done.stderr


@needs_arm
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is needed (Debian: cmake)")
def test_cmake_builds_the_library_for_cortex_m4(tmp_path, model_bytes):
    folder = tmp_path / "net"
    mcuc.compile_to_directory(model_bytes, folder, name="net")
    toolchain = tmp_path / "arm-none-eabi.cmake"
    toolchain.write_text(
        "set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR arm)\n"
        "set(CMAKE_C_COMPILER arm-none-eabi-gcc)\nset(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n"
        'set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")\n')
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(folder), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
                 "-DNET_ARENA_SECTION=.dtcm_bss"],
                ["cmake", "--build", str(build)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    library = build / "libnet.a"
    symbols = subprocess.run(["arm-none-eabi-nm", str(library)], capture_output=True, text=True, check=True).stdout
    assert " T net_invoke" in symbols
    sections = subprocess.run(["arm-none-eabi-objdump", "-h", str(library)], capture_output=True, text=True,
                              check=True).stdout
    assert ".dtcm_bss" in sections  # NET_ARENA_SECTION reached the compiler
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(library)], capture_output=True, text=True,
                                check=True).stdout
    assert "Tag_ABI_VFP_args: VFP registers" in attributes  # the toolchain's hard-float flags


# -- strict warnings -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shared_projects(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Every shared model's project for cortex-m4 (the DSP kernels) and cortex-m0 (the
    portable C the host builds)."""
    root = tmp_path_factory.mktemp("shared")
    projects: dict[str, dict[str, Path]] = {}
    for name in shared_model_names():
        path = shared_model_path(name)
        for target in ("cortex-m4", "cortex-m0"):
            folder = root / f"{target}-{name}"
            mcuc.compile_to_directory(path, folder, target=target, io="int8")
            projects.setdefault(target, {})[name] = folder
    return projects


FULL_COMPILE = ("kws_ref_model", "micro_speech_int8")
"""Compiled in full at -O2 (the middle end's warnings, -Wmaybe-uninitialized and friends,
need the optimizers); between them conv, depthwise, pooling, fully connected and
softmax. Every shared model gets the front end's warnings (-fsyntax-only: conversions,
shadowing, pedantic C99, casts), which is where the generated code differs per model."""


@needs_arm
def test_shared_models_compile_warning_free_with_strict_flags(shared_projects):
    """Every cortex-m4 project on arm-none-eabi-gcc (hard float, the DSP kernels and their
    inline assembly), every cortex-m0 project on the host's gcc (the portable kernels)."""
    if not shared_projects:
        pytest.skip("the shared models are absent")
    for target, compiler in (("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb",
                                            "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]),
                             ("cortex-m0", ["gcc"])):
        for name, folder in shared_projects[target].items():
            mode = ["-O2", "-c", "model.c", "-o", "/dev/null"] if name in FULL_COMPILE else \
                ["-fsyntax-only", "model.c"]
            done = subprocess.run([*compiler, *STRICT, *mode], cwd=folder, capture_output=True, text=True)
            assert done.returncode == 0 and "warning" not in done.stderr, (target, name, done.stderr[:3000])


@needs_arm
def test_memory_regions_and_weights_in_ram_compile_warning_free(tmp_path):
    """--memory (a second region's array and relocated addresses) and --weights-in-ram (the
    section attribute on every constant array) add no warning under the strict flags."""
    path = shared_model_path("kws_ref_model.tflite")
    for target, compiler in (("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb",
                                            "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]),
                             ("cortex-m0", ["gcc"])):
        folder = tmp_path / target
        report = mcuc.compile_to_directory(path, folder, target=target, io="int8", memory="fast:8K:1,slow:1M:3",
                                           weights_in_ram="slow")
        assert all(r["bytes"] > 0 for r in report["regions"]), report["regions"]
        done = subprocess.run([*compiler, *STRICT, "-O2", "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])


@needs_arm
def test_the_strict_check_catches_a_warning(shared_projects, tmp_path):
    """The check above can fail: one sign conversion in a copy of a project is an error."""
    if not shared_projects:
        pytest.skip("the shared models are absent")
    folder = next(iter(shared_projects["cortex-m0"].values()))
    source = (folder / "model.c").read_text() + "\nunsigned mcuc_probe(int x);\nunsigned mcuc_probe(int x) { return x; }\n"
    (tmp_path / "model.c").write_text(source)
    for header in folder.glob("*.h"):
        shutil.copy(header, tmp_path)
    done = subprocess.run(["gcc", *STRICT, "-fsyntax-only", "model.c"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "sign-conversion" in done.stderr
