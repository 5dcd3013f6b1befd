"""Run a planned Program on ONE byte arena with the reference semantics.

Every activation is read from and written to its planned offset, so a wrong memory plan
gives wrong bytes (or a PlanError where a step would read what it is writing). This is
the executable meaning of a Program that both backends must match:

- scratch buffers are filled with junk before their step (a kernel may scribble there);
- an `alias` step moves no bytes (its outputs must already be in place);
- an output may overlap an input of its own step only as the step's declared in-place
  pair (output 0 over input `in_place_input`, same start offset; other inputs may sit at
  that same offset too; a depthwise conv's output may start `in_place_shift` bytes away,
  checked against the kernel's batch/channel order), as a declared overlap (checked by
  emulating the kernel's pixel order) or within an alias step;
- no output or scratch byte of a step may cover a tensor that is still read after the
  step (or is a graph output), unless it is that same tensor.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .interpreter import check_inputs
from .ops import op_def
from .ops.kinds import DEPTHWISE_CONV_2D
from .patch_interpreter import run_patch_loop
from .program import POINTWISE_OVERLAP_PIXELS, PatchLoop, Program
from .tensor import Tensor


class PlanError(AssertionError):
    """The memory plan breaks its own rules (a bug in the planner, not in the model)."""


def _read(arena: np.ndarray, offset: int, t: Tensor) -> np.ndarray:
    raw = arena[offset: offset + t.nbytes]
    if raw.size != t.nbytes:
        raise PlanError(f"tensor {t.name!r} at {offset}+{t.nbytes} runs past the arena ({arena.size} bytes)")
    return raw.copy().view(np.dtype(t.dtype)).reshape(t.shape)


def _write(arena: np.ndarray, offset: int, t: Tensor, value: np.ndarray) -> None:
    data = np.ascontiguousarray(value, dtype=np.dtype(t.dtype)).reshape(-1).view(np.uint8)
    if offset < 0 or offset + data.size > arena.size:
        raise PlanError(f"tensor {t.name!r} at {offset}+{data.size} runs past the arena ({arena.size} bytes)")
    arena[offset: offset + data.size] = data


def _overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def run_program(program: Program, inputs: Sequence[np.ndarray], *, seed: int = 0) -> list[np.ndarray]:
    """Execute `program` on one uint8 arena of program.arena_bytes and return the outputs."""
    graph = program.graph
    rng = np.random.default_rng(seed)
    # Start from junk too: nothing may rely on a zeroed arena.
    arena = rng.integers(0, 256, program.arena_bytes, dtype=np.uint8)
    for t, x in zip(graph.inputs, check_inputs(graph, inputs)):
        _write(arena, program.offsets[t], t, x)

    produced, last_read = _tensor_steps(program)
    for index, step in enumerate(program.steps):
        op = step.op
        if step.alias:
            continue
        ins = [None if t is None else t.data if t.is_constant else _read(arena, program.offsets[t], t)
               for t in op.inputs]
        _check_step_overlaps(program, index)
        _check_live_tensors_kept(program, index, produced, last_read)
        for buf in step.scratch:
            arena[buf.offset: buf.end] = rng.integers(0, 256, buf.size, dtype=np.uint8)
        if isinstance(step, PatchLoop):  # patch by patch through the stage's workspace
            run_patch_loop(arena, program.offsets, step.workspace_offset, step.stage)
            continue
        outs = op_def(op.kind).evaluate(op, ins)
        for t, y in zip(op.outputs, outs):
            _write(arena, program.offsets[t], t, y)
    return [t.data.copy() if t.is_constant else _read(arena, program.offsets[t], t) for t in graph.outputs]


def _conv_overlap_safe(op, input_offset: int, output_offset: int) -> bool:
    """An overlapping CONV_2D / DEPTHWISE_CONV_2D (Step.overlap), emulated pixel by pixel: the kernel produces
    output pixels in increasing order, POINTWISE_OVERLAP_PIXELS at a time; before each
    group is finished, the input bytes its windows read must not have been overwritten by
    the output written so far (this group's included)."""
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


def _tensor_steps(program: Program) -> tuple[dict[Tensor, int], dict[Tensor, int]]:
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


def _check_live_tensors_kept(program: Program, index: int, produced: dict[Tensor, int],
                             last_read: dict[Tensor, int]) -> None:
    """No byte step `index` writes (its outputs, its scratch) may belong to another tensor
    that was produced earlier and is still read after this step."""
    step = program.steps[index]
    op = step.op
    off = program.offsets
    writes = [(t.name, off[t], off[t] + t.nbytes) for t in op.outputs if t is not None and t.nbytes]
    writes += [(f"scratch {buf.name}", buf.offset, buf.end) for buf in step.scratch if buf.size]
    own = set(op.outputs)
    for t, first in produced.items():
        if first >= index or t in own or t.nbytes == 0 or last_read.get(t, -1) <= index:
            continue
        t0 = off[t]
        for name, w0, w1 in writes:
            if _overlap(w0, w1, t0, t0 + t.nbytes):
                raise PlanError(f"step {index} {op.label}: writes {name!r} [{w0}, {w1}) over tensor {t.name!r} "
                                f"[{t0}, {t0 + t.nbytes}) which is read again later")


def _depthwise_shift_safe(op, input_offset: int, output_offset: int) -> bool:
    """An in-place depthwise conv (depth multiplier 1) whose output starts at a shift from
    its input, emulated in the kernel's order: for each batch b, for each channel c, the
    input plane (b, c) is copied to the scratch, then output channel (b, c) is written.
    Safe when the shift is a whole number of pixels (output channel c only covers input
    bytes of channel c) and no output byte of batch b covers an input pixel of a later
    batch (its plane is not copied yet)."""
    x, y = op.inputs[0], op.outputs[0]
    if op.kind != DEPTHWISE_CONV_2D or len(x.shape) != 4 or len(y.shape) != 4:
        return False
    n, h, w, c = x.shape
    _, oh, ow, oc = y.shape
    shift = output_offset - input_offset
    if oc != c or x.itemsize != 1 or y.itemsize != 1 or shift % c:
        return False
    out_batch = np.arange(n * oh * ow) // (oh * ow)
    landing = np.arange(n * oh * ow) + shift // c  # the input pixel each output pixel covers
    inside = (landing >= 0) & (landing < n * h * w)
    return bool(np.all(landing[inside] // (h * w) <= out_batch[inside]))


def _check_step_overlaps(program: Program, index: int) -> None:
    step = program.steps[index]
    op = step.op
    off = program.offsets
    shift = getattr(step, "in_place_shift", 0)
    depthwise_in_place = step.in_place and op.kind == DEPTHWISE_CONV_2D
    if shift or depthwise_in_place:
        base = off[op.inputs[step.in_place_input]]
        if not depthwise_in_place or off[op.outputs[0]] - base != shift:
            raise PlanError(f"step {index} {op.label}: in_place_shift {shift} declared, but only an in-place "
                            f"depthwise conv may shift and its output sits {off[op.outputs[0]] - base} bytes "
                            f"from its input")
        if not _depthwise_shift_safe(op, base, base + shift):
            raise PlanError(f"step {index} {op.label}: in_place_shift {shift} is not a whole number of "
                            f"pixels within the batch (the channel-by-channel kernel would read overwritten bytes)")
    for o_i, out in enumerate(op.outputs):
        o0 = off[out]
        o1 = o0 + out.nbytes
        for i_i, inp in enumerate(op.inputs):
            if inp is None or inp.is_constant or inp.nbytes == 0:
                continue
            i0 = off[inp]
            if not _overlap(o0, o1, i0, i0 + inp.nbytes):
                continue
            # In place, output 0 starts exactly where its input does; another input at the
            # same offset (an alias of it, or x + x) is read element by element alike.
            declared = step.in_place and o_i == 0 and o0 - shift == i0 == off[op.inputs[step.in_place_input]]
            if isinstance(step, PatchLoop):  # each patch's write is checked by run_patch_loop
                declared = step.overlap and o0 == i0 - (step.stage.output_shifts[i_i] or 0)
            elif getattr(step, "overlap", False) and o_i == 0 and i_i == 0:
                declared = _conv_overlap_safe(op, i0, o0)
            if not declared:
                raise PlanError(f"step {index} {op.label}: output {out.name!r} [{o0}, {o1}) overlaps "
                                f"input {inp.name!r} [{i0}, {i0 + inp.nbytes}) without being in place")
        for buf in step.scratch:
            if _overlap(o0, o1, buf.offset, buf.end):
                raise PlanError(f"step {index} {op.label}: output {out.name!r} overlaps scratch {buf.name!r}")
    for buf in step.scratch:
        for inp in op.inputs:
            if inp is not None and not inp.is_constant and _overlap(buf.offset, buf.end, off[inp], off[inp] + inp.nbytes):
                raise PlanError(f"step {index} {op.label}: scratch {buf.name!r} overlaps input {inp.name!r}")
