"""check_program: the static verifier of a Program's memory plan.

Every promise a step's placement makes (ir/program.py: Fresh, InPlace, Overlap, Alias)
is checked on the planned offsets alone, without running anything, so a wrong plan is a
compile-time PlanError naming the step, its op and the broken rule. The pipeline runs it
after every plan (pipeline.schedule, passes/patch_schedule.schedule_with_patches), and
run_program runs it before executing. Which op may take which placement is decided by
the predicates here too (in_place_inputs, overlap_inputs, depthwise_shift_allowed,
concat_slices); the planner (passes/aliasing.py) asks the same ones.

The rules, per step:

- arena: every tensor and scratch buffer lies inside [0, arena_bytes).
- in place, overlap, alias: the placement is one the op may take, and the offsets meet
  it. An Overlap convolution is emulated in its kernel's pixel order, a shifted InPlace
  depthwise in its batch/channel order, an Overlap patch stage patch by patch.
- output over input: an output overlaps an input of its own step only as the placement
  declares (a Fresh step's outputs overlap no input at all).
- scratch: a scratch buffer overlaps none of its step's inputs, outputs or other scratch.
- live tensors kept: no byte a step writes (its outputs, unless it is an Alias, and its
  scratch) belongs to another tensor that was produced earlier and is read after the
  step or is a graph output.
- patch buffers: a PatchLoop's workspace holds every patch buffer and inner scratch, and
  every region an inner op computes fits its patch buffer.
- patch calls: a PatchLoop is lowered (ir/patch_lowering.py), and each of its calls reads
  only inside the arena (or a caller buffer) and writes only into the step's own scratch
  (workspace and temporary area) or its output tensor.
- caller buffers (graph.io_buffers == "caller", ir/program.CallerBuffer): every graph
  input and output has one, at its base, past the arena and apart from the others; a
  tensor lies wholly in the arena or wholly in one caller buffer, scratch only in the
  arena; no step writes into an input's buffer, and a step writes into an output's
  buffer only as a Fresh step or an Alias (never InPlace or Overlap: the buffer holds no
  other tensor's bytes first).
- state (ir/program.Program.state_base): every state tensor of the graph lies wholly in
  the state area, apart from the others, and the area lies past the arena and the caller
  buffers, so nothing else in one invocation touches it.
- memory regions (`--memory`, ir/program.PlacedRegion): the regions start at 0, follow
  one another apart, each within its capacity (weights it holds included), the last
  ending the arena, and every
  arena buffer lies wholly inside one region (so a backend may give each its own array).
"""
from __future__ import annotations

import numpy as np

from .errors import MCUCError
from .op import Op
from .ops import Trait, op_def
from .ops.kinds import CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, PATCH_STAGE
from .ops.reshape import same_quantization
from .patch_lowering import BoxCopy
from .patches import PatchStage, first_read_byte, region_end_byte
from .program import POINTWISE_OVERLAP_PIXELS, Alias, Fresh, InPlace, Overlap, PatchLoop, Program, Step
from .tensor import Tensor, quoted

RULE_ARENA = "arena"
RULE_IN_PLACE = "in place"
RULE_OVERLAP = "overlap"
RULE_ALIAS = "alias"
RULE_OUTPUT_OVER_INPUT = "output over input"
RULE_SCRATCH = "scratch"
RULE_LIVE = "live tensors kept"
RULE_PATCH_BUFFERS = "patch buffers"
RULE_PATCH_CALLS = "patch calls"
RULE_CALLER = "caller buffers"
RULE_REGIONS = "memory regions"
RULE_STATE = "state"


class PlanError(MCUCError):
    """A Program breaks a placement rule: a bug in the planner (or in whatever rewrote
    the Program), never in the model. `step` is the step's index (None: a graph edge),
    `rule` the broken rule's name (the RULE_* constants)."""

    def __init__(self, message: str, step: int | None = None, rule: str = ""):
        super().__init__(message)
        self.step = step
        self.rule = rule


def _fail(index: int, op: Op, rule: str, detail: str) -> PlanError:
    return PlanError(f"step {index} {op.label}: {rule} rule broken: {detail}", index, rule)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


