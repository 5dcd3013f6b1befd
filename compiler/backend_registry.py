"""The backends `verify`, `run` and `bench` can execute a model on.

Each entry makes a runner: a function from a list of input arrays to the list of
output arrays, built once per model so that many samples reuse one compilation. A
model that keeps state (state tensors, ir/tensor.Tensor.state) runs its calls as one
stream: each continues from the state the previous call left, starting reset, as
tflite-micro's interpreter does over repeated invocations.
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
    reference interpreting the graph as read: verify never asks for it). `reset_state`
    starts a new stream: the next run starts from the reset state, as the first did."""

    run: Runner
    plan: Callable[[], Program]
    reset_state: Callable[[], None] = lambda: None

    @cached_property
    def program(self) -> Program:
        return self.plan()


def _streaming(program: Program, run: Callable[[Sequence[np.ndarray], np.ndarray], list[np.ndarray]]) -> Built:
    """A build whose runs continue one stream: `run(inputs, state)` runs one invocation
    from the state area's bytes `state` and writes the state after it back there; the
    build keeps those bytes from one call to the next, from the reset state on (a model
    without state has an empty area)."""
    state = program.reset_state_area()

    def reset() -> None:
        state[...] = program.reset_state_area()

    return Built(lambda inputs: run(inputs, state), lambda: program, reset)


def _reference(model: Model, options: CompileOptions) -> Built:
    from mcuc.ir.interpreter import reset_state, run
    from mcuc.ir.program_interpreter import run_program

    if (options.patch not in (None, "off") or options.sram is not None or options.io_buffers == "caller"
            or options.memory is not None):
        # A patch schedule (or inputs and outputs in caller buffers, or memory regions) changes what runs:
        # execute the scheduled program with the reference semantics, on one arena at the
        # planned offsets.
        program = schedule(model.graph, options)
        return _streaming(program, lambda inputs, state: run_program(program, inputs, state=state))
    # Otherwise the reference rung runs the model as read; only --io int8 changes its edges.
    graph = prepare(model.graph, options) if options.io == "int8" else model.graph
    state = reset_state(graph)  # the state tensors' values, kept from one call to the next
    return Built(lambda inputs: run(graph, inputs, state=state), lambda: schedule(model.graph, options),
                 lambda: state.update(reset_state(graph)))


def _llvm(model: Model, options: CompileOptions) -> Built:
    from mcuc.backends.llvm import compile_program, scratch_requests

    program = schedule(model.graph, options, scratch_requests)
    compiled = compile_program(program)
    compiled.reset_state()  # its calls continue one stream (CompiledProgram.state)
    return Built(compiled, lambda: program, compiled.reset_state)


def _chost(model: Model, options: CompileOptions) -> Built:
    from mcuc.backends.cortexm import run_chost

    program = schedule(model.graph, options, cortexm_scratch("cortex-m0"))
    return _streaming(program, lambda inputs, state: run_chost(program, inputs, state))


def _emulated(target: str) -> Callable[[Model, CompileOptions], Built]:
    def make(model: Model, options: CompileOptions) -> Built:
        from mcuc.backends.cortexm import run_cortexm

        program = schedule(model.graph, options, cortexm_scratch(target, options.optimize))
        # --float-abi is the --target core's; another core of a verify run keeps its default.
        t = cortexm_target(target, options.optimize, options.float_abi if target == options.target else None)
        # Verification needs the outputs only: an uncounted run is many times faster.
        return _streaming(program, lambda inputs, state: run_cortexm(
            program, inputs, t, count_instructions=False, state=state).outputs)
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
