"""Receptive-field analysis: which region of every tensor in a stage an output region
needs, composing each op's rule (ir/ops: input_regions, via region_geometry) backwards
over any subgraph: chains, residual adds, concatenations, pooling, PAD, resize.

Where several readers need parts of one tensor, the tensor's region is the bounding box
of their needs (each reader then reads its own sub-region). Padding exists only at the
true borders of full tensors (the ops' rules clip to them), so computing every op on
its region gives exactly the slice of layer-by-layer execution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Sequence

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


@dataclass
class _Computed:
    """How much of a cached tensor its producer has computed, patches walked row-major:
    rows [.., rows_done) over every column (earlier patch rows), and in the current patch
    row, columns [.., cols_done) of its band."""

    row: int = -1
    rows_done: int = 0
    row_stop: int = 0
    cols_done: int = 0

    def new_part(self, need: Region, patch_row: int) -> Region:
        """The part of `need` not computed before (a box: see cached_regions)."""
        if patch_row != self.row:
            self.row, self.rows_done, self.row_stop, self.cols_done = \
                patch_row, max(self.rows_done, self.row_stop), 0, 0
        (a, b), (c, d) = need.axis(1), need.axis(2)
        new = need.with_axis(1, min(max(a, self.rows_done), b), b).with_axis(2, min(max(c, self.cols_done), d), d)
        self.row_stop, self.cols_done = max(self.row_stop, b), max(self.cols_done, d)
        return new


def cached_pass(ops: Sequence[Op], patches: Sequence[Region], grid: tuple[int, int],
                 cached: AbstractSet[Tensor]) -> list[tuple[dict[Tensor, Region], list[Region]]]:
    """Per patch (row-major over `grid`): what each tensor's readers need and what each
    op computes, where the producer of a cached tensor computes only the part of its need
    no earlier patch computed."""
    computed = {t: _Computed() for t in cached}
    result = []
    for p, region in enumerate(patches):
        regions: dict[Tensor, Region] = {ops[-1].outputs[0]: region}
        outs: list[Region] = []
        for op in reversed(ops):
            y = op.outputs[0]
            need = regions.get(y)
            out = empty_region(y.shape) if need is None or need.empty else \
                computed[y].new_part(need, p // grid[1]) if y in computed else need
            outs.append(out)
            if out.empty:
                continue
            for t, r in zip(op.inputs, region_geometry(op, out).inputs):
                if t is not None and not t.is_constant and r is not None:
                    regions[t] = r if r.empty and t not in regions else _union(regions.get(t), r)
        outs.reverse()
        result.append((regions, outs))
    return result


def _axis_passes(ops: Sequence[Op], cut: Tensor, grid: tuple[int, int], cached: AbstractSet[Tensor]):
    """cached_pass over the row bands (full rows) and over the column bands (full columns)."""
    full = Region.full(cut.shape)
    rows = cached_pass(ops, [full.with_axis(1, a, b) for a, b in split_axis(cut.shape[1], grid[0])],
                       (grid[0], 1), cached)
    cols = cached_pass(ops, [full.with_axis(2, a, b) for a, b in split_axis(cut.shape[2], grid[1])],
                       (1, grid[1]), cached)
    return rows, cols


def cacheable(ops: Sequence[Op], cut: Tensor, grid: tuple[int, int],
              wanted: AbstractSet[Tensor]) -> frozenset[Tensor]:
    """The tensors of `wanted` whose halos a line band can keep: those whose readers' needs
    never start earlier in a later patch, on either axis (what cached_regions assumes).
    A concatenation along height or width breaks that (a later patch reads its second
    input from the start again); such a tensor recomputes its halo instead. A tensor's
    needs depend only on the ops after it, so dropping the latest offender and looking
    again settles every tensor before it."""
    order = {op.outputs[0]: i for i, op in enumerate(ops)}
    cached = set(wanted)
    while cached:
        rows, cols = _axis_passes(ops, cut, grid, cached)
        offenders = [t for t in cached if not (_starts_in_order(rows, t, 1) and _starts_in_order(cols, t, 2))]
        if not offenders:
            break
        cached.discard(max(offenders, key=order.__getitem__))
    return frozenset(cached)


def _starts_in_order(passes, t: Tensor, axis: int) -> bool:
    starts = [needs[t].axis(axis)[0] for needs, _ in passes if t in needs and not needs[t].empty]
    return starts == sorted(starts)


def cached_regions(ops: Sequence[Op], cut: Tensor, grid: tuple[int, int],
                   cached: AbstractSet[Tensor]) -> list[tuple[dict[Tensor, Region], list[OpRegion]]]:
    """backward_regions of every patch of `cut` split into `grid` (row-major), where the
    producer of a tensor in `cached` computes only the part of its needed region no
    earlier patch computed (its halo is kept in a line buffer instead of recomputed).

    The regions come from two one-axis analyses, of the row bands over full rows and of
    the column bands over full columns, so a tensor's need in patch (i, j) is the box
    rows [a_i, b_i) x columns [c_j, d_j), a, b, c, d non-decreasing (the rules are
    separable and monotone). The earlier patches then computed rows below b_(i-1) on
    every column and, in row i, columns below d_(j-1); what is left is the box rows
    [max(a_i, b_(i-1)), b_i) x columns [max(c_j, d_(j-1)), d_j) (`cached` must hold only
    tensors whose starts are in order: see cacheable). Returned per patch: what
    each tensor's readers need (a line band holds it) and each op's work (its `out`:
    what it computes)."""
    rows, cols = _axis_passes(ops, cut, grid, cached)
    result = []
    for (row_needs, row_outs), (col_needs, col_outs) in ((rows[i], cols[j]) for i in range(grid[0])
                                                          for j in range(grid[1])):
        regions = {t: r.with_axis(2, *col_needs[t].axis(2)) for t, r in row_needs.items() if t in col_needs}
        works = []
        for op, r, c in zip(ops, row_outs, col_outs):
            out = r.with_axis(2, *c.axis(2))
            works.append(OpRegion(empty_region(out.shape), RegionGeometry(tuple(None for _ in op.inputs)))
                         if r.empty or c.empty else OpRegion(out, region_geometry(op, out)))
        result.append((regions, works))
    return result
