"""The compiler driver: frontend graph -> passes -> scheduled Program for a backend."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mcuc.ir.errors import MCUCError
from mcuc.ir.graph import Graph
from mcuc.ir.op import Op
from mcuc.ir.program import Program, ScratchRequest

TARGETS = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33")
IO_MODES = ("int8", "float")
LAYOUTS = ("nchw", "nhwc")
ARENA_MODES = ("static", "caller")
IO_BUFFER_MODES = ("arena", "caller")


@dataclass(frozen=True)
class CompileOptions:
    """Everything a user can choose about one compilation."""

    target: str = "cortex-m4"
    io: str | None = None  # None: as the model; "int8": strip float QUANTIZE/DEQUANTIZE edges
    patch: str | None = None  # None/"off": layer by layer; "auto"; "RxC@OP,...": patch stages
    sram: int | None = None  # SRAM budget in bytes for the arena (mcuc.passes.patch_schedule)
    # Layout of 4-D graph inputs/outputs: None as the model (ONNX nchw, TFLite nhwc).
    # It acts when the model is read (mcuc.model.load_model), not in the passes.
    layout: str | None = None
    # "speed" (-O3, int16 fully connected weights on DSP cores) or "size" (-Os, int8).
    optimize: str = "speed"
    # What an ONNX model computes (mcuc.frontend.onnx_numerics): "exact" or
    # "ort-x86-avx2[:threads=N]". Like layout, it acts when the model is read.
    onnx_numerics: str = "exact"
    # The largest tensor a model may have, in bytes (None: 64 MiB, the default of
    # mcuc.frontend.validate). Like layout, it acts when the model is read.
    max_tensor_bytes: int | None = None
    # The generated C's prefix (`--name`; None: the model file's name made a C
    # identifier). It acts when the project is written (mcuc.build), not in the passes.
    name: str | None = None
    # The Cortex-M float ABI: "soft", "softfp" or "hard" (None: the core's default,
    # mcuc.backends.cortexm.target). It acts when C is built for the core.
    float_abi: str | None = None
    # Where the arena lives: "static" (a static array in model.c) or "caller" (the caller
    # passes it to <name>_invoke). It acts when the project is written.
    arena: str = "static"
    # Where the graph inputs and outputs live: "arena" (inside the arena) or "caller"
    # (buffers the caller passes, outside the arena: the arena shrinks by what they took).
    # It acts in the passes (pipeline.prepare marks the graph, Graph.io_buffers) and in
    # every backend.
    io_buffers: str = "arena"
    # Several memory regions, "NAME:SIZE[:COST],..." (None: one arena). The planned
    # buffers are moved into the regions after the plan (mcuc.passes.regions); the
    # backends give each region its own array.
    memory: str | None = None
    # The --memory region that also holds the model's constant arrays (None: they stay in
    # flash). The planner counts their bytes (as the Cortex-M C stores them) in it.
    weights_in_ram: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS and self.target != "host":
            raise MCUCError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.io is not None and self.io not in IO_MODES:
            raise MCUCError(f"unknown --io {self.io!r}; choose int8 or float")
        if self.layout is not None and self.layout not in LAYOUTS:
            raise MCUCError(f"unknown --layout {self.layout!r}; choose nchw or nhwc")
        if self.optimize not in ("speed", "size"):
            raise MCUCError(f"unknown --optimize {self.optimize!r}; choose speed or size")
        from mcuc.frontend.onnx_numerics import parse_onnx_numerics
        from mcuc.frontend.validate import max_tensor_bytes_or_default
        from mcuc.passes.patch_schedule import check_patch_option

        parse_onnx_numerics(self.onnx_numerics)
        max_tensor_bytes_or_default(self.max_tensor_bytes)

        check_patch_option(self.patch)
        if self.arena not in ARENA_MODES:
            raise MCUCError(f"unknown --arena {self.arena!r}; choose {' or '.join(ARENA_MODES)}")
        if self.io_buffers not in IO_BUFFER_MODES:
            raise MCUCError(f"unknown --io-buffers {self.io_buffers!r}; choose {' or '.join(IO_BUFFER_MODES)}")
        names = []
        if self.memory is not None:
            from mcuc.passes.regions import parse_memory

            names = [r.name for r in parse_memory(self.memory)]
            if self.arena == "caller":
                raise MCUCError("--memory gives every region its own static array; --arena caller passes one "
                                "arena pointer: choose one of them")
        if self.weights_in_ram is not None:
            if self.weights_in_ram not in names:
                raise MCUCError(f"--weights-in-ram {self.weights_in_ram!r} names no region of --memory"
                                + (f" ({', '.join(names)})" if names else " (give --memory NAME:SIZE[:COST],...)"))
        if self.name is not None:
            from mcuc.backends.cortexm.c_syntax import check_model_name

            check_model_name(self.name)
        cortexm_target(self.target, self.optimize, self.float_abi)  # a float ABI the core has


Scratch = Callable[[Op, bool], Sequence[ScratchRequest]]


def prepare(graph: Graph, options: CompileOptions) -> Graph:
    """Graph-level passes that every backend wants, in order."""
    from mcuc import passes

    graph = passes.fold_pad(graph)
    graph = passes.depthwise_as_conv(graph)
    if options.io == "int8":
        graph = passes.strip_edge_quantization(graph)
    graph = passes.prune_channels(graph)
    if options.io_buffers != graph.io_buffers:
        graph = graph.with_(io_buffers=options.io_buffers)  # the planner reads it (passes/aliasing.py)
    return graph


def schedule(graph: Graph, options: CompileOptions, scratch: Scratch | None = None) -> Program:
    """The Program a backend runs: prepared graph, best op order, memory plan, verified
    by ir/program_check (a broken placement rule is a PlanError here, at compile time)."""
    from mcuc import passes
    from mcuc.ir.program_check import check_program

    prepared = prepare(graph, options)
    if options.patch is None and options.sram is None:
        program = passes.plan(prepared, scratch)
        check_program(program)
    else:
        from mcuc.passes.patch_schedule import schedule_with_patches

        program = schedule_with_patches(prepared, options.patch, options.sram, scratch)
    program.notes["macs_skipped"] = passes.removed_macs(graph, prepared)  # prune_channels
    if options.memory is not None:
        from mcuc.passes.regions import parse_memory, place_in_regions

        weights = None
        if options.weights_in_ram is not None:
            weights = (options.weights_in_ram, cortexm_constant_bytes(program.graph, options))
        program = place_in_regions(program, parse_memory(options.memory), weights)
        check_program(program)
    return program


def cortexm_constant_bytes(graph: Graph, options: CompileOptions) -> int:
    """Bytes of the constant arrays the Cortex-M C of `graph` (scheduled, patch stages
    included) holds for `options.target`: what --weights-in-ram puts in a region. They do
    not depend on the memory plan, so a quick plan with the target's scratch serves."""
    from mcuc.backends.cortexm.project import constant_bytes
    from mcuc.passes import plan
    from mcuc.passes.patch import lower_patch_loops, with_workspace

    scratch = with_workspace(cortexm_scratch(options.target, options.optimize))
    return constant_bytes(lower_patch_loops(plan(graph, scratch, optimize=False)),
                          cortexm_target(options.target, options.optimize))


def cortexm_target(target: str, optimize: str = "speed", float_abi: str | None = None):
    """The Cortex-M Target `target` compiled for `optimize` ("speed" or "size") and
    `float_abi` (None: the core's default)."""
    from mcuc.backends.cortexm.target import get_target

    return get_target(target).optimized_for(optimize).with_float_abi(float_abi)


def cortexm_scratch(target: str, optimize: str = "speed") -> Scratch:
    """The scratch buffers the Cortex-M kernels of `target` ask for."""
    from mcuc.backends.cortexm import kernels

    t = cortexm_target(target, optimize)
    return lambda op, in_place: kernels.scratch_requests(op, in_place, t)
