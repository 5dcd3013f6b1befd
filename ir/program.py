"""The scheduled program: what every backend consumes (DESIGN.md, The IR).

An ordered list of steps with every buffer placed at a byte offset in one arena. Both
backends run the same program, so the host backend checks the memory plan as well as
the arithmetic. passes/ produce it; backends/ read it.

Each Step says how its output is placed against its inputs with exactly one value of a
small closed set (`StepPlacement`): `Fresh`, `InPlace`, `Overlap` or `Alias`. Each class
states its rule below; backends must honour them, and ir/program_check.check_program
verifies every rule on the offsets (the pipeline runs it after every plan).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .graph import Graph
from .op import Op
from .tensor import Tensor

# How many pixels an overlapping (Overlap) convolution kernel may have in flight.
POINTWISE_OVERLAP_PIXELS = 2


@dataclass(frozen=True)
class Fresh:
    """The step's outputs overlap none of its inputs: any kernel is correct."""


@dataclass(frozen=True)
class InPlace:
    """Output 0 is written over input `input`, which dies at this step, starting `shift`
    bytes after it (negative: before).

    - ELEMENTWISE ops (ir/ops Trait.ELEMENTWISE: ADD, MUL, RELU, RELU6, LOGISTIC,
      HARD_SWISH, QUANTIZE), over an input of the output's shape and item size (so
      QUANTIZE only int8 -> int8), at the same offset (`shift` 0): element i is read
      before it is written, so the ordinary kernel is already safe. Another input at the
      same offset with the same size (an alias of it, or x + x) is read element by
      element alike.
    - DEPTHWISE_CONV_2D with depth multiplier 1 over input 0 (int8): the backend must
      use its in-place kernel, channel by channel through the scratch plane it asked for
      with `scratch(op, in_place=True)`; the bytes hold max(input, output). `shift` is a
      multiple of the channel count C, i.e. a whole number of pixels. The kernel stays
      correct: for each batch b, for each channel c, it first copies input plane (b, c)
      into its scratch and only then writes output channel (b, c); with the shift a
      multiple of C, output channel c only lands on input bytes of channel c (already
      copied) or outside the input (the plan keeps those bytes free). No output byte of
      batch b may land on an input pixel of a later batch (not copied yet).
    """

    input: int = 0
    shift: int = 0


@dataclass(frozen=True)
class Overlap:
    """Output 0 overlaps input `input`, which dies at this step, at a DIFFERENT offset.

    - CONV_2D (ungrouped, int8, any kernel/stride/padding/dilation) or DEPTHWISE_CONV_2D
      with a depth multiplier > 1, over input 0. The ordinary kernel runs; it must
      produce output pixels in increasing order (pixel = flattened N*OH*OW index), at
      most POINTWISE_OVERLAP_PIXELS (2) pixels at a time: while it works on pixels
      [p, p+2) it may read their windows and write their outputs in any interleaving.
      The plan guarantees that output bytes of pixels < p+2 never cover input bytes that
      pixels >= p still read. (A CMSIS-style two-row im2col/GEMM and a plain pixel loop
      both qualify; a channel-major loop over all pixels does not.)
    - PATCH_STAGE (a PatchLoop) over a stage input with an output shift
      (PatchStage.output_shifts): backends run the patches in order (row-major) and
      write each patch's output region only after the patch has read everything it
      reads; the plan guarantees that no such write touches an input byte that a later
      patch still reads.
    """

    input: int = 0


@dataclass(frozen=True)
class Alias:
    """The op moves no bytes: its outputs already sit where the plan put them. A VIEW op
    (ir/ops Trait.VIEW: RESHAPE, SQUEEZE) shares its input's offset; a CONCATENATION
    whose outer dimensions are all 1 has had every producer write straight into its
    output's slice (each input at the output's offset plus the bytes of the inputs
    before it, with the output's dtype and quantization). Backends may emit nothing for
    such a step; running the kernel anyway is harmless (it copies bytes onto
    themselves)."""


StepPlacement = Fresh | InPlace | Overlap | Alias
FRESH = Fresh()
ALIAS = Alias()


@dataclass(frozen=True)
class ScratchRequest:
    """A temporary buffer a backend's kernel needs while one op runs (partial im2col,
    a depthwise channel plane, ...). Backends say what they need; the planner places it
    in the arena like any activation, live only during its op.

    `optional`: a faster form of the kernel needs it and the kernel can do without. The
    planner places it after everything else, only in bytes of the arena that are free
    during its op, so it never grows the arena or moves anything (passes/plan.py); the
    backend tells from the step's scratch whether it got it."""

    name: str
    size: int
    align: int = 4
    optional: bool = False


