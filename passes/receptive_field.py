"""Receptive-field analysis: which region of every tensor in a stage an output region
needs, composing each op's rule (ir/ops: input_regions, via region_geometry) backwards
over any subgraph: chains, residual adds, concatenations, pooling, PAD, resize.

Where several readers need parts of one tensor, the tensor's region is the bounding box
of their needs (each reader then reads its own sub-region). Padding exists only at the
true borders of full tensors (the ops' rules clip to them), so computing every op on
its region gives exactly the slice of layer-by-layer execution.
"""
from __future__ import annotations

from typing import Sequence

from mcuc.ir import MCUCError, Op, Region, Tensor
from mcuc.ir.patches import OpRegion, RegionGeometry, region_geometry


def _union(a: Region | None, b: Region) -> Region:
    if a is None or a.empty:
        return b
    if b.empty:
        return a
    return a.union(b)


def empty_region(shape: tuple[int, ...]) -> Region:
    return Region(tuple(0 for _ in shape), tuple(0 for _ in shape))


def backward_regions(ops: Sequence[Op], needed: dict[Tensor, Region]) -> tuple[dict[Tensor, Region], list[OpRegion]]:
    """Given the regions `needed` of some tensors the ops produce, the region of every
    activation the ops read or write (stage inputs included) and each op's work.

    `ops` must be in execution order; an op whose output region comes out empty does not
    run (OpRegion with an empty `out`)."""
    regions: dict[Tensor, Region] = dict(needed)
    works: list[OpRegion] = []
    for op in reversed(ops):
        if len(op.outputs) != 1:
            raise MCUCError(f"{op.label}: receptive-field analysis needs single-output ops")
        y = op.outputs[0]
        out = regions.get(y)
        if out is None or out.empty:
            out = empty_region(y.shape)
            works.append(OpRegion(out, RegionGeometry(tuple(None for _ in op.inputs))))
            continue
        geometry = region_geometry(op, out)
        for t, r in zip(op.inputs, geometry.inputs):
            if t is None or t.is_constant or r is None:
                continue
            if r.empty:
                regions.setdefault(t, empty_region(t.shape))
            else:
                regions[t] = _union(regions.get(t), r)
        works.append(OpRegion(out, geometry))
    works.reverse()
    return regions, works


def split_axis(size: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) of `parts` near-equal pieces of range(size), the larger ones first
    (the remainder is spread over the leading pieces)."""
    if not 1 <= parts <= size:
        raise MCUCError(f"cannot split an axis of {size} into {parts} patches")
    base, extra = divmod(size, parts)
    bounds, at = [], 0
    for i in range(parts):
        n = base + (1 if i < extra else 0)
        bounds.append((at, at + n))
        at += n
    return bounds


def grid_regions(shape: tuple[int, ...], grid: tuple[int, int]) -> list[Region]:
    """The non-overlapping patches of an NHWC tensor, row-major."""
    full = Region.full(shape)
    return [full.with_axis(1, r0, r1).with_axis(2, c0, c1)
            for r0, r1 in split_axis(shape[1], grid[0]) for c0, c1 in split_axis(shape[2], grid[1])]
