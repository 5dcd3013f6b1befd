"""Regions and patch stages (MCUNetV2's patch-based inference): how an op computes a
region of its output, and the record of a stage (PatchStage). How a stage runs, as
explicit calls every executor runs as they are, is ir/patch_lowering.py.

The contract every backend's region kernels must meet: evaluating an op on an output
region, given the input regions it reads and the border padding below, gives exactly
the slice of the full evaluation. Padding exists only where the region touches the true
border of the full tensor, so a patch never invents padding in the middle.

`region_geometry(op, out_region)` is the per-op rule: the input region each input is
read at and the padding the op applies at this region's borders (per spatial axis
(before, after) for window ops, per axis for PAD). `region_op` turns it into an ordinary
op over region-shaped tensors (the border padding, PAD's pads or the resize's source map
in its attributes), so every backend runs a region with its ordinary kernel and the
reference with the op's own `evaluate` (`evaluate_region`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .errors import MCUCError
from .op import Op
from .ops import Trait, op_def
from .ops.common import Padding2D
from .ops.kinds import (CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, PAD, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR,
                        TRANSPOSE_CONV)
from .ops.resize_bilinear import region_table
from .ops.transpose_conv import region_attrs
from .ops.resize_nearest import source_map
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


def region_op(op: Op, out: Region) -> Op:
    """The op that computes output region `out` of `op` on region-shaped tensors: every
    activation input has the shape of the region `region_geometry` names (an empty
    region: a zero-size tensor), the output has `out`'s shape, and the attributes say what
    the region differs in: a window op's border padding, PAD's per-axis padding,
    RESIZE_NEAREST_NEIGHBOR's source map, RESIZE_BILINEAR's table, TRANSPOSE_CONV's size and
    padding; a POSITIONAL op's broadcast constants are their slices of the region. Every
    backend runs this op with its ordinary kernel."""
    if len(op.outputs) != 1:
        raise MCUCError(f"{op.label}: a patch stage op must have one output, it has {len(op.outputs)}")
    opdef = op_def(op.kind)
    geometry = region_geometry(op, out)
    inputs = []
    for t, region in zip(op.inputs, geometry.inputs):
        if t is None:
            inputs.append(None)
        elif t.is_constant:
            if opdef.has(Trait.POSITIONAL):
                data = constant_slice(t, out)
                t = t if data.shape == t.shape else t.with_(shape=data.shape, data=data)
            inputs.append(t)
        else:
            inputs.append(_proxy(t, region.shape))
    attrs = op.attrs
    if opdef.has(Trait.WINDOW):
        (top, bottom), (left, right) = geometry.padding
        attrs = replace(attrs, padding=Padding2D(top, bottom, left, right))
    elif op.kind == PAD:
        attrs = replace(attrs, pads=geometry.padding)
    elif op.kind == RESIZE_NEAREST_NEIGHBOR:
        rows, cols = source_map(op)
        x = geometry.inputs[0]
        attrs = replace(attrs, size=(out.shape[1], out.shape[2]),
                        source_map=(tuple(int(r) - x.start[1] for r in rows[out.start[1]:out.stop[1]]),
                                    tuple(int(c) - x.start[2] for c in cols[out.start[2]:out.stop[2]])))
    elif op.kind == RESIZE_BILINEAR:
        attrs = replace(attrs, size=(out.shape[1], out.shape[2]), table=region_table(op, out, geometry.inputs[0]))
    elif op.kind == TRANSPOSE_CONV:
        attrs = region_attrs(op, out, geometry.inputs[0])
    elif not (opdef.has(Trait.POSITIONAL) or op.kind == CONCATENATION):
        raise MCUCError(f"{op.label}: {op.kind} has no region form, so it cannot run in a patch stage")
    return op.with_(inputs=tuple(inputs), outputs=(_proxy(op.outputs[0], out.shape),), attrs=attrs)


def evaluate_region(op: Op, out: Region, read: Callable[[int, Region], np.ndarray]) -> np.ndarray:
    """Output region `out` of `op`: `region_op` evaluated. `read(k, region)` returns input
    k's values over `region` (full-tensor coordinates) as an array of region.shape; it is
    asked only for the regions `region_geometry` names."""
    proxy = region_op(op, out)
    geometry = region_geometry(op, out)
    ins = [None if t is None else t.data if t.is_constant else read(k, region)
           for k, (t, region) in enumerate(zip(proxy.inputs, geometry.inputs))]
    return op_def(op.kind).evaluate(proxy, ins)[0]


# -- patch stages ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpRegion:
    """One op's work in one patch: its output region (empty: the op does not run in
    this patch) and how it reads its inputs (region_geometry)."""

    out: Region
    geometry: RegionGeometry


@dataclass(frozen=True)
class LineBand:
    """A cached intermediate's line buffer (halos computed once, kept for the patches
    that read them again). In patch row i it holds rows `rows[i]` of the tensor over
    columns `cols` (from the first row read in patch row i to the last computed so far),
    C-order with room for `height` rows; when a patch row starts, the rows the new band
    shares with the old one move to the buffer's top. The band of a patch row the tensor
    is not read in is (0, 0): the buffer keeps the last."""

    rows: tuple[tuple[int, int], ...]
    cols: tuple[int, int]
    height: int

    def shape(self, t: Tensor) -> tuple[int, ...]:
        return (t.shape[0], self.height, self.cols[1] - self.cols[0], t.shape[3])


@dataclass(frozen=True)
class PatchBuffer:
    """An intermediate tensor's patch buffer: `size` bytes at `delta` in the stage's
    workspace. Recomputed (band None): it holds the tensor's region of the current patch,
    contiguous (row-major over the region's shape), and only during the patch. Cached: its
    LineBand, kept across patches."""

    tensor: Tensor
    delta: int
    size: int
    band: LineBand | None = None


@dataclass(frozen=True, eq=False)
class PatchStage:
    """The attributes of a PATCH_STAGE op: `ops` (in order) run patch by patch.

    The stage reads `inputs` (full tensors produced before it) and writes `output` (the
    cut: the only tensor of the stage read after it), split into a `grid` of
    non-overlapping patches (`patch_regions`, row-major). `patches[p][i]` is op i's work
    in patch p. Every other tensor the stage produces lives only in a patch buffer of the
    workspace (`buffers`, sized for the largest region over all patches, or a line band
    kept across patches when its halo is cached: then `patches` computes each of its
    elements once); `op_scratch[i]`
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
    # The halos cached were chosen op by op (the others recompute theirs), not "every
    # halo a line band can keep": the schedule names them (`+cache=A/B`).
    cache_chosen: bool = False

    @property
    def cached(self) -> bool:
        """Some intermediate keeps its halo in a line band."""
        return any(b.band is not None for b in self.buffers)

    def line_band_bytes(self) -> dict[int, int]:
        """The graph index (from `span`) of each op whose output keeps a line band, to the
        band's bytes."""
        producer = {op.outputs[0]: self.span[0] + i for i, op in enumerate(self.ops)}
        return {producer[b.tensor]: b.size for b in self.buffers if b.band is not None}

    def buffer(self, tensor: Tensor) -> PatchBuffer:
        for b in self.buffers:
            if b.tensor is tensor:
                return b
        raise KeyError(tensor.name)

    def __repr__(self) -> str:
        return (f"PatchStage({len(self.ops)} ops -> {self.output.name}, grid {self.grid[0]}x{self.grid[1]}"
                f"{', cached' if self.cached else ''}, workspace {self.workspace_bytes} B)")


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
