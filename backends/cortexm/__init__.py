"""mcuc.backends.cortexm: dependency-free C for Cortex-M, its toolchain and emulator.

    write_project(program, out_dir, target, name="model") -> Path
        the firmware project (model.h, model.c, runtime files, Makefile, report.json)
    run_cortexm(program, inputs, target, count_instructions=True) -> CortexMResult
        outputs, instructions, stack_bytes, flash_bytes, static_ram_bytes, per-op counts
        (count_instructions=False: no counts, many times faster; what verification uses)
    run_chost(program, inputs) -> list[np.ndarray]
        the same C built for the host with ASan and UBSan

Both runners build once per (program, target) and reuse the build for later inputs,
so running many samples of one model costs one compilation.
"""
from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np

from mcuc.ir.numerics import ONNXRUNTIME, TFLITE
from mcuc.ir.program import Program

from .project import ModelIO, write_project
from .target import TARGETS, Target, get_target

__all__ = ["write_project", "run_cortexm", "run_chost", "Target", "TARGETS", "get_target", "ROUNDING_RULES"]

# The requantization rules the C kernels implement exactly (mcuc.ir.ort_numerics):
# TFLite's and onnxruntime's (runtime_c/mcuc_ort.h).
ROUNDING_RULES = (TFLITE, ONNXRUNTIME)

# program -> {target (a core with its --optimize choices) or "host" -> build}; entries (and their temporary directories) go away
# with the program: builds hold a ModelIO, never the Program itself.
_builds: "weakref.WeakKeyDictionary[Program, dict[Target | str, object]]" = weakref.WeakKeyDictionary()


def _cached(program: Program, key: Target | str, make):
    per_program = _builds.setdefault(program, {})
    if key not in per_program:
        per_program[key] = make()
    return per_program[key]


def run_cortexm(program: Program, inputs: Sequence[np.ndarray], target: Target | str,
                count_instructions: bool = True, state: np.ndarray | None = None):
    """One inference of `program` on the emulated `target` core (from the state area's
    bytes `state`, which get the state after the run; None: from the reset state)."""
    from .emulated import CortexMBuild

    ModelIO.of(program).pack(inputs)  # a wrong input is reported before any build
    target = get_target(target) if isinstance(target, str) else target
    build = _cached(program, target, lambda: CortexMBuild(program, target))
    return build.run(inputs, count_instructions=count_instructions, state=state)


def run_chost(program: Program, inputs: Sequence[np.ndarray], state: np.ndarray | None = None) -> list[np.ndarray]:
    """One inference of `program` as sanitized host C; MCUCError on any sanitizer report.
    `state`: as for run_cortexm."""
    from .chost import build_chost

    ModelIO.of(program).pack(inputs)  # a wrong input is reported before any build
    build = _cached(program, "host", lambda: build_chost(program))
    return build(inputs, state)
