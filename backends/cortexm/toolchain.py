"""The arm-none-eabi toolchain: build a generated project plus a bare-metal harness into an ELF.

The project's own Makefile builds the model library (so every emulated run also checks
that the Makefile a user gets works), then the harness (startup code with a vector
table, a linker script for flash at 0x08000000 and SRAM at 0x20000000) is linked around
it. The link map splits the image into the model's share (its code, kernels, weights
and the library code they pull in, such as memcpy) and the harness's, for flash_bytes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mcuc.ir.errors import MCUCError

from .project import template_environment
from .target import Target

FLASH_ORIGIN = 0x08000000
FLASH_BYTES = 16 * 1024 * 1024
RAM_ORIGIN = 0x20000000
RAM_BYTES = 16 * 1024 * 1024
STACK_BYTES = 256 * 1024
"""Generous on purpose: the emulator measures what the model really uses, and a
too-small block would only turn a measurement into an overflow."""

DEFAULT_OPT = "-O3"
"""-O3, not -Os: a model's speed is measured in executed instructions, and -O3 unrolls
the kernels' constant-bound loops; the code it adds is small next to the weights.
It is also how the CMSIS-NN reference counts in the project's goals were compiled."""

HARNESS_OBJECTS = ("startup.o",)

INSTALL_HINT = ("install the Debian packages gcc-arm-none-eabi and libnewlib-arm-none-eabi "
                "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi), or put "
                "arm-none-eabi-gcc on PATH")


def find_arm_gcc() -> Path:
    """arm-none-eabi-gcc (MCUC_ARM_GCC overrides the PATH lookup)."""
    override = os.environ.get("MCUC_ARM_GCC")
    found = override if override and Path(override).is_file() else shutil.which("arm-none-eabi-gcc")
    if not found:
        raise MCUCError(f"arm-none-eabi-gcc was not found: {INSTALL_HINT}")
    return Path(found)