# -- which op may take which placement ---------------------------------------------------


def is_overlappable_conv(op: Op) -> bool:
    """An ungrouped int8 CONV_2D (any kernel, stride, padding, dilation) or a depthwise
    conv with a depth multiplier > 1: their ordinary kernels produce output pixels in
    increasing order, so the output may overlap the input at a shift."""
    if op.kind not in (CONV_2D, DEPTHWISE_CONV_2D) or len(op.inputs) < 2 or len(op.outputs) != 1:
        return False
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    if x.is_constant or len(x.shape) != 4 or x.itemsize != 1 or y.itemsize != 1:
        return False
    if op.kind == DEPTHWISE_CONV_2D:
        return getattr(op.attrs, "depth_multiplier", 1) != 1
    return w.shape[3] == x.shape[3]


def in_place_inputs(op: Op) -> list[int]:
    """The inputs `op` may run InPlace over (before lifetimes decide): for an ELEMENTWISE
    op every computed input of the output's shape and item size; for an int8 depthwise
    conv with depth multiplier 1, input 0."""
    if len(op.outputs) != 1:
        return []
    y = op.outputs[0]
    if op.kind == DEPTHWISE_CONV_2D:
        x = op.inputs[0]
        in_place = x.dtype == y.dtype and not x.is_constant and x.itemsize == 1 and not is_overlappable_conv(op)
        return [0] if in_place else []
    if op_def(op.kind).has(Trait.ELEMENTWISE):
        return [k for k, t in enumerate(op.inputs)
                if t is not None and not t.is_constant and t.shape == y.shape and t.itemsize == y.itemsize]
    return []


def overlap_inputs(op: Op) -> list[int]:
    """The inputs `op` may Overlap: input 0 of an overlappable convolution (a depthwise
    one keeping its dtype); the inputs of a PATCH_STAGE that have an output shift."""
    if len(op.outputs) != 1:
        return []
    if op.kind == DEPTHWISE_CONV_2D:
        return [0] if op.inputs[0].dtype == op.outputs[0].dtype and is_overlappable_conv(op) else []
    if is_overlappable_conv(op):
        return [0]
    if op.kind == PATCH_STAGE:
        return [k for k, shift in enumerate(op.attrs.output_shifts) if shift is not None]
    return []


