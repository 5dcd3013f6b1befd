"""The c-host backend: the generated project compiled by the machine's gcc with
AddressSanitizer and UndefinedBehaviorSanitizer, run as a process.

It runs exactly the C that goes to the microcontroller (the portable kernel path of the
"host" target), so it checks the generated code's arithmetic and its memory plan
(ASan guards the arena's ends; UBSan traps overflow, bad shifts and misaligned access)
in milliseconds instead of an emulator's seconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.program import Program

from .project import ModelIO, io_tensors, template_environment, write_project
from .target import TARGETS
from .toolchain import make_library, run_tool

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# -O1: fast enough for the largest models while keeping sanitizer reports precise.
HOST_OPT = "-O1"
_SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=87",
}
_SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "LeakSanitizer")


@dataclass
class HostExecutable:
    """A sanitized host build of one program; `workdir` holds it (removed with this
    object when it was a temporary directory)."""

    io: ModelIO
    executable: Path
    workdir: Path
    _temporary: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def __call__(self, inputs, state: np.ndarray | None = None) -> list[np.ndarray]:
        return run_host_executable(self, inputs, state)


def find_host_gcc() -> str:
    found = shutil.which("gcc")
    if found is None:
        raise MCUCError("gcc was not found: the c-host backend needs the Debian package gcc")
    return found


def build_chost(program: Program, workdir: Path | None = None) -> HostExecutable:
    """Write the project for the "host" target and build it with the sanitizers."""
    gcc = find_host_gcc()
    temporary = None
    if workdir is None:
        temporary = tempfile.TemporaryDirectory(prefix="mcuc-chost-")
        workdir = Path(temporary.name)
    workdir = Path(workdir).resolve()
    project = write_project(program, workdir / "project", TARGETS["host"], name="model")
    library = make_library(project, "host", workdir / "build", opt=HOST_OPT,
                           extra_cflags=f"-g {SANITIZE}", make_vars={"CC": gcc})
    context = {"name": "model", "io_buffers": "caller" if program.caller_buffers else "arena",
               "state_bytes": program.state_bytes,
               "inputs": io_tensors(program, program.graph.inputs, "input"),
               "outputs": io_tensors(program, program.graph.outputs, "output")}
    main_c = workdir / "host_main.c"
    main_c.write_text(template_environment().get_template("harness/host_main.c.j2").render(context))
    executable = workdir / "model_host"
    run_tool([gcc, HOST_OPT, "-g", *SANITIZE.split(), "-std=c11", "-Wall", "-Wextra", "-Werror",
          "-I", str(project), str(main_c), str(library), "-o", str(executable)],
         "building the c-host harness")
    return HostExecutable(ModelIO.of(program), executable, workdir, temporary)


def run_host_executable(build: HostExecutable, inputs, state: np.ndarray | None = None) -> list[np.ndarray]:
    """One inference in a fresh process; any sanitizer report is an MCUCError. A model with
    a state area starts from `state` (uint8, its bytes; None: from its reset value) and
    writes the state after the run back into it."""
    packed = build.io.pack(inputs)
    if build.io.state_bytes and state is not None:
        packed.append(np.ascontiguousarray(state, np.uint8).tobytes())
    with tempfile.TemporaryDirectory(prefix="mcuc-chost-run-") as run_dir:
        input_file, output_file = Path(run_dir) / "inputs.bin", Path(run_dir) / "outputs.bin"
        input_file.write_bytes(b"".join(packed))
        env = {**os.environ, **_SANITIZER_ENV}
        done = subprocess.run([str(build.executable), str(input_file), str(output_file)],
                              capture_output=True, text=True, env=env)
        report = done.stderr
        if done.returncode != 0 or any(marker in report for marker in _SANITIZER_MARKERS):
            kind = "a sanitizer report" if any(m in report for m in _SANITIZER_MARKERS) else \
                f"exit status {done.returncode}"
            raise MCUCError(f"c-host run of {build.io.name!r} failed with {kind}:\n"
                            f"{report.strip()}")
        data = output_file.read_bytes()
    blobs, offset = [], 0
    for t in build.io.outputs:
        blobs.append(data[offset:offset + t.nbytes])
        offset += t.nbytes
    if build.io.state_bytes:
        if state is not None:
            state[...] = np.frombuffer(data[offset:offset + build.io.state_bytes], np.uint8)
        offset += build.io.state_bytes
    if offset != len(data):
        raise MCUCError(f"c-host run of {build.io.name!r} wrote {len(data)} output bytes, "
                        f"expected {offset}")
    return build.io.unpack(blobs)
