"""The scheduled program: what every backend consumes (DESIGN.md, The IR).

An ordered list of steps with every buffer placed at a byte offset in one arena. Both
backends run the same program, so the host backend checks the memory plan as well as
the arithmetic. passes/ produce it; backends/ read it.

How the memory plan shows up in a Step (backends must honour these flags):

- `in_place`: output 0 is written over input `in_place_input` (same arena offset). For
  elementwise ops (ADD, MUL, RELU, RELU6, LOGISTIC, HARD_SWISH, QUANTIZE int8->int8)
  element i is read before it is written, so the ordinary kernel is already safe. For
  DEPTHWISE_CONV_2D the backend must use its in-place kernel (channel by channel through
  the scratch plane it asked for with `scratch(op, in_place=True)`); the buffer holds
  max(input bytes, output bytes).
- `in_place_shift` (DEPTHWISE_CONV_2D in place only; 0 for every other step): output 0
  starts `in_place_shift` bytes after input 0 (negative: before), a multiple of the
  channel count C, i.e. a whole number of pixels. The in-place kernel stays correct:
  for each batch b, for each channel c, it first copies input plane (b, c) into its
  scratch and only then writes output channel (b, c); with the shift a multiple of C,
  output channel c only lands on input bytes of channel c (already copied) or outside
  the input (the plan keeps those bytes free). The plan also guarantees that no output
  byte of batch b lands on an input pixel of a later batch (not copied yet).
  run_program checks all of this.
- `overlap`: output 0 overlaps input 0 at a DIFFERENT offset (CONV_2D, ungrouped int8,
  any kernel/stride/padding; DEPTHWISE_CONV_2D with a depth multiplier > 1). The
  ordinary kernel runs; it must produce output pixels in increasing order (pixel =
  flattened N*OH*OW index), at most POINTWISE_OVERLAP_PIXELS (2) pixels at a time: while
  it works on pixels [p, p+2) it may read their windows and write their outputs in any
  interleaving. The plan guarantees that output bytes of pixels < p+2 never cover input
  bytes that pixels >= p still read. (A CMSIS-style two-row im2col/GEMM and a plain
  pixel loop both qualify; a channel-major loop over all pixels does not.)
- `alias`: the op moves no bytes: its outputs already sit where the plan put them
  (RESHAPE/SQUEEZE share their input's offset; a CONCATENATION whose producers all wrote
  straight into its output's slices). Backends may emit nothing for such a step; running
  the kernel anyway is harmless (it copies bytes onto themselves).
- A CONCATENATION that is not an alias may still have some inputs already in their
  slices (their offset equals the slice's offset): copying those is a self-copy, so the
  ordinary kernel (memmove semantics per input) stays correct.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Graph
from .op import Op
from .tensor import Tensor

# How many pixels an in-place (overlapping) 1x1 CONV_2D kernel may have in flight.
POINTWISE_OVERLAP_PIXELS = 2


@dataclass(frozen=True)
class ScratchRequest:
    """A temporary buffer a backend's kernel needs while one op runs (partial im2col,
    a depthwise channel plane, ...). Backends say what they need; the planner places it
    in the arena like any activation, live only during its op."""

    name: str
    size: int
    align: int = 4


@dataclass(frozen=True)
class Buffer:
    """A placed interval of the arena: bytes [offset, offset + size), live from step
    `first` to step `last` inclusive.

    `kind` is "tensor" (one activation tensor, `name` is the tensor's name) or "scratch"
    (a kernel's temporary, live during one step). `group` names the storage group a
    tensor belongs to (its root tensor): buffers of one group may share bytes while both
    live only as an in-place pair or an alias (RESHAPE, CONCATENATION slice); buffers of
    different groups never do."""

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
    backend's ScratchRequests listed them. See the module docstring for `in_place`,
    `in_place_input`, `in_place_shift`, `overlap` and `alias`."""

    op: Op
    scratch: tuple[Buffer, ...] = ()
    in_place: bool = False
    in_place_input: int = 0
    in_place_shift: int = 0
    overlap: bool = False
    alias: bool = False


@dataclass(frozen=True, eq=False)
class Program:
    """A graph in its scheduled order with a memory plan.

    `offsets` maps every activation tensor (graph inputs and outputs included) to its
    byte offset in the arena; aliases (RESHAPE, in-place ops) share offsets.
    `steps[i].op` is `graph.ops[i]` (the graph is already in the scheduled order).
    `live_bound_bytes` is the largest sum of buffer sizes live at one step: no placement
    of these buffers can use a smaller arena, so arena_bytes - live_bound_bytes is the
    placement's loss.
    """

    graph: Graph
    steps: tuple[Step, ...]
    offsets: dict[Tensor, int]
    arena_bytes: int
    buffers: tuple[Buffer, ...] = ()
    live_bound_bytes: int = 0
    notes: dict = field(default_factory=dict)

    def offset(self, tensor: Tensor) -> int:
        return self.offsets[tensor]


@dataclass(frozen=True, eq=False)
class PatchLoop(Step):
    """The step of a PATCH_STAGE op (patch-based inference, mcuc.passes.patch).

    `op.attrs` is an ir.patch_interpreter.PatchStage. What a backend runs: for each patch
    p (stage.patch_regions[p], row-major), for each op i of stage.ops in order whose
    stage.patches[p][i].out is not empty, op i computes that output region. It reads each
    input k over stage.patches[p][i].geometry.inputs[k]: a stage input (a full tensor at
    its arena offset) or an intermediate held in its patch buffer (at buffer_offset(t),
    contiguous over the region its producer computed in this patch: read the sub-region).
    Window ops and PAD apply geometry.padding (border padding: nonzero only where the
    region touches the full tensor's border) instead of their attribute padding. Op i's
    output goes to its patch buffer, or, for the stage's output, into its region of the
    full tensor (a strided write). `scratch[0]` is the stage's workspace (patch buffers
    and inner ops' kernel scratch); the stage's inputs and output never overlap it.

    With `overlap`, the stage output sits stage.output_shifts[k] bytes before a stage
    input k that dies at this step, over its bytes: backends must run the patches in
    order (row-major) and write each patch's output region only after the patch has read
    everything it reads; then no write touches an input byte a later patch still reads
    (run_program checks every write).
    """

    @property
    def stage(self):
        return self.op.attrs

    @property
    def workspace_offset(self) -> int:
        return self.scratch[0].offset if self.scratch else 0

    def buffer_offset(self, tensor: Tensor) -> int:
        """Arena offset of an intermediate tensor's patch buffer."""
        return self.workspace_offset + self.stage.buffer(tensor).delta

    def op_scratch_offsets(self, index: int) -> tuple[tuple[str, int, int], ...]:
        """(name, arena offset, size) of inner op `index`'s kernel scratch."""
        return tuple((name, self.workspace_offset + delta, size)
                     for name, delta, size in self.stage.op_scratch[index])