def depthwise_shift_allowed(op: Op, shift: int) -> bool:
    """Whether an in-place depthwise conv (depth multiplier 1) may write its output
    `shift` bytes after its input: a whole number of pixels (output channel c then only
    covers input bytes of channel c), and, since the kernel's channel loop runs inside
    its batch loop, no output pixel of batch b may cover an input pixel of a later batch
    (not saved yet)."""
    x, y = op.inputs[0], op.outputs[0]
    if op.kind != DEPTHWISE_CONV_2D or len(x.shape) != 4 or len(y.shape) != 4 or y.shape[3] != x.shape[3]:
        return False
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    if shift % c:
        return False
    if n == 1:
        return True
    landing = np.arange(n * oh * ow) + shift // c  # the input pixel each output pixel covers
    inside = (landing >= 0) & (landing < n * h * w)
    return bool(np.all(landing[inside] // (h * w) <= (np.arange(n * oh * ow) // (oh * ow))[inside]))


def concat_slices(op: Op) -> list[int] | None:
    """Byte offset of each CONCATENATION input's slice in the output, or None when the
    slices are not contiguous (some dimension before the axis is not 1)."""
    out = op.outputs[0]
    axis = op.attrs.axis + len(out.shape) if op.attrs.axis < 0 else op.attrs.axis
    if any(d != 1 for d in out.shape[:axis]):
        return None
    offsets, at = [], 0
    for t in op.inputs:
        offsets.append(at)
        at += t.nbytes
    return offsets


def conv_overlap_safe(op: Op, input_offset: int, output_offset: int) -> bool:
    """An Overlap convolution emulated pixel by pixel: the kernel produces output pixels
    in increasing order, POINTWISE_OVERLAP_PIXELS at a time; before each group is
    finished, the input bytes its windows read must not have been overwritten by the
    output written so far (this group's included)."""
    x, w, y = op.inputs[0], op.inputs[1], op.outputs[0]
    a = op.attrs
    n, h, wd, cin = x.shape
    _, oh, ow, cout = y.shape
    kh, kw = w.shape[1], w.shape[2]
    pixels = n * oh * ow
    chunk = POINTWISE_OVERLAP_PIXELS
    for p in range(0, pixels, chunk):
        written_end = output_offset + min(p + chunk, pixels) * cout
        if written_end <= input_offset:
            continue  # the output written so far lies wholly before the input
        for q in range(p, min(p + chunk, pixels)):
            b, rest = divmod(q, oh * ow)
            oy, ox = divmod(rest, ow)
            cols = [ox * a.stride[1] - a.padding.left + kx * a.dilation[1] for kx in range(kw)]
            cols = [c for c in cols if 0 <= c < wd]
            if not cols:
                continue
            for ky in range(kh):
                iy = oy * a.stride[0] - a.padding.top + ky * a.dilation[0]
                if not 0 <= iy < h:
                    continue
                first = input_offset + ((b * h + iy) * wd + min(cols)) * cin
                last = input_offset + ((b * h + iy) * wd + max(cols) + 1) * cin
                if first < written_end and output_offset < last:
                    return False
    return True


def patch_write_clobbers(stage: PatchStage, offsets: dict[Tensor, int]) -> tuple[int, Tensor] | None:
    """(patch, stage input) of the first patch whose output region, written once the patch
    has read its inputs, covers bytes of an input that this or a later patch still reads;
    None when the patches run safely at these offsets."""
    out_at = offsets[stage.output]
    out_end = out_at + stage.output.nbytes
    for x in stage.inputs:
        if not _overlap(offsets[x], offsets[x] + x.nbytes, out_at, out_end):
            continue
        lowest = x.nbytes
        for p in reversed(range(len(stage.patches))):
            lowest = min(lowest, first_read_byte(stage, p, x))
            if out_at + region_end_byte(stage.output, stage.patch_regions[p]) > offsets[x] + lowest:
                return p, x
    return None


# -- the verifier ------------------------------------------------------------------------


def tensor_steps(program: Program) -> tuple[dict[Tensor, int], dict[Tensor, int]]:
    """Per activation tensor: the step producing it (-1: graph input) and the last step
    reading it (len(steps): a graph output, read after the last step)."""
    produced: dict[Tensor, int] = {t: -1 for t in program.graph.inputs}
    last_read: dict[Tensor, int] = {}
    for index, step in enumerate(program.steps):
        for t in step.op.inputs:
            if t is not None and not t.is_constant:
                last_read[t] = index
        for t in step.op.outputs:
            produced.setdefault(t, index)
    for t in program.graph.outputs:
        last_read[t] = len(program.steps)
    return produced, last_read


def check_program(program: Program) -> None:
    """PlanError at the first step that breaks a rule of the module docstring."""
    _check_caller_buffers(program)
    _check_regions(program)
    _check_state(program)
    for t in (*program.graph.inputs, *program.graph.outputs):
        if t.is_constant or program.caller_buffers:
            continue
        at = program.offsets.get(t)
        if at is None or at < 0 or at + t.nbytes > program.arena_bytes:
            where = "no offset" if at is None else f"[{at}, {at + t.nbytes})"
            raise PlanError(f"graph edge {t.name!r}: {RULE_ARENA} rule broken: it has {where} in an arena of "
                            f"{program.arena_bytes} B", None, RULE_ARENA)
    produced, last_read = tensor_steps(program)
    for index, step in enumerate(program.steps):
        _check_arena(program, index, step)
        _check_placement(program, index, step)
        _check_outputs_over_inputs(program, index, step)
        _check_scratch(program, index, step)
        _check_live_tensors_kept(program, index, produced, last_read)
        if isinstance(step, PatchLoop):
            _check_patch_buffers(index, step)
            _check_patch_calls(program, index, step)


def _check_caller_buffers(program: Program) -> None:
    """The caller buffers against the graph's edges (the graph-wide part of the rule)."""
    graph = program.graph
    buffers = program.caller_buffers
    if graph.io_buffers != "caller":
        if buffers:
            raise PlanError(f"graph {graph.name!r}: {RULE_CALLER} rule broken: the graph keeps its inputs and "
                            f"outputs in the arena, but the plan has {len(buffers)} caller buffers", None, RULE_CALLER)
        return
    edges = [("input", i, t) for i, t in enumerate(graph.inputs)]
    edges += [("output", j, t) for j, t in enumerate(graph.outputs) if not t.is_constant]
    found = {(b.role, b.index): b for b in buffers}
    for role, i, t in edges:
        b = found.get((role, i))
        if b is None or b.tensor is not t or program.offsets.get(t) != b.base:
            raise PlanError(f"graph {role} {i} {t.name!r}: {RULE_CALLER} rule broken: it is not at the start of a "
                            f"caller buffer of its own", None, RULE_CALLER)
    ordered = sorted(buffers, key=lambda b: b.base)
    if len(buffers) != len(edges) or (ordered and ordered[0].base < program.arena_bytes) or any(
            a.end > b.base for a, b in zip(ordered, ordered[1:])):
        raise PlanError(f"graph {graph.name!r}: {RULE_CALLER} rule broken: the caller buffers overlap the arena or "
                        f"each other, or are not one per graph input and output", None, RULE_CALLER)


def _check_state(program: Program) -> None:
    """The state tensors inside the state area, apart, and the area after everything else."""
    start, end = program.state_base, program.state_base + program.state_bytes
    before = max([program.arena_bytes, *(b.end for b in program.caller_buffers)])
    spans = sorted(((program.offsets.get(t, -1), t) for t in program.graph.states), key=lambda span: span[0])
    if program.state_bytes and start < before:
        raise PlanError(f"graph {quoted(program.graph.name)}: {RULE_STATE} rule broken: the state area starts at "
                        f"{start}, inside the arena or a caller buffer (they end at {before})", None, RULE_STATE)
    for k, (at, t) in enumerate(spans):
        if at < start or at + t.nbytes > end or (k and spans[k - 1][0] + spans[k - 1][1].nbytes > at):
            raise PlanError(f"state tensor {quoted(t.name)}: {RULE_STATE} rule broken: at {at}, not wholly inside "
                            f"the state area [{start}, {end}) apart from the other state tensors", None, RULE_STATE)


def _check_regions(program: Program) -> None:
    """Memory regions (`--memory`): in order, apart, each within its capacity, the last
    ending the arena, and every arena buffer wholly inside one of them."""
    regions = program.regions
    if not regions:
        return
    name = program.graph.name
    if (regions[0].base != 0 or regions[-1].end != program.arena_bytes
            or any(a.end > b.base for a, b in zip(regions, regions[1:]))
            or any(r.size + (r.weights_bytes or 0) > r.capacity or r.size < 0 for r in regions)):
        raise PlanError(f"graph {quoted(name)}: {RULE_REGIONS} rule broken: the regions "
                        f"{[(r.name, r.base, r.size, r.capacity) for r in regions]} do not tile the arena of "
                        f"{program.arena_bytes} B within their capacities", None, RULE_REGIONS)
    for b in program.buffers:
        found = program.region_at(b.offset)
        if b.size and (found is None or b.end > found[1].end):
            raise PlanError(f"graph {quoted(name)}: {RULE_REGIONS} rule broken: buffer {quoted(b.name)} at "
                            f"[{b.offset}, {b.end}) is not inside one region", None, RULE_REGIONS)


def _check_arena(program: Program, index: int, step: Step) -> None:
    op = step.op
    for t in (*op.inputs, *op.outputs):
        if t is None or t.is_constant or t.state:  # state tensors: _check_state
            continue
        at = program.offsets.get(t)
        if at is None:
            raise _fail(index, op, RULE_ARENA, f"tensor {t.name!r} has no arena offset")
        outside = program.caller_buffer_at(at)
        if outside is not None:
            if at + t.nbytes > outside.end:
                raise _fail(index, op, RULE_CALLER, f"tensor {t.name!r} at [{at}, {at + t.nbytes}) runs past the "
                                                    f"caller buffer of graph {outside.role} {outside.index}")
            written = t in op.outputs and not isinstance(step.placement, Alias)
            if written and outside.role == "input":
                raise _fail(index, op, RULE_CALLER, f"writes {t.name!r} into the caller's buffer of graph input "
                                                    f"{outside.index} (read-only)")
            if written and isinstance(step.placement, (InPlace, Overlap)):
                raise _fail(index, op, RULE_CALLER, f"writes {t.name!r} into the caller's buffer of graph output "
                                                    f"{outside.index} over another tensor ({step.placement!r})")
            continue
        if at < 0 or at + t.nbytes > program.arena_bytes:
            raise _fail(index, op, RULE_ARENA, f"tensor {t.name!r} at [{at}, {at + t.nbytes}) runs past the "
                                               f"arena ({program.arena_bytes} B)")
    for buf in step.scratch:
        if buf.offset < 0 or buf.end > program.arena_bytes:
            raise _fail(index, op, RULE_ARENA, f"scratch {buf.name!r} at [{buf.offset}, {buf.end}) runs past the "
                                               f"arena ({program.arena_bytes} B)")


def _check_placement(program: Program, index: int, step: Step) -> None:
    op, placement, off = step.op, step.placement, program.offsets
    if isinstance(placement, Fresh):
        return
    if isinstance(placement, InPlace):
        if placement.input not in in_place_inputs(op):
            raise _fail(index, op, RULE_IN_PLACE,
                        f"{op.kind} cannot write its output over input {placement.input} (in place runs only an "
                        f"ELEMENTWISE op over an input of its output's shape and item size, or an int8 depthwise "
                        f"conv with depth multiplier 1 over input 0)")
        x, y = op.inputs[placement.input], op.outputs[0]
        moved = off[y] - off[x]
        if moved != placement.shift:
            raise _fail(index, op, RULE_IN_PLACE, f"output {y.name!r} sits {moved} bytes from its input {x.name!r}, "
                                                  f"but the step declares shift {placement.shift}")
        if placement.shift and op.kind != DEPTHWISE_CONV_2D:
            raise _fail(index, op, RULE_IN_PLACE, f"shift {placement.shift} declared, but only an in-place depthwise "
                                                  f"conv may shift")
        if op.kind == DEPTHWISE_CONV_2D and not depthwise_shift_allowed(op, placement.shift):
            raise _fail(index, op, RULE_IN_PLACE, f"shift {placement.shift} is not a whole number of pixels within "
                                                  f"the batch (the channel-by-channel kernel would read overwritten "
                                                  f"bytes)")
        return
    if isinstance(placement, Overlap):
        if placement.input not in overlap_inputs(op):
            raise _fail(index, op, RULE_OVERLAP,
                        f"{op.kind} cannot overlap its output with input {placement.input} (overlap runs only an "
                        f"ungrouped int8 conv or a depthwise conv with depth multiplier > 1 over input 0, or a "
                        f"patch stage over an input with an output shift)")
        x, y = op.inputs[placement.input], op.outputs[0]
        if op.kind == PATCH_STAGE:
            clobber = patch_write_clobbers(op.attrs, off)
            if clobber is not None:
                p, z = clobber
                raise _fail(index, op, RULE_OVERLAP, f"patch {p} writes {y.name!r} over bytes of {z.name!r} that "
                                                     f"it or a later patch still reads")
        elif not conv_overlap_safe(op, off[x], off[y]):
            raise _fail(index, op, RULE_OVERLAP, f"output {y.name!r} at {off[y]} overwrites input {x.name!r} at "
                                                 f"{off[x]} before the pixels that read those bytes are done")
        return
    if isinstance(placement, Alias):
        y = op.outputs[0]
        if op_def(op.kind).has(Trait.VIEW):
            x = op.inputs[0]
            if x is None or x.is_constant or x.nbytes != y.nbytes or off[x] != off[y]:
                where = "a constant" if x is None or x.is_constant else f"at {off[x]} ({x.nbytes} B)"
                raise _fail(index, op, RULE_ALIAS, f"output {y.name!r} at {off[y]} ({y.nbytes} B) is not its "
                                                   f"input's bytes: the input is {where}")
            return
        if op.kind == CONCATENATION:
            slices = concat_slices(op)
            if slices is None:
                raise _fail(index, op, RULE_ALIAS, "the slices of its inputs are not contiguous in the output")
            for t, at in zip(op.inputs, slices):
                if t is None or t.is_constant or not same_quantization(t, y) or off[t] != off[y] + at:
                    raise _fail(index, op, RULE_ALIAS,
                                f"input {t.name!r} is not the output's bytes at {off[y] + at} (its slice) with the "
                                f"output's dtype and quantization")
            return
        raise _fail(index, op, RULE_ALIAS, f"{op.kind} moves bytes: only a VIEW op or a CONCATENATION may be "
                                           f"an alias")
    raise _fail(index, op, "placement", f"{placement!r} is not a placement (Fresh, InPlace, Overlap, Alias)")


def _declared(step: Step, offsets: dict[Tensor, int], o_i: int, i_i: int) -> bool:
    """Whether the step's placement allows output o_i to overlap input i_i (its offsets
    already checked by _check_placement)."""
    placement, op = step.placement, step.op
    if isinstance(placement, Alias):
        return True
    if not isinstance(placement, (InPlace, Overlap)) or o_i != 0:
        return False
    if i_i == placement.input:
        return True
    # Another input holding the very same bytes (an alias of it, or x + x) is read alike.
    x, t = op.inputs[placement.input], op.inputs[i_i]
    return offsets[t] == offsets[x] and t.nbytes == x.nbytes


def _check_outputs_over_inputs(program: Program, index: int, step: Step) -> None:
    op, off = step.op, program.offsets
    for o_i, out in enumerate(op.outputs):
        o0, o1 = off[out], off[out] + out.nbytes
        for i_i, inp in enumerate(op.inputs):
            if inp is None or inp.is_constant or inp.nbytes == 0 or out.nbytes == 0:
                continue
            i0, i1 = off[inp], off[inp] + inp.nbytes
            if _overlap(o0, o1, i0, i1) and not _declared(step, off, o_i, i_i):
                raise _fail(index, op, RULE_OUTPUT_OVER_INPUT,
                            f"output {out.name!r} [{o0}, {o1}) overlaps input {inp.name!r} [{i0}, {i1}), which its "
                            f"placement {step.placement!r} does not allow")


def _check_scratch(program: Program, index: int, step: Step) -> None:
    op, off = step.op, program.offsets
    for n, buf in enumerate(step.scratch):
        for t in (*op.inputs, *op.outputs):
            if t is not None and not t.is_constant and _overlap(buf.offset, buf.end, off[t], off[t] + t.nbytes):
                raise _fail(index, op, RULE_SCRATCH, f"scratch {buf.name!r} [{buf.offset}, {buf.end}) overlaps "
                                                     f"tensor {t.name!r} [{off[t]}, {off[t] + t.nbytes})")
        for other in step.scratch[n + 1:]:
            if buf.size and other.size and _overlap(buf.offset, buf.end, other.offset, other.end):
                raise _fail(index, op, RULE_SCRATCH, f"scratch {buf.name!r} overlaps scratch {other.name!r}")


def _check_live_tensors_kept(program: Program, index: int, produced: dict[Tensor, int],
                             last_read: dict[Tensor, int]) -> None:
    step = program.steps[index]
    op, off = step.op, program.offsets
    writes = [] if isinstance(step.placement, Alias) else [
        (t.name, off[t], off[t] + t.nbytes) for t in op.outputs if t is not None and t.nbytes]
    writes += [(f"scratch {buf.name}", buf.offset, buf.end) for buf in step.scratch if buf.size]
    own = set(op.outputs)
    for t, first in produced.items():
        if first >= index or t in own or t.nbytes == 0 or last_read.get(t, -1) <= index:
            continue
        t0 = off[t]
        for name, w0, w1 in writes:
            if _overlap(w0, w1, t0, t0 + t.nbytes):
                raise _fail(index, op, RULE_LIVE, f"writes {name!r} [{w0}, {w1}) over tensor {t.name!r} "
                                                  f"[{t0}, {t0 + t.nbytes}) which is read again later")


def _check_patch_buffers(index: int, step: PatchLoop) -> None:
    op, stage = step.op, step.stage
    size = step.scratch[0].size if step.scratch else 0
    if size < stage.workspace_bytes:
        raise _fail(index, op, RULE_PATCH_BUFFERS, f"the workspace holds {size} B, the stage needs "
                                                   f"{stage.workspace_bytes} B")
    for b in stage.buffers:
        if b.delta < 0 or b.delta + b.size > stage.workspace_bytes:
            raise _fail(index, op, RULE_PATCH_BUFFERS, f"patch buffer of {b.tensor.name!r} at "
                                                       f"[{b.delta}, {b.delta + b.size}) lies outside the workspace")
    for scratch in stage.op_scratch:
        for name, delta, nbytes in scratch:
            if delta < 0 or delta + nbytes > stage.workspace_bytes:
                raise _fail(index, op, RULE_PATCH_BUFFERS, f"inner scratch {name!r} at [{delta}, {delta + nbytes}) "
                                                           f"lies outside the workspace")
    internal = {b.tensor: b for b in stage.buffers}
    for p, works in enumerate(stage.patches):
        for inner, work in zip(stage.ops, works):
            y = inner.outputs[0]
            if work.out.empty or y is stage.output:
                continue
            need = work.out.size * y.itemsize
            if y not in internal or need > internal[y].size:
                held = internal[y].size if y in internal else 0
                raise _fail(index, op, RULE_PATCH_BUFFERS, f"patch {p}: {inner.label} computes {need} B of "
                                                           f"{y.name!r}, its patch buffer holds {held} B")


def _box_range(start: int, strides, shape, itemsize: int) -> tuple[int, int]:
    """[first, end) bytes a strided box touches (an empty box touches nothing)."""
    if any(d == 0 for d in shape):
        return start, start
    return start, start + sum((d - 1) * st for d, st in zip(shape, strides)) + itemsize


def _in_caller_buffer(program: Program, a0: int, a1: int) -> bool:
    b = program.caller_buffer_at(a0)
    return b is not None and a1 <= b.end


def _check_patch_calls(program: Program, index: int, step: PatchLoop) -> None:
    op = step.op
    if step.stage.patches and not step.calls:
        raise _fail(index, op, RULE_PATCH_CALLS, "the stage is not lowered (no calls); lower it with "
                                                 "mcuc.passes.patch.lower_patch_loops")
    y = op.outputs[0]
    writable = [(b.offset, b.end) for b in step.scratch] + [(program.offsets[y], program.offsets[y] + y.nbytes)]

    def inside(a0: int, a1: int) -> bool:
        return a0 == a1 or any(w0 <= a0 and a1 <= w1 for w0, w1 in writable)

    for n, call in enumerate(step.calls):
        if isinstance(call, BoxCopy):
            reads = [_box_range(call.src, call.src_strides, call.shape, call.itemsize)]
            writes = [_box_range(call.dst, call.dst_strides, call.shape, call.itemsize)]
            what = f"call {n} ({call.role} of patch {call.patch}, op {call.op_index})"
        else:
            inner = call.op
            reads = [(call.offsets[t], call.offsets[t] + t.nbytes) for t in inner.inputs
                     if t is not None and not t.is_constant]
            writes = [(call.offsets[t], call.offsets[t] + t.nbytes) for t in inner.outputs]
            writes += [(b.offset, b.end) for b in call.scratch]
            what = f"call {n} ({inner.label} on patch {call.patch})"
        for a0, a1 in reads + writes:
            if (a0 < 0 or a1 > program.arena_bytes) and not _in_caller_buffer(program, a0, a1):
                raise _fail(index, op, RULE_PATCH_CALLS, f"{what} touches [{a0}, {a1}), outside the arena "
                                                         f"({program.arena_bytes} B)")
        for a0, a1 in writes:
            if not inside(a0, a1):
                raise _fail(index, op, RULE_PATCH_CALLS, f"{what} writes [{a0}, {a1}), outside the stage's "
                                                         f"workspace, temporary area and output")
