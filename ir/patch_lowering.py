"""A patch stage lowered to explicit calls: what the reference interpreter, the LLVM
backend and the C backend all run, as they are.

`lower_stage` turns a PatchStage and where the plan put its bytes into a flat sequence,
patch by patch (row-major), op by op:

- `BoxCopy` (a gather): an input region that is not one contiguous run of the buffer
  holding it (a stage input in full, or an intermediate's patch buffer holding the
  region its producer computed in this patch) is first copied into the stage's
  temporary area;
- `RegionCall`: the op's `region_op` (an ordinary op over region-shaped tensors, border
  padding in its attributes) with the arena offset of each of its activation tensors and
  its kernel scratch inside the workspace. An intermediate's region goes straight into
  its patch buffer; the stage output's region goes straight into the full output tensor
  when it is one contiguous run of it, else into the temporary area and then
- `BoxCopy` (a scatter) into its place.

A cached intermediate (PatchBuffer.band) lives in a line band instead: its producer
computes only the part no earlier patch computed (passes/receptive_field.cached_regions),
written into the band (directly, or through the temporary area and a scatter), and its
readers read their regions from the band. When a patch row starts, a `BoxCopy` (a shift)
moves the rows the band keeps to its top.

An op whose output region is empty in a patch makes no call. The only thing an executor
decides is how to move bytes and run an op; the order, the regions, the padding and
every offset are decided here, once. `temp_bytes(stage)` is the temporary area the
planner reserves beside the workspace (it does not depend on the offsets).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from .errors import MCUCError
from .op import Op
from .ops import op_def
from .patches import PatchStage, region_geometry, region_op
from .program import Buffer
from .region import Region
from .tensor import Tensor

# Alignment of each gathered region in the temporary area.
TEMP_ALIGN = 8


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def merged_runs(shape, dst_strides, src_strides, itemsize: int) -> tuple[list, list, list, int]:
    """A strided copy as (outer shape, its dst strides, its src strides, run bytes): the
    trailing axes that both sides hold contiguously merge into one run of bytes."""
    shape, dst_strides, src_strides = list(shape), list(dst_strides), list(src_strides)
    run = itemsize
    while shape and dst_strides[-1] == run and src_strides[-1] == run:
        run *= shape.pop()
        dst_strides.pop()
        src_strides.pop()
    return shape, dst_strides, src_strides, run


def byte_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Byte strides of a C-order array."""
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.insert(0, step)
        step *= d
    return tuple(strides)


@dataclass(frozen=True)
class BoxCopy:
    """Copy a box of `shape` elements of `itemsize` bytes: element i is read at arena byte
    src + sum(i[k] * src_strides[k]) and written at dst + sum(i[k] * dst_strides[k])
    (byte strides). `role` is "gather" (an input region into the temporary area),
    "scatter" (an output region from it into the stage output or a line band) or "shift"
    (a line band's kept rows to its top when a patch row starts); `patch` and `op_index`
    name the call it serves. The source and destination of a gather or scatter never
    overlap; a shift's may, its source lying after its destination, so executors copy it
    in ascending order, each contiguous run as a memmove."""

    patch: int
    op_index: int
    role: str
    dst: int
    dst_strides: tuple[int, ...]
    src: int
    src_strides: tuple[int, ...]
    shape: tuple[int, ...]
    itemsize: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.itemsize


@dataclass(frozen=True, eq=False)
class RegionCall:
    """Stage op `op_index` on patch `patch`: `op` (a region_op) reads each activation input
    and writes its output, contiguous, at `offsets[tensor]` (arena bytes); `scratch` is
    its kernel scratch, placed in the stage's workspace."""

    patch: int
    op_index: int
    op: Op
    offsets: Mapping[Tensor, int]
    scratch: tuple[Buffer, ...] = ()


LoweredCall = BoxCopy | RegionCall


@dataclass(frozen=True)
class _Held:
    """A buffer holding the box [start, start + shape) of a tensor, C-order, at `offset`."""

    offset: int
    start: tuple[int, ...]
    shape: tuple[int, ...]


def _first_byte(held: _Held, region: Region, itemsize: int) -> int:
    """Arena offset of `region`'s first element inside `held`."""
    local = tuple(a - h for a, h in zip(region.start, held.start))
    return held.offset + sum(i * s for i, s in zip(local, byte_strides(held.shape, itemsize)))


