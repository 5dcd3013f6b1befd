"""A program on an emulated Cortex-M core: build once, run many inputs, measure.

The generated project is cross-compiled with the bare-metal harness (toolchain.py) and
`model_invoke` is called in unicorn (emulator.py) with the inputs written into the
arena. One run gives the outputs, the instructions of exactly one inference, the stack
high-water mark, and per-step instruction counts from the step labels of the
profiling build (labels only: they add no instruction). On cores with a timing model
(cortex-m4, cortex-m33: timing.py) a counted run also estimates cycles, in total and per
step.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.numerics import in_float
from mcuc.ir.ops import op_def
from mcuc.ir.program import Program

from .emulator import Emulator
from .project import ModelIO, write_project
from .target import Target
from .toolchain import FLASH_BYTES, FLASH_ORIGIN, RAM_BYTES, RAM_ORIGIN, Firmware, build_firmware

NAME = "model"
"""The C prefix of emulated builds (the symbols the emulator looks up)."""


@dataclass(frozen=True)
class CortexMResult:
    """One emulated inference.

    instructions: executed instructions of one `model_invoke` call, exact, of the
        build with step labels (the labels are no instructions, but as compiler barriers
        they move counts by well under 0.1%: vww_96_int8 15,568,417 with, 15,558,096
        without).
    stack_bytes: stack high-water mark of that call.
    flash_bytes: text + rodata + data of the model's code, kernels, weights and the
        library code they use (memcpy, division helpers), without the harness.
    static_ram_bytes: the model's .data + .bss other than the arena (so the peak SRAM
        is arena_bytes + static_ram_bytes + stack_bytes).
    instructions_by_step: per schedule step; their sum plus the invoke function's own
        prologue and epilogue (`instructions_by_op_kind["(invoke)"]`) is `instructions`.
    cycles, cycles_by_step, cycles_by_op_kind: the same in estimated cycles (timing.py),
        on cores with a timing model; None and empty elsewhere.
    kernel_by_step: the kernel variant each step's generated C names in its comment
        ("1x1", "im2col", "in_place", ...), None where it names none.
    An uncounted run (count_instructions=False) has instructions and cycles None and no
    per-step figures.
    """

    outputs: list[np.ndarray]
    instructions: int | None
    stack_bytes: int
    flash_bytes: int
    static_ram_bytes: int
    arena_bytes: int
    instructions_by_step: list[int] = field(default_factory=list)
    instructions_by_op_kind: dict[str, int] = field(default_factory=dict)
    cycles: int | None = None
    cycles_by_step: list[int] = field(default_factory=list)
    cycles_by_op_kind: dict[str, int] = field(default_factory=dict)
    kernel_by_step: list[str | None] = field(default_factory=list)


def runaway_budget(program: Program) -> int:
    """An instruction count no correct inference reaches: the slowest integer kernels need
    about 15 instructions per MAC (Cortex-M0) and a few hundred per byte moved through
    lookup-free ops such as softmax; onnxruntime float groups (OrtFloat numerics) compute each
    MAC as an exactly rounded float multiply-add in soft-float, about 520 instructions on
    Cortex-M0 (a float pointwise conv of mobilenet_v3_block QDQ int8). Budgets far above
    that still stop a hung run in seconds to minutes instead of never. Not capped: a
    float-heavy network on Cortex-M0 (torchvision's mnasnet0_5 QDQ int8 at 96x96) needs
    several billion instructions, all of them real work."""
    def per_mac(op) -> int:
        return 2000 if in_float(op.attrs) is not None else 100

    macs = sum(int(op_def(s.op.kind).macs(s.op)) * per_mac(s.op) for s in program.steps)
    moved = sum(t.nbytes for s in program.steps for t in s.op.outputs)
    return 10_000_000 + macs + 1000 * moved


_STEP_HEADER = re.compile(r"^/\* ---- step (\d+): (.*) ---- \*/$")


def kernel_variants(model_c: str, steps: int) -> list[str | None]:
    """The kernel each step's C names: the step's comment reads "LABEL: VARIANT kernel"
    (or "LABEL: DETAILS") on the line after its "---- step N: LABEL ----" header; the
    text after the label, without a trailing " kernel". None where there is none."""
    variants: list[str | None] = [None] * steps
    lines = model_c.splitlines()
    for line, following in zip(lines, lines[1:]):
        header = _STEP_HEADER.match(line)
        if header is None or int(header[1]) >= steps:
            continue
        prefix = f"/* {header[2]}: "
        if following.startswith(prefix) and following.endswith(" */"):
            text = following[len(prefix):-3].strip()
            variants[int(header[1])] = text.removesuffix(" kernel") or None
    return variants


def _per_step(boundaries: list[int | None], kinds: tuple[str, ...], total: int) -> tuple[list[int], dict[str, int]]:
    """Per-step figures from the marks' values, and per op kind with "(invoke)" the rest."""
    if not boundaries or any(b is None for b in boundaries):
        return [], {}
    by_step = [boundaries[i + 1] - boundaries[i] for i in range(len(kinds))]
    by_kind: dict[str, int] = {}
    for kind, count in zip(kinds, by_step):
        by_kind[kind] = by_kind.get(kind, 0) + count
    by_kind["(invoke)"] = total - sum(by_step)
    return by_step, by_kind


class CortexMBuild:
    """A program built for one core, ready to run any number of inputs."""

    def __init__(self, program: Program, target: Target, workdir: Path | None = None,
                 opt: str | None = None) -> None:
        # Only what runs need, not the Program: see the build cache in __init__.
        self.io = ModelIO.of(program)
        self.step_kinds = tuple(step.op.kind for step in program.steps)
        self.arena_bytes = program.arena_bytes
        self.default_budget = runaway_budget(program)
        self.target = target
        self._temporary = None
        if workdir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix=f"mcuc-{target.name}-")
            workdir = Path(self._temporary.name)
        self.workdir = Path(workdir).resolve()
        project = write_project(program, self.workdir / "project", target, name=NAME)
        self.kernel_by_step = kernel_variants((project / "model.c").read_text(), len(program.steps))
        self.firmware: Firmware = build_firmware(project, target, self.workdir / "build", name=NAME, opt=opt or target.opt)
        self.emulator = Emulator(self.firmware.elf, target, (FLASH_ORIGIN, FLASH_BYTES), (RAM_ORIGIN, RAM_BYTES))
        arena = self.emulator.symbol(f"{NAME}_arena")
        self.arena_address = arena.address
        # --memory: each region after the first is an array of its own; an address of
        # the plan maps to (array address - region base) + address
        # (an empty region has no array: nothing lies in it)
        used = [r for r in program.regions[1:] if r.size]
        arrays = [arena] + [self.emulator.symbol(f"{NAME}_{r.name}_arena") for r in used]
        self.region_bases = [(r.base, a.address - r.base) for r, a in zip([*program.regions[:1], *used], arrays)] \
            or [(0, arena.address)]
        self.arena_storage = sum(a.size for a in arrays)
        # --io-buffers caller: the harness's buffers and the tables <name>_invoke_io takes
        self.caller_io = bool(program.caller_buffers)
        if self.caller_io:
            symbol = self.emulator.symbol
            self.input_addresses = [symbol(f"mcuc_harness_input{i}").address for i in range(len(self.io.inputs))]
            self.output_addresses = [symbol(f"mcuc_harness_output{i}").address for i in range(len(self.io.outputs))]
            self.invoke_args = (symbol("mcuc_harness_inputs").address, symbol("mcuc_harness_outputs").address)
        # The state area (a model that keeps state): a run writes it first and reads it after
        self.state_address = self.emulator.symbol(f"{NAME}_state_area").address if program.state_bytes else None
        self.marks = tuple(f"{NAME}_step_{i}" for i in range(len(program.steps) + 1))
        missing = [m for m in self.marks if m not in self.emulator.symbols]
        if missing:
            raise MCUCError(f"the {target.name} build has no step labels {missing[:3]}...: was the "
                            "project built without MCUC_PROFILE_STEPS?")

    def _address(self, offset: int) -> int:
        """The emulator's address of the plan's arena address `offset`."""
        return next(shift for base, shift in reversed(self.region_bases) if base <= offset) + offset

    def run(self, inputs, budget: int | None = None, count_instructions: bool = True,
            state: np.ndarray | None = None) -> CortexMResult:
        """One inference. `budget`: instructions before the run counts as runaway code
        (default: generous for the model's size, see runaway_budget).
        `count_instructions=False`: outputs and stack only, many times faster (emulator.py).
        A model with a state area starts from `state` (uint8, its bytes; None: the reset
        state the firmware image holds), and gets the state after the run written into it."""
        io = self.io
        budget = self.default_budget if budget is None else budget
        if self.caller_io:
            packed = io.pack(inputs)
            writes = list(zip(self.input_addresses, packed))
            reads = [(a, t.nbytes) for a, t in zip(self.output_addresses, io.outputs)]
            reads += [(a, len(data)) for a, data in writes]  # the inputs, unchanged after the run
            function, args = f"{NAME}_invoke_io", self.invoke_args
        else:
            writes = [(self._address(offset), data) for offset, data in zip(io.input_offsets, io.pack(inputs))]
            reads = [(self._address(offset), t.nbytes) for offset, t in zip(io.output_offsets, io.outputs)]
            function, args = f"{NAME}_invoke", ()
        kept = self.state_address is not None and state is not None
        if kept:
            writes.append((self.state_address, np.ascontiguousarray(state, np.uint8).tobytes()))
            reads.append((self.state_address, io.state_bytes))
        call = self.emulator.call(function, args, writes=writes, reads=reads,
                                  marks=self.marks if count_instructions else (), budget=budget,
                                  count_instructions=count_instructions)
        if call.return_value != 0:
            raise MCUCError(f"{function} returned {call.return_value} on {self.target.name}")
        if self.caller_io:
            given = call.reads[len(io.outputs):]
            if any(bytes(a) != bytes(b) for a, b in zip(given, packed)):
                raise MCUCError(f"{function} wrote into a caller's input buffer on {self.target.name}")
        if kept:
            state[...] = np.frombuffer(bytes(call.reads[-1]), np.uint8)
        by_step, by_kind = _per_step([call.marks.get(m) for m in self.marks] if count_instructions else [],
                                     self.step_kinds, call.instructions)
        cycles_by_step, cycles_by_kind = _per_step(
            [call.cycle_marks.get(m) for m in self.marks] if call.cycles is not None else [],
            self.step_kinds, call.cycles)
        model = self.firmware.model
        return CortexMResult(
            outputs=io.unpack(call.reads[:len(io.outputs)]),
            instructions=call.instructions,
            stack_bytes=call.stack_bytes,
            flash_bytes=model.flash_bytes,
            static_ram_bytes=model.ram_bytes - self.arena_storage,
            arena_bytes=self.arena_bytes,
            instructions_by_step=by_step,
            instructions_by_op_kind=by_kind,
            cycles=call.cycles,
            cycles_by_step=cycles_by_step,
            cycles_by_op_kind=cycles_by_kind,
            kernel_by_step=list(self.kernel_by_step),
        )