def run_tool(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    """Run a compiler, linker or make; MCUCError with the command and its output on failure."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as e:
        raise MCUCError(f"{what}: cannot run {cmd[0]}: {e}") from None
    if done.returncode != 0:
        raise MCUCError(f"{what} failed (exit {done.returncode}):\n$ {' '.join(cmd)}\n"
                        f"{done.stdout}{done.stderr}")
    return done.stdout


def make_library(project_dir: Path, cpu: str, build_dir: Path, *, opt: str = DEFAULT_OPT,
                 extra_cflags: str = "", make_vars: dict[str, str] | None = None) -> Path:
    """Run the project's Makefile for `cpu` ("host" or a Cortex-M core) into `build_dir`;
    return the library it builds."""
    if shutil.which("make") is None:
        raise MCUCError("make was not found: install the Debian package make")
    variables = {"CPU": cpu, "OPT": opt, "BUILD": str(build_dir), "EXTRA_CFLAGS": extra_cflags,
                 **(make_vars or {})}
    cmd = ["make", "-s", "-C", str(project_dir), *(f"{k}={v}" for k, v in variables.items())]
    run_tool(cmd, f"building the generated project for {cpu}")
    libraries = sorted(Path(build_dir).glob("lib*.a"))
    if len(libraries) != 1:
        raise MCUCError(f"the generated Makefile in {project_dir} built {len(libraries)} libraries "
                        f"in {build_dir}, expected one")
    return libraries[0]


@dataclass(frozen=True)
class SectionSizes:
    """Bytes an image part puts in each kind of section."""

    text: int = 0
    rodata: int = 0
    data: int = 0
    bss: int = 0

    @property
    def flash_bytes(self) -> int:
        """What the part costs in flash: code, constants and the initial values of data."""
        return self.text + self.rodata + self.data

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss


@dataclass(frozen=True)
class Firmware:
    """A linked ELF and where its bytes come from."""

    elf: Path
    map_file: Path
    model: SectionSizes
    harness: SectionSizes
    target: Target


_OUTPUT_KIND = {".text": "text", ".ARM.exidx": "text", ".ARM.extab": "text",
                ".rodata": "rodata", ".data": "data", ".bss": "bss", ".isr_vector": "vector"}
def section_sizes_from_map(map_text: str,
                           harness_objects: tuple[str, ...] = HARNESS_OBJECTS) -> tuple[SectionSizes, SectionSizes]:
    """(model, harness) sizes from a GNU ld map: every input section placed in .text,
    .rodata, .data or .bss is charged to the harness if it comes from one of
    `harness_objects`, else to the model (its objects and the library code they use).
    Alignment fill is charged to nobody; the vector table is the harness's."""
    _, _, placed = map_text.partition("Linker script and memory map")
    totals = {owner: dict.fromkeys(("text", "rodata", "data", "bss"), 0) for owner in ("model", "harness")}

    def charge(kind: str, size_field: str, origin_fields: list[str]) -> None:
        origin = Path(" ".join(origin_fields)).name
        owner = "harness" if kind == "vector" or origin in harness_objects else "model"
        totals[owner]["text" if kind == "vector" else kind] += int(size_field, 16)

    kind: str | None = None
    pending = False  # an input section named on its own line; its address and size follow
    for line in placed.splitlines():
        fields = line.split()
        if not fields:
            continue
        if not line[0].isspace():  # an output section: ".text   0x08000040   0x23c"
            kind = _OUTPUT_KIND.get(fields[0])
            pending = False
            continue
        if kind is None or fields[0] == "*fill*" or fields[0].startswith("*("):
            pending = False
            continue
        is_input = line.startswith(" ") and not line.startswith("  ")
        numbers = fields[1:] if is_input else fields
        if len(numbers) >= 3 and numbers[0].startswith("0x") and numbers[1].startswith("0x") \
                and (is_input or pending):
            charge(kind, numbers[1], numbers[2:])
            pending = False
        else:
            pending = is_input and len(fields) == 1
    return SectionSizes(**totals["model"]), SectionSizes(**totals["harness"])


def write_harness(build_dir: Path, name: str, io_bytes: tuple[list[int], list[int]] | None = None) -> None:
    """startup.c and link.ld for the bare-metal image. `io_bytes` (the bytes of each
    input and output) for a model compiled with --io-buffers caller: the harness then
    holds their buffers (mcuc_harness_input<i>, mcuc_harness_output<i>, and the tables
    mcuc_harness_inputs / mcuc_harness_outputs that its main passes to <name>_invoke_io)."""
    env = template_environment()
    context = {"name": name, "flash_origin": FLASH_ORIGIN, "flash_bytes": FLASH_BYTES,
               "ram_origin": RAM_ORIGIN, "ram_bytes": RAM_BYTES, "stack_bytes": STACK_BYTES,
               "io_buffers": "arena" if io_bytes is None else "caller",
               "input_bytes": [] if io_bytes is None else io_bytes[0],
               "output_bytes": [] if io_bytes is None else io_bytes[1]}
    (build_dir / "startup.c").write_text(env.get_template("harness/startup.c.j2").render(context))
    (build_dir / "link.ld").write_text(env.get_template("harness/link.ld.j2").render(context))


def caller_io_bytes(project_dir: Path) -> tuple[list[int], list[int]] | None:
    """The bytes of each input and output of the project in `project_dir` when it was
    compiled with --io-buffers caller (its report.json says so), else None."""
    import json

    try:
        report = json.loads((project_dir / "report.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("io_buffers") != "caller":
        return None
    import numpy as np

    def nbytes(t: dict) -> int:  # mcuc compile's report.json gives shape and dtype
        return int(t["bytes"]) if "bytes" in t else int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize

    return [nbytes(t) for t in report["inputs"]], [nbytes(t) for t in report["outputs"]]


def build_firmware(project_dir: Path, target: Target, build_dir: Path, *, name: str = "model",
                   opt: str = DEFAULT_OPT, profile_steps: bool = True) -> Firmware:
    """Cross-compile the project in `project_dir` and link it with the harness into
    build_dir/firmware.elf. `profile_steps` defines MCUC_PROFILE_STEPS, which puts a
    label (no instruction) at each step boundary for per-step instruction counts."""
    if not target.is_arm:
        raise MCUCError(f"target {target.name!r} is not a Cortex-M core; build it with the c-host backend")
    gcc = find_arm_gcc()
    cross = str(gcc)[: -len("gcc")]
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    library = make_library(Path(project_dir), target.name, build_dir / "lib", opt=opt,
                           extra_cflags="-DMCUC_PROFILE_STEPS" if profile_steps else "",
                           make_vars={"CROSS": cross, "FLOAT_ABI": target.float_abi})
    write_harness(build_dir, name, caller_io_bytes(Path(project_dir)))
    common = [str(gcc), *target.cpu_flags, opt, "-std=c11", "-Wall", "-Wextra", "-Werror",
              "-ffunction-sections", "-fdata-sections"]
    # -fno-tree-loop-distribute-patterns: the reset copy loops stay loops, not calls
    # into libc that would be charged to the model.
    run_tool([*common, "-fno-tree-loop-distribute-patterns", "-I", str(Path(project_dir).resolve()),
          "-c", "startup.c", "-o", "startup.o"],
         "compiling the bare-metal harness", cwd=build_dir)
    elf, map_file = build_dir / "firmware.elf", build_dir / "firmware.map"
    run_tool([*common, "-nostartfiles", "--specs=nano.specs", "-T", "link.ld", "-Wl,--gc-sections",
          f"-Wl,-Map={map_file}", "startup.o", str(library), "-o", str(elf)],
         f"linking the {target.name} firmware", cwd=build_dir)
    model, harness = section_sizes_from_map(map_file.read_text())
    return Firmware(elf=elf, map_file=map_file, model=model, harness=harness, target=target)