def _contiguous_at(held: _Held, region: Region, itemsize: int) -> int | None:
    """Arena offset of `region` inside `held` when it is one contiguous run there (extent 1
    on every axis before some axis, the held extent on every axis after it), else None."""
    shape = region.shape
    axis = next((a for a in range(len(shape)) if shape[a] != 1), len(shape))
    if any(shape[a] != held.shape[a] for a in range(axis + 1, len(shape))):
        return None
    return _first_byte(held, region, itemsize)


def _box_copy(patch: int, op_index: int, role: str, dst: _Held, src: _Held, region: Region,
              itemsize: int) -> BoxCopy:
    return BoxCopy(patch, op_index, role, _first_byte(dst, region, itemsize), byte_strides(dst.shape, itemsize),
                   _first_byte(src, region, itemsize), byte_strides(src.shape, itemsize), region.shape, itemsize)


def _lower(stage: PatchStage, offsets: Mapping[Tensor, int], workspace: int, temp: int,
           scratch_names: str) -> tuple[list[LoweredCall], int]:
    """(the calls, the temporary bytes they use)."""
    internal = {b.tensor: b for b in stage.buffers}
    producer = {op.outputs[0]: i for i, op in enumerate(stage.ops)}
    bands: dict[Tensor, _Held] = {}  # where each line band's rows are now
    stops: dict[Tensor, int] = {}
    calls: list[LoweredCall] = []
    temp_need = 0
    for p, works in enumerate(stage.patches):
        if p % stage.grid[1] == 0:
            calls += _move_bands(stage, p, bands, stops, workspace, producer)
        held: dict[Tensor, _Held] = {t: _Held(offsets[t], (0,) * len(t.shape), t.shape) for t in stage.inputs}
        held.update(bands)
        for i, (op, work) in enumerate(zip(stage.ops, works)):
            if work.out.empty:
                continue
            proxy = region_op(op, work.out)
            geometry = region_geometry(op, work.out)
            at: dict[Tensor, int] = {}
            cursor = 0
            for t, proxy_t, region in zip(op.inputs, proxy.inputs, geometry.inputs):
                if t is None or t.is_constant:
                    continue
                source = held.get(t)
                if region.empty:  # nothing is read (a PAD whose patch is all border)
                    at[proxy_t] = source.offset if source is not None else workspace
                    continue
                if source is None:
                    raise MCUCError(f"{op.label}: {t.name!r} is read in patch {p} before its patch buffer is written")
                where = _contiguous_at(source, region, t.itemsize)
                if where is None:
                    where = temp + cursor
                    cursor += _round_up(proxy_t.nbytes, TEMP_ALIGN)
                    calls.append(_box_copy(p, i, "gather", _Held(where, region.start, region.shape), source,
                                           region, t.itemsize))
                at[proxy_t] = where
            y, proxy_y = op.outputs[0], proxy.outputs[0]
            scatter = None
            if y is stage.output:
                full = _Held(offsets[y], (0,) * len(y.shape), y.shape)
                where = _contiguous_at(full, work.out, y.itemsize)
                if where is None:
                    where = temp + cursor
                    cursor += _round_up(proxy_y.nbytes, TEMP_ALIGN)
                    scatter = _box_copy(p, i, "scatter", full, _Held(where, work.out.start, work.out.shape),
                                        work.out, y.itemsize)
            elif y in bands:  # into its line band, through the temporary area where not contiguous there
                where = _contiguous_at(bands[y], work.out, y.itemsize)
                if where is None:
                    where = temp + cursor
                    cursor += _round_up(proxy_y.nbytes, TEMP_ALIGN)
                    scatter = _box_copy(p, i, "scatter", bands[y], _Held(where, work.out.start, work.out.shape),
                                        work.out, y.itemsize)
            else:
                buffer = internal.get(y)
                if buffer is None:
                    raise MCUCError(f"{op.label}: {y.name!r} has no patch buffer in its stage")
                where = workspace + buffer.delta
                held[y] = _Held(where, work.out.start, work.out.shape)
            at[proxy_y] = where
            temp_need = max(temp_need, cursor)
            scratch = tuple(Buffer(f"{scratch_names}.op{i}.{name}", workspace + delta, size, 0, 0, kind="scratch")
                            for name, delta, size in stage.op_scratch[i]) if stage.op_scratch else ()
            calls.append(RegionCall(p, i, proxy, at, scratch))
            if scatter is not None:
                calls.append(scatter)
    return calls, temp_need


