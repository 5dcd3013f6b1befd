"""The backends `verify`, `run` and `bench` can execute a model on.

Each entry makes a runner: a function from a list of input arrays to the list of
output arrays, built once per model so that many samples reuse one compilation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Sequence

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.program import Program
from mcuc.model import Model
from mcuc.pipeline import CompileOptions, cortexm_scratch, cortexm_target, prepare, schedule

Runner = Callable[[Sequence[np.ndarray]], list[np.ndarray]]

EMULATED = {"cortex-m0": "cortex-m0", "cortex-m3": "cortex-m3", "cortex-m4": "cortex-m4",
            "cortex-m7": "cortex-m7", "cortex-m33": "cortex-m33"}
BACKENDS = ("reference", "llvm", "c-host", *EMULATED)


@dataclass(frozen=True)
class Built:
    """A model built for one backend: its runner and the scheduled Program it executes
    (its arena, scratch and order: what a report of this build must describe). `plan`
    gives that Program, planned on first use where running does not need one (the
    reference interpreting the graph as read: verify never asks for it)."""

    run: Runner
    plan: Callable[[], Program]

    @cached_property
    def program(self) -> Program:
        return self.plan()


def _built(program: Program, run: Runner) -> Built:
    return Built(run, lambda: program)


def _reference(model: Model, options: CompileOptions) -> Built:
    from mcuc.ir.interpreter import run
    from mcuc.ir.program_interpreter import run_program

    if (options.patch not in (None, "off") or options.sram is not None or options.io_buffers == "caller"
            or options.memory is not None):
        # A patch schedule (or inputs and outputs in caller buffers, or memory regions) changes what runs:
        # execute the scheduled program with the reference semantics, on one arena at the
        # planned offsets.
        program = schedule(model.graph, options)
        return _built(program, lambda inputs: run_program(program, inputs))
    # Otherwise the reference rung runs the model as read; only --io int8 changes its edges.
    graph = prepare(model.graph, options) if options.io == "int8" else model.graph
    return Built(lambda inputs: run(graph, inputs), lambda: schedule(model.graph, options))


def _llvm(model: Model, options: CompileOptions) -> Built:
    from mcuc.backends.llvm import compile_program, scratch_requests

    program = schedule(model.graph, options, scratch_requests)
    return _built(program, compile_program(program))


def _chost(model: Model, options: CompileOptions) -> Built:
    from mcuc.backends.cortexm import run_chost

    program = schedule(model.graph, options, cortexm_scratch("cortex-m0"))
    return _built(program, lambda inputs: run_chost(program, inputs))


def _emulated(target: str) -> Callable[[Model, CompileOptions], Built]:
    def make(model: Model, options: CompileOptions) -> Built:
        from mcuc.backends.cortexm import run_cortexm

        program = schedule(model.graph, options, cortexm_scratch(target, options.optimize))
        # --float-abi is the --target core's; another core of a verify run keeps its default.
        t = cortexm_target(target, options.optimize, options.float_abi if target == options.target else None)
        # Verification needs the outputs only: an uncounted run is many times faster.
        return _built(program, lambda inputs: run_cortexm(program, inputs, t, count_instructions=False).outputs)
    return make


_FACTORIES = {"reference": _reference, "llvm": _llvm, "c-host": _chost,
              **{name: _emulated(target) for name, target in EMULATED.items()}}


def build(name: str, model: Model, options: CompileOptions | None = None) -> Built:
    """`model` built for backend `name`: its program and its runner."""
    if name not in _FACTORIES:
        raise MCUCError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    try:
        return _FACTORIES[name](model, options or CompileOptions())
    except ImportError as e:
        raise MCUCError(f"backend {name!r} is not available in this mcuc: {e}") from None


def make_runner(name: str, model: Model, options: CompileOptions | None = None) -> Runner:
    return build(name, model, options).run
