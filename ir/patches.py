"""Region-aware reference execution: evaluate an op on a region of its output, and run a
patch stage (MCUNetV2's patch-based inference) patch by patch.

The contract every backend's region kernels must meet: evaluating an op on an output
region, given the input regions it reads and the border padding below, gives exactly
the slice of the full evaluation. Padding exists only where the region touches the true
border of the full tensor, so a patch never invents padding in the middle.

`region_geometry(op, out_region)` is the per-op rule backends consume: the input region
each input is read at and the padding the op applies at this region's borders
(per spatial axis (before, after) for window ops, per axis for PAD). `evaluate_region`
builds a proxy op over the region-shaped tensors with that padding and calls the op's
own `evaluate`, so no op module changes. Ops without a shape-independent local rule
(RESIZE_NEAREST_NEIGHBOR, whose index map depends on the full sizes) are evaluated on
a full-size embedding of their input regions and sliced: exact whenever the op's
`input_regions` is.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .errors import MCUCError
from .op import Op
from .ops import Trait, op_def
from .ops.common import Padding2D
from .ops.kinds import CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, PAD
from .region import Region
from .tensor import Tensor


@dataclass(frozen=True)
class RegionGeometry:
    """How an op computes one output region: the region of each input it reads (None
    for constants and absent inputs) and its border padding, (before, after) per axis
    (for window ops the two spatial axes H and W; for PAD every axis; otherwise ())."""

    inputs: tuple[Region | None, ...]
    padding: tuple[tuple[int, int], ...] = ()


def _window_axis(out_start: int, out_stop: int, stride: int, pad_before: int, kernel: int,
                 dilation: int, in_size: int) -> tuple[int, int, int, int]:
    """(input start, input stop, pad before, pad after) of a window op along one axis:
    the rows [first, last] the windows cover, split into the part inside the input and
    the padding outside it."""
    first = out_start * stride - pad_before
    last = (out_stop - 1) * stride - pad_before + (kernel - 1) * dilation
    n = last - first + 1
    start = min(max(first, 0), in_size)
    stop = max(min(last + 1, in_size), start)
    before = min(max(-first, 0), n)
    after = min(max(last + 1 - in_size, 0), n)
    return start, stop, before, after


def _window_params(op: Op) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], Padding2D]:
    """(kernel, stride, dilation, padding) of a window op."""
    a = op.attrs
    if op.kind in (CONV_2D, DEPTHWISE_CONV_2D):
        w = op.inputs[1]
        return (w.shape[1], w.shape[2]), tuple(a.stride), tuple(a.dilation), a.padding
    return tuple(a.filter), tuple(a.stride), (1, 1), a.padding


def region_geometry(op: Op, out: Region) -> RegionGeometry:
    """Input regions and border padding of `op` computing output region `out`."""
    if op_def(op.kind).has(Trait.WINDOW):
        x = op.inputs[0]
        kernel, stride, dilation, pad = _window_params(op)
        r0, r1, top, bottom = _window_axis(*out.axis(1), stride[0], pad.top, kernel[0], dilation[0], x.shape[1])
        c0, c1, left, right = _window_axis(*out.axis(2), stride[1], pad.left, kernel[1], dilation[1], x.shape[2])
        channels = op_def(op.kind).input_regions(op, out)[0].axis(3)
        region = Region((out.start[0], r0, c0, channels[0]), (out.stop[0], r1, c1, channels[1]))
        return RegionGeometry((region,) + (None,) * (len(op.inputs) - 1), ((top, bottom), (left, right)))
    if op.kind == PAD:
        x = op.inputs[0]
        starts, stops, pads = [], [], []
        for (o0, o1), (before, _), size in zip(zip(out.start, out.stop), op.attrs.pads, x.shape):
            n = o1 - o0
            start = min(max(o0 - before, 0), size)
            stop = max(min(o1 - before, size), start)
            starts.append(start)
            stops.append(stop)
            pads.append((min(max(before - o0, 0), n), min(max(o1 - before - size, 0), n)))
        region = Region(tuple(starts), tuple(stops))
        return RegionGeometry((region,) + (None,) * (len(op.inputs) - 1), tuple(pads))
    return RegionGeometry(tuple(op_def(op.kind).input_regions(op, out)))


def _proxy(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    return t if t.shape == shape else t.with_(shape=shape)


def constant_slice(t: Tensor, out: Region) -> np.ndarray:
    """A broadcast constant's part of an output region (axes aligned from the right)."""
    offset = len(out.start) - len(t.shape)
    index = tuple(slice(None) if d == 1 else slice(out.start[offset + i], out.stop[offset + i])
                  for i, d in enumerate(t.shape))
    return t.data[index]