def _move_bands(stage: PatchStage, p: int, bands: dict[Tensor, _Held], stops: dict[Tensor, int],
                workspace: int, producer: Mapping[Tensor, int]) -> list[BoxCopy]:
    """At patch p, the first of a patch row: each line band takes its rows for this patch
    row (`bands`, the row its rows stop at in `stops`), the rows it shares with its
    previous band moved to the buffer's top (a shift: source after destination)."""
    moves = []
    row = p // stage.grid[1]
    for buffer in stage.buffers:
        band, t = buffer.band, buffer.tensor
        if band is None or band.rows[row] == (0, 0):
            continue
        a, b = band.rows[row]
        new = _Held(workspace + buffer.delta, (0, a, band.cols[0], 0), band.shape(t))
        old = bands.get(t)
        if old is not None and old.start[1] < a < stops[t]:
            keep = Region((0, a, band.cols[0], 0), (1, stops[t], band.cols[1], t.shape[3]))
            moves.append(_box_copy(p, producer[t], "shift", new, old, keep, t.itemsize))
        bands[t], stops[t] = new, b
    return moves


@lru_cache(maxsize=64)
def temp_bytes(stage: PatchStage) -> int:
    """Bytes of the temporary area the stage's gathers and scatters need (the largest one
    call uses: each call's regions start again at the area's start). Cached per stage:
    the planner asks for it at every plan it tries."""
    offsets = {t: 0 for t in (*stage.inputs, stage.output)}
    return _lower(stage, offsets, 0, 0, "")[1]


def lower_stage(stage: PatchStage, offsets: Mapping[Tensor, int], workspace: int, temp: int,
                name: str = "stage") -> tuple[LoweredCall, ...]:
    """The calls that run `stage` with its inputs and output at `offsets`, its workspace
    at arena byte `workspace` and its temporary area (temp_bytes) at `temp`."""
    return tuple(_lower(stage, offsets, workspace, temp, name)[0])


# -- the reference execution of lowered calls ---------------------------------------------


def _byte_indices(base: int, strides: Sequence[int], shape: Sequence[int], itemsize: int) -> np.ndarray:
    index = np.full((), base, np.int64)
    for extent, stride in zip(shape, strides):
        index = index[..., None] + np.arange(extent, dtype=np.int64) * stride
    return (index[..., None] + np.arange(itemsize, dtype=np.int64)).reshape(-1)


def _read(arena: np.ndarray, offset: int, t: Tensor) -> np.ndarray:
    return arena[offset: offset + t.nbytes].copy().view(np.dtype(t.dtype)).reshape(t.shape)


def run_calls(arena: np.ndarray, calls: Sequence[LoweredCall]) -> None:
    """Run lowered calls on a uint8 arena: copies move bytes, region calls evaluate their
    op on the bytes at their offsets (the reference semantics of a PatchLoop)."""
    for call in calls:
        if isinstance(call, BoxCopy):
            arena[_byte_indices(call.dst, call.dst_strides, call.shape, call.itemsize)] = \
                arena[_byte_indices(call.src, call.src_strides, call.shape, call.itemsize)]
            continue
        op = call.op
        ins = [None if t is None else t.data if t.is_constant else _read(arena, call.offsets[t], t)
               for t in op.inputs]
        y = op.outputs[0]
        value = op_def(op.kind).evaluate(op, ins)[0]
        data = np.ascontiguousarray(value, dtype=np.dtype(y.dtype)).reshape(-1).view(np.uint8)
        at = call.offsets[y]
        arena[at: at + data.size] = data


def evaluate_stage(stage: PatchStage, inputs: list[np.ndarray]) -> np.ndarray:
    """The stage's output on numpy arrays (one per `stage.inputs`): its lowered calls run
    on a private arena holding the inputs, the output, the workspace and the temporary
    area one after another."""
    offsets: dict[Tensor, int] = {}
    cursor = 0
    for t in (*stage.inputs, stage.output):
        offsets[t] = cursor
        cursor += _round_up(t.nbytes, TEMP_ALIGN)
    workspace = cursor
    temp = workspace + _round_up(stage.workspace_bytes, TEMP_ALIGN)
    arena = np.zeros(temp + temp_bytes(stage), np.uint8)
    for t, x in zip(stage.inputs, inputs):
        data = np.ascontiguousarray(x, dtype=np.dtype(t.dtype)).reshape(-1).view(np.uint8)
        arena[offsets[t]: offsets[t] + data.size] = data
    run_calls(arena, lower_stage(stage, offsets, workspace, temp))
    return _read(arena, offsets[stage.output], stage.output)