@dataclass(frozen=True)
class Buffer:
    """A placed interval of the arena: bytes [offset, offset + size), live from step
    `first` to step `last` inclusive.

    `kind` is "tensor" (one activation tensor, `name` is the tensor's name) or "scratch"
    (a kernel's temporary, live during one step). `group` names the storage group a
    tensor belongs to (its root tensor): buffers of one group may share bytes while both
    live only as an InPlace or Overlap pair or an Alias (RESHAPE, CONCATENATION slice);
    buffers of different groups never do."""

    name: str
    offset: int
    size: int
    first: int
    last: int
    align: int = 4
    kind: str = "tensor"
    group: str = ""

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True, eq=False)
class Step:
    """One op call. `scratch` holds the placed scratch buffers, in the order the
    backend's ScratchRequests listed them; `placement` is how its output sits against
    its inputs (Fresh, InPlace, Overlap or Alias; each class states its rule)."""

    op: Op
    scratch: tuple[Buffer, ...] = ()
    placement: StepPlacement = FRESH


# Where the first caller buffer's addresses start after the arena, and how each is aligned
# in that address space (the caller's real buffers need only CALLER_BUFFER_ALIGN).
CALLER_ADDRESS_ALIGN = 16
CALLER_BUFFER_ALIGN = 4
"""Bytes a caller buffer's real address must be a multiple of: what the planner assumes of
every tensor offset in the arena (passes/lifetimes.DEFAULT_ALIGN), so kernels may load
words from it."""


@dataclass(frozen=True)
class CallerBuffer:
    """A graph input or output that lives outside the arena, in a buffer the caller
    passes at each run (graph.io_buffers == "caller").

    The plan gives it the addresses [base, base + tensor.nbytes) of one address space
    that holds the arena at [0, arena_bytes) and every caller buffer after it (each base
    a multiple of CALLER_ADDRESS_ALIGN, none overlapping): `Program.offsets` of the
    tensor, and of every view of it (a RESHAPE of an input, the slices of an output
    concatenation written in place), lies there. Backends map such an address to the
    caller's pointer plus (address - base). `role` is "input" or "output", `index` the
    position among the graph's inputs or outputs. An input buffer is read-only: no step
    writes into it. An output buffer holds only the output's own bytes: only the steps
    computing them write there (never InPlace or Overlap over another tensor), and no
    scratch."""

    role: str
    index: int
    tensor: Tensor
    base: int

    @property
    def end(self) -> int:
        return self.base + self.tensor.nbytes


# How each state tensor's address is aligned inside the state area (and the area's start).
STATE_ALIGN = 8