def evaluate_region(op: Op, out: Region, read: Callable[[int, Region], np.ndarray]) -> np.ndarray:
    """Output region `out` of `op`. `read(k, region)` returns input k's values over
    `region` (full-tensor coordinates) as an array of region.shape; it is asked only for
    the regions `region_geometry` names."""
    if len(op.outputs) != 1:
        raise MCUCError(f"{op.label}: a patch stage op must have one output, it has {len(op.outputs)}")
    y = op.outputs[0]
    geometry = region_geometry(op, out)
    opdef = op_def(op.kind)
    if opdef.has(Trait.WINDOW):
        (top, bottom), (left, right) = geometry.padding
        region = geometry.inputs[0]
        ins = [read(0, region)] + [None if t is None else t.data for t in op.inputs[1:]]
        proxy = op.with_(inputs=(_proxy(op.inputs[0], region.shape),) + op.inputs[1:],
                         outputs=(_proxy(y, out.shape),),
                         attrs=replace(op.attrs, padding=Padding2D(top, bottom, left, right)))
        return opdef.evaluate(proxy, ins)[0]
    if op.kind == PAD:
        region = geometry.inputs[0]
        proxy = op.with_(inputs=(_proxy(op.inputs[0], region.shape),) + op.inputs[1:],
                         outputs=(_proxy(y, out.shape),), attrs=replace(op.attrs, pads=geometry.padding))
        ins = [read(0, region)] + [None if t is None else t.data for t in op.inputs[1:]]
        return opdef.evaluate(proxy, ins)[0]
    if opdef.has(Trait.POSITIONAL) or op.kind == CONCATENATION:
        ins, proxies = [], []
        for k, (t, region) in enumerate(zip(op.inputs, geometry.inputs)):
            if t is None:
                ins.append(None)
                proxies.append(None)
            elif t.is_constant:
                data = constant_slice(t, out) if opdef.has(Trait.POSITIONAL) else t.data
                ins.append(data)
                proxies.append(t)
            else:
                ins.append(read(k, region))
                proxies.append(_proxy(t, region.shape))
        proxy = op.with_(inputs=tuple(proxies), outputs=(_proxy(y, out.shape),))
        return opdef.evaluate(proxy, ins)[0]
    # Embedding: the op's full evaluation over inputs that hold the needed regions (and
    # zeros elsewhere, which the output region never reads), sliced.
    ins = []
    for k, (t, region) in enumerate(zip(op.inputs, geometry.inputs)):
        if t is None or t.is_constant:
            ins.append(None if t is None else t.data)
            continue
        full = np.zeros(t.shape, np.dtype(t.dtype))
        if region is not None and not region.empty:
            full[region.slices()] = read(k, region)
        ins.append(full)
    return opdef.evaluate(op, ins)[0][out.slices()]


# -- patch stages ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpRegion:
    """One op's work in one patch: its output region (empty: the op does not run in
    this patch) and how it reads its inputs (region_geometry)."""

    out: Region
    geometry: RegionGeometry


@dataclass(frozen=True)
class PatchBuffer:
    """An intermediate tensor's patch buffer: `size` bytes at `delta` in the stage's
    workspace, holding the tensor's region of the current patch, contiguous (row-major
    over the region's shape)."""

    tensor: Tensor
    delta: int
    size: int


@dataclass(frozen=True, eq=False)
class PatchStage:
    """The attributes of a PATCH_STAGE op: `ops` (in order) run patch by patch.

    The stage reads `inputs` (full tensors produced before it) and writes `output` (the
    cut: the only tensor of the stage read after it), split into a `grid` of
    non-overlapping patches (`patch_regions`, row-major). `patches[p][i]` is op i's work
    in patch p. Every other tensor the stage produces lives only in a patch buffer of the
    workspace (`buffers`, sized for the largest region over all patches); `op_scratch[i]`
    holds op i's kernel scratch inside the workspace as (name, delta, size).

    Patches run in order and write their output regions last, so the output may overlap
    an input that dies at the stage: `output_shifts[k]` is the smallest D such that the
    output placed D bytes before input k's start never overwrites an input byte that the
    current or a later patch still reads (None: no overlap saves anything); see
    output_shifts().
    """

    ops: tuple[Op, ...]
    inputs: tuple[Tensor, ...]
    output: Tensor
    grid: tuple[int, int]
    patch_regions: tuple[Region, ...]
    patches: tuple[tuple[OpRegion, ...], ...]
    buffers: tuple[PatchBuffer, ...]
    workspace_bytes: int
    op_scratch: tuple[tuple[tuple[str, int, int], ...], ...] = ()
    output_shifts: tuple[int | None, ...] = ()
    span: tuple[int, int] = (-1, -1)  # [first, last] op index in the graph the stage was cut from

    def buffer(self, tensor: Tensor) -> PatchBuffer:
        for b in self.buffers:
            if b.tensor is tensor:
                return b
        raise KeyError(tensor.name)

    def __repr__(self) -> str:
        return (f"PatchStage({len(self.ops)} ops -> {self.output.name}, grid {self.grid[0]}x{self.grid[1]}, "
                f"workspace {self.workspace_bytes} B)")