def state_layout(address_bytes: int, states) -> tuple[int, dict[Tensor, int], int]:
    """(base, address of each state tensor, bytes) of the state area: the graph's state
    tensors (Tensor.state) one after the other from the first multiple of
    CALLER_ADDRESS_ALIGN at or after `address_bytes` (the end of the arena and the caller
    buffers), each at a multiple of STATE_ALIGN from the base."""
    base = -(-address_bytes // CALLER_ADDRESS_ALIGN) * CALLER_ADDRESS_ALIGN
    at, addresses = 0, {}
    for t in states:
        at = -(-at // STATE_ALIGN) * STATE_ALIGN
        addresses[t] = base + at
        at += t.nbytes
    return base, addresses, at


# Where each memory region after the first starts in the address space (`--memory`).
REGION_ADDRESS_ALIGN = 16


@dataclass(frozen=True)
class PlacedRegion:
    """One memory region of a multi-region plan (`--memory`, passes/regions.py): the
    addresses [base, base + size) of the program's address space, which the backends
    map to one array per region (the first region's array is the arena itself).
    `capacity` is the user's limit for it and `cost` the relative time of one byte's
    access there. `weights_bytes` is not None for the region that also holds the model's
    constant arrays (`--weights-in-ram`): their bytes, beside the buffers.
    `size` + `weights_bytes` <= `capacity`. Every arena buffer lies wholly in one region."""

    name: str
    base: int
    size: int
    capacity: int
    cost: float
    weights_bytes: int | None = None

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, eq=False)
class Program:
    """A graph in its scheduled order with a memory plan.

    `offsets` maps every activation tensor (graph inputs and outputs included) to its
    byte offset in the arena; aliases (RESHAPE, in-place ops) share offsets. With
    `caller_buffers` (graph.io_buffers == "caller"), the graph inputs and outputs and
    their views have addresses past the arena, inside their CallerBuffer.
    `steps[i].op` is `graph.ops[i]` (the graph is already in the scheduled order).
    The graph's state tensors (Tensor.state) live in the state area, `state_bytes` bytes
    at addresses from `state_base` on, after the arena and the caller buffers
    (`state_layout`): memory of its own that keeps its bytes from one invocation to the
    next (backends map it to a persistent array; the arena, which holds nothing between
    invocations, may be shared with other models).
    `live_bound_bytes` is the largest sum of arena buffer sizes live at one step: no
    placement of these buffers can use a smaller arena, so arena_bytes -
    live_bound_bytes is the placement's loss. With `regions` (`--memory`), the arena
    [0, arena_bytes) is the regions one after the other (alignment gaps between them)
    and every arena buffer lies in one of them.
    """

    graph: Graph
    steps: tuple[Step, ...]
    offsets: dict[Tensor, int]
    arena_bytes: int
    buffers: tuple[Buffer, ...] = ()
    live_bound_bytes: int = 0
    notes: dict = field(default_factory=dict)
    caller_buffers: tuple[CallerBuffer, ...] = ()
    regions: tuple[PlacedRegion, ...] = ()
    state_base: int = 0
    state_bytes: int = 0

    def offset(self, tensor: Tensor) -> int:
        return self.offsets[tensor]

    @property
    def address_bytes(self) -> int:
        """The end of the address space: the arena's end, the last caller buffer's or the
        state area's."""
        return max([self.arena_bytes, *(b.end for b in self.caller_buffers),
                    *([self.state_base + self.state_bytes] if self.state_bytes else [])])

    def in_state(self, address: int) -> bool:
        """Whether `address` lies in the state area (its end included, for empty ranges)."""
        return self.state_bytes > 0 and self.state_base <= address <= self.state_base + self.state_bytes

    def caller_buffer_at(self, address: int) -> CallerBuffer | None:
        """The caller buffer holding `address` (its end included, for empty ranges),
        None for an arena address."""
        if address < self.arena_bytes or self.in_state(address):
            return None
        k = _span_at(address, self.caller_buffers)
        return None if k is None else self.caller_buffers[k]

    def region_at(self, address: int) -> tuple[int, PlacedRegion] | None:
        """The index and PlacedRegion holding arena `address` (its end included, for empty
        ranges); None without regions or outside them."""
        k = _span_at(address, self.regions)
        return None if k is None else (k, self.regions[k])

    def in_arena(self, tensor: Tensor) -> bool:
        """Whether an activation tensor lives in the arena (not in a caller buffer or the
        state area)."""
        return not tensor.state and self.caller_buffer_at(self.offsets[tensor]) is None

    def reset_state_area(self):
        """The state area's bytes after a reset (numpy uint8): each state tensor's bytes
        its Tensor.reset_byte, alignment gaps 0."""
        import numpy as np

        area = np.zeros(self.state_bytes, np.uint8)
        for t in self.graph.states:
            at = self.offsets[t] - self.state_base
            area[at:at + t.nbytes] = t.reset_byte
        return area

    def state_records(self) -> list[dict]:
        """Each state tensor for reports: name, dtype, shape, offset in the state area,
        bytes and reset byte."""
        return [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "offset": self.offsets[t] - self.state_base,
                 "bytes": t.nbytes, "reset_byte": t.reset_byte} for t in self.graph.states]

    def with_state_area(self) -> "Program":
        """This program with its graph's state tensors laid out after the arena and the
        caller buffers (`state_layout`), where the arena or the caller buffers moved."""
        states = self.graph.states
        ends = [self.arena_bytes, *(b.end for b in self.caller_buffers)]
        base, addresses, size = state_layout(max(ends), states)
        return replace(self, offsets={**self.offsets, **addresses}, state_base=base, state_bytes=size)


def _span_at(address: int, spans) -> int | None:
    """The index of the first of `spans` (each with .base and .end) holding `address`, or
    else the first ending exactly at it (an empty tensor's address); None if none."""
    inside = [k for k, s in enumerate(spans) if s.base <= address < s.end]
    ends = [k for k, s in enumerate(spans) if address == s.end]
    return (inside or ends or [None])[0]


def caller_buffer_bases(arena_bytes: int, tensors) -> list[int]:
    """The base address of each caller buffer after an arena of `arena_bytes`, in order."""
    bases, at = [], arena_bytes
    for t in tensors:
        at = -(-at // CALLER_ADDRESS_ALIGN) * CALLER_ADDRESS_ALIGN
        bases.append(at)
        at += max(t.nbytes, 1)
    return bases


@dataclass(frozen=True, eq=False)
class PatchLoop(Step):
    """The step of a PATCH_STAGE op (patch-based inference, mcuc.passes.patch).

    `op.attrs` is an ir.patches.PatchStage. `calls` is the stage lowered for this plan
    (ir.patch_lowering.lower_stage): copies and region calls with every arena offset
    decided. Every executor (the reference's run_program, the LLVM and C backends) runs
    exactly these calls in order and nothing else. `scratch[0]` is the stage's workspace
    (patch buffers and inner ops' kernel scratch) and `scratch[1]`, when the stage needs
    one, its temporary area for gathers and scatters; the stage's inputs and output never
    overlap either.

    With an Overlap placement, the stage output sits over the bytes of a stage input k
    that dies at this step (stage.output_shifts[k] bytes before it): the calls run the
    patches in order (row-major) and write each patch's output region only after the
    patch has read everything it reads; then no write touches an input byte a later
    patch still reads (ir/program_check verifies it for the planned offsets).
    """

    calls: tuple = ()

    @property
    def stage(self):
        return self.op.attrs