def region_start_byte(t: Tensor, region: Region) -> int:
    """Byte offset in `t` (row-major) of the region's first element."""
    return int(np.ravel_multi_index(region.start, t.shape)) * t.itemsize if not region.empty else t.nbytes


def region_end_byte(t: Tensor, region: Region) -> int:
    """Byte offset in `t` just past the region's last element."""
    if region.empty:
        return 0
    return (int(np.ravel_multi_index(tuple(b - 1 for b in region.stop), t.shape)) + 1) * t.itemsize


def first_read_byte(stage: PatchStage, p: int, x: Tensor) -> int:
    """The lowest byte of stage input `x` that patch p reads (x.nbytes: none)."""
    first = x.nbytes
    for op, work in zip(stage.ops, stage.patches[p]):
        if work.out.empty:
            continue
        for t, region in zip(op.inputs, work.geometry.inputs):
            if t is x and region is not None:
                first = min(first, region_start_byte(x, region))
    return first


def output_shifts(stage: PatchStage) -> tuple[int | None, ...]:
    """PatchStage.output_shifts: per input, the bytes the output must start before it."""
    shifts = []
    for x in stage.inputs:
        shift, lowest_later = 0, x.nbytes
        for p in reversed(range(len(stage.patches))):
            lowest_later = min(lowest_later, first_read_byte(stage, p, x))
            shift = max(shift, region_end_byte(stage.output, stage.patch_regions[p]) - lowest_later)
        shifts.append(shift if shift < stage.output.nbytes else None)
    return tuple(shifts)


def run_stage(stage: PatchStage, read_input: Callable[[Tensor, Region], np.ndarray],
              write_output: Callable[[Region, np.ndarray], None],
              read_buffer: Callable[[PatchBuffer, Region], np.ndarray],
              write_buffer: Callable[[PatchBuffer, np.ndarray], None]) -> None:
    """Run the stage patch by patch through the given accessors: full inputs are read by
    region, intermediates live in their patch buffers, the output is written by region."""
    internal = {b.tensor: b for b in stage.buffers}
    for works in stage.patches:
        held: dict[Tensor, Region] = {}  # the region each patch buffer holds now
        for op, work in zip(stage.ops, works):
            if work.out.empty:
                continue

            def read(k: int, region: Region, op=op) -> np.ndarray:
                t = op.inputs[k]
                if region.empty:
                    return np.zeros(region.shape, np.dtype(t.dtype))
                if t in internal:
                    have = held[t]
                    local = Region(tuple(a - h for a, h in zip(region.start, have.start)),
                                   tuple(b - h for b, h in zip(region.stop, have.start)))
                    return read_buffer(internal[t], have)[local.slices()]
                return read_input(t, region)

            y = evaluate_region(op, work.out, read)
            if op.output is stage.output:
                write_output(work.out, y)
            else:
                write_buffer(internal[op.output], y)
                held[op.output] = work.out


def evaluate_stage(stage: PatchStage, inputs: list[np.ndarray]) -> np.ndarray:
    """The stage's output on numpy arrays (one per `stage.inputs`), patch by patch."""
    values = dict(zip(stage.inputs, inputs))
    out = np.zeros(stage.output.shape, np.dtype(stage.output.dtype))
    buffers: dict[Tensor, np.ndarray] = {}

    def write_output(region: Region, y: np.ndarray) -> None:
        out[region.slices()] = y

    run_stage(stage, lambda t, r: values[t][r.slices()], write_output,
              lambda b, r: buffers[b.tensor], lambda b, y: buffers.__setitem__(b.tensor, y))
    return out


def run_patch_loop(arena: np.ndarray, offsets: dict[Tensor, int], workspace_offset: int,
                   stage: PatchStage) -> None:
    """Run a PatchLoop step on one byte arena: stage inputs and output at their planned
    offsets, intermediates in their patch buffers at workspace_offset + delta. The
    offsets must have passed ir/program_check (every region fits its buffer, and a
    patch writes over a dying input only below the bytes later patches read)."""

    def full_view(t: Tensor) -> np.ndarray:
        at = offsets[t]
        return arena[at: at + t.nbytes].view(np.dtype(t.dtype)).reshape(t.shape)

    def buffer_bytes(b: PatchBuffer, nbytes: int) -> np.ndarray:
        at = workspace_offset + b.delta
        return arena[at: at + nbytes]

    def read_buffer(b: PatchBuffer, have: Region) -> np.ndarray:
        t = b.tensor
        return buffer_bytes(b, have.size * t.itemsize).copy().view(np.dtype(t.dtype)).reshape(have.shape)

    def write_buffer(b: PatchBuffer, y: np.ndarray) -> None:
        data = np.ascontiguousarray(y, dtype=np.dtype(b.tensor.dtype)).reshape(-1).view(np.uint8)
        buffer_bytes(b, data.size)[:] = data

    def write_output(region: Region, y: np.ndarray) -> None:
        full_view(stage.output)[region.slices()] = y

    run_stage(stage, lambda t, r: full_view(t)[r.slices()].copy(), write_output, read_buffer, write_buffer)
