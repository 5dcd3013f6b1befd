"""The patch stage transformation (patch-based inference, MCUNetV2; DESIGN.md Background).

A stage is a run of consecutive ops [start, end] in the graph's order whose only tensor
read after it (or returned) is op `end`'s output, the cut: every path out of the stage
crosses it. The cut is split into a grid of non-overlapping patches (remainders spread
over the leading rows/columns); for each patch the receptive field gives every op's
region. The stage becomes one PATCH_STAGE op whose intermediates live in patch buffers
sized for the largest patch (a workspace the memory planner places as the op's scratch),
and whose output is written region by region into the full cut tensor. After it,
inference continues layer by layer (or with another stage).

`apply_stages(graph, specs)` rewrites the graph; `plan_patched(graph, specs)` plans it
and turns the stage steps into PatchLoop steps for the backends.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

from mcuc.ir import Graph, MCUCError, Op, Tensor, op_def
from mcuc.ir.ops import Trait
from mcuc.ir.ops.kinds import PATCH_STAGE
from mcuc.ir.ops.patch_stage import region_macs
from mcuc.ir.patch_lowering import TEMP_ALIGN, lower_stage, temp_bytes
from mcuc.ir.patches import LineBand, PatchBuffer, PatchStage, output_shifts
from mcuc.ir.program import PatchLoop, Program, ScratchRequest
from mcuc.ir.program_check import in_place_inputs

from .allocate import allocate
from .lifetimes import DEFAULT_ALIGN, Lifetime, Piece
from .receptive_field import backward_regions, cacheable, cached_regions, grid_regions

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]
WORKSPACE = "patch_workspace"
TEMP = "patch_temp"


@dataclass(frozen=True)
class StageSpec:
    """One stage of a schedule: ends at op `end` (index in the graph it is applied to),
    its output split into grid[0] x grid[1] patches; `start` None: the earliest op the
    stage can start at."""

    end: int
    grid: tuple[int, int]
    start: int | None = None
    cache: bool | frozenset[int] = False  # True: every intermediate's halo; a set: those of these ops' outputs

    def __str__(self) -> str:
        at = f"{self.start}:{self.end}" if self.start is not None else f"{self.end}"
        return f"{self.grid[0]}x{self.grid[1]}@{at}" + cache_suffix(self.cache)


def cache_suffix(cache: bool | frozenset[int]) -> str:
    """The --patch suffix of a stage's halo choice: none, every halo, or those of some ops."""
    if not isinstance(cache, bool):
        return f"+cache={'/'.join(map(str, sorted(cache)))}" if cache else ""
    return "+cache" if cache else ""


def stage_problem(graph: Graph, start: int, end: int) -> str | None:
    """Why ops [start, end] cannot form a stage, or None if they can."""
    ops = graph.ops
    if not 0 <= start <= end < len(ops):
        return f"op range [{start}, {end}] is outside the graph's {len(ops)} ops"
    inside = set(ops[start:end + 1])
    for i in range(start, end + 1):
        op = ops[i]
        if not op_def(op.kind).has(Trait.PATCHABLE):
            return f"op {i} ({op.kind}) cannot run patch by patch"
        if len(op.outputs) != 1 or len(op.outputs[0].shape) != 4:
            return f"op {i} ({op.kind}) does not have one 4-D NHWC output"
        if any(len(t.shape) != 4 for t in op.activation_inputs):
            return f"op {i} ({op.kind}) reads a tensor that is not 4-D NHWC"
        y = op.outputs[0]
        if i == end:
            continue
        if y in graph.outputs:
            return f"op {i} ({op.kind}): its output {y.name!r} is a graph output, so it must be the cut"
        escaping = [c for c in graph.consumers(y) if c not in inside]
        if escaping:
            return (f"op {i} ({op.kind}): its output {y.name!r} is read after op {end} "
                    f"(by {escaping[0].label}), so op {end}'s output is not a cut")
    return None


def stage_start(graph: Graph, end: int) -> int:
    """The earliest op a stage ending at op `end` can start at (MCUError if none)."""
    problem = stage_problem(graph, end, end)
    if problem is not None:
        raise MCUCError(f"no patch stage can end at op {end}: {problem}")
    start = end
    while start > 0 and stage_problem(graph, start - 1, end) is None:
        start -= 1
    return start


def stage_ends(graph: Graph) -> list[tuple[int, int]]:
    """(start, end) of the longest stage ending at each op that can end one."""
    result = []
    for end in range(len(graph.ops)):
        if stage_problem(graph, end, end) is None:
            result.append((stage_start(graph, end), end))
    return result


def _stage_tensors(ops: Sequence[Op]) -> tuple[tuple[Tensor, ...], list[Tensor]]:
    """(the stage's inputs in first-read order, its intermediates in production order)."""
    produced = {op.outputs[0] for op in ops}
    inputs: dict[Tensor, None] = {}
    for op in ops:
        inputs.update(dict.fromkeys(t for t in op.activation_inputs if t not in produced))
    return tuple(inputs), [op.outputs[0] for op in ops[:-1]]


def _largest_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(max(d) for d in zip(*shapes))


def build_stage(graph: Graph, start: int, end: int, grid: tuple[int, int],
                scratch: ScratchFn | None = None, cache: bool | frozenset[int] = False) -> PatchStage:
    """The PatchStage of ops [start, end] with its output split into `grid` patches.
    `cache`: which intermediates keep their halos in a line buffer instead of
    recomputing them (True: all; a set: the outputs of these graph op indices), as far as
    their readers allow (receptive_field.cacheable: the others recompute)."""
    problem = stage_problem(graph, start, end)
    if problem is not None:
        raise MCUCError(f"patch stage [{start}, {end}]: {problem}")
    ops = graph.ops[start:end + 1]
    cut = ops[-1].outputs[0]
    ph, pw = grid
    if not (1 <= ph <= cut.shape[1] and 1 <= pw <= cut.shape[2]):
        raise MCUCError(f"patch grid {ph}x{pw} does not fit op {end}'s output {cut.name!r} "
                        f"of {cut.shape[1]}x{cut.shape[2]} pixels; choose 1..{cut.shape[1]} x 1..{cut.shape[2]}")
    inputs, intermediates = _stage_tensors(ops)
    cached = set(intermediates) if cache is True else \
        {graph.ops[k].outputs[0] for k in (cache or ()) if start <= k < end}
    if cached and cut.shape[0] != 1:
        raise MCUCError(f"patch stage [{start}, {end}]: caching halos needs a batch of 1, "
                        f"{cut.name!r} has {cut.shape[0]}; recompute them instead")
    patch_regions = grid_regions(cut.shape, grid)
    if cached:
        cached = set(cacheable(ops, cut, grid, cached))
    per_patch = cached_regions(ops, cut, grid, cached) if cached else \
        [backward_regions(ops, {cut: region}) for region in patch_regions]
    patches = []
    region_shapes: dict[Tensor, list[tuple[int, ...]]] = {t: [] for t in (*inputs, *intermediates, cut)}
    for regions, works in per_patch:
        for op, work in zip(ops, works):
            window = op_def(op.kind).has(Trait.WINDOW)
            if window and not work.out.empty and work.out.axis(3) != (0, op.outputs[0].shape[3]):
                raise MCUCError(f"{op.label}: a patch must cover all its output channels")
        for t, r in regions.items():
            region_shapes[t].append(r.shape)
        patches.append(tuple(works))
    largest = {t: _largest_shape(shapes) for t, shapes in region_shapes.items() if shapes}
    bands = _line_bands(ops, per_patch, grid, cached)
    buffers, op_scratch, workspace = workspace_layout(ops, intermediates, largest, scratch, bands)
    stage = PatchStage(tuple(ops), inputs, cut, (ph, pw), tuple(patch_regions), tuple(patches),
                       buffers, workspace, op_scratch, cache_chosen=not isinstance(cache, bool))
    return replace(stage, output_shifts=output_shifts(stage))


def _line_bands(ops: Sequence[Op], per_patch, grid: tuple[int, int], cached: set[Tensor]) -> dict[Tensor, LineBand]:
    """The line band of every cached tensor some patch reads part of again (the others
    recompute nothing anyway and keep a patch buffer)."""
    bands = {}
    for t in cached:
        needs = [regions.get(t) for regions, _ in per_patch]
        first = lambda ns: next(((n.axis(1), n.axis(2)) for n in ns if n is not None and not n.empty), None)
        rows = [first(needs[i * grid[1]:(i + 1) * grid[1]]) for i in range(grid[0])]
        cols = [first(needs[j::grid[1]]) for j in range(grid[1])]
        band = line_band([r[0] if r else (0, 0) for r in rows], [c[1] if c else (0, 0) for c in cols], t.name)
        if band is not None:
            bands[t] = band
    return bands


def line_band(row_needs: Sequence[tuple[int, int]], col_needs: Sequence[tuple[int, int]],
              name: str = "") -> LineBand | None:
    """The line band of a cached tensor whose readers need rows row_needs[i] in patch row i
    and columns col_needs[j] in patch column j ((0, 0): nothing), or None when no patch
    reads again what an earlier one read (nothing to keep: a patch buffer serves)."""
    def rereads(needs) -> bool:
        stop = 0
        for a, b in needs:
            if b > a:
                if a < stop:
                    return True
                stop = max(stop, b)
        return False

    if not (rereads(row_needs) or rereads(col_needs)):
        return None
    rows, stop = [], 0
    for a, b in row_needs:
        # the band keeps every row computed so far from its start on (a later patch row
        # may read rows an earlier one computed beyond what this one reads)
        stop = max(stop, b) if b > a else stop
        rows.append((a, stop) if b > a else (0, 0))
    starts = [a for a, b in rows if b]
    if starts != sorted(starts):
        raise MCUCError(f"{name!r}: the rows its readers need start earlier in a later patch row "
                        f"({starts}); its halo cannot be cached, recompute it")
    present = [n for n in col_needs if n[1] > n[0]]
    return LineBand(tuple(rows), (min(a for a, _ in present), max(b for _, b in present)),
                    max(b - a for a, b in rows))


def workspace_layout(ops: Sequence[Op], intermediates: list[Tensor],
                     largest: dict[Tensor, tuple[int, ...]],
                     scratch: ScratchFn | None,
                     bands: Mapping[Tensor, LineBand] | None = None) -> tuple[tuple[PatchBuffer, ...], tuple, int]:
    """Place the patch buffers and the inner ops' scratch in one workspace, reusing bytes
    between buffers whose lifetimes (in op steps within a patch) do not overlap. A line
    band lives across patches, so it shares its bytes with nothing."""
    bands = bands or {}
    index = {op.outputs[0]: i for i, op in enumerate(ops)}
    items: list[Lifetime] = []
    for t in intermediates:
        first = index[t]
        last = max((i for i, op in enumerate(ops) if t in op.inputs), default=first)
        if t in bands:
            first, last = 0, len(ops) - 1
        size = _nbytes(t, bands[t].shape(t) if t in bands else largest.get(t, t.shape))
        if size:
            items.append(Lifetime(t.name, size, first, last, (Piece(0, size, first, last, t),),
                                  DEFAULT_ALIGN, "tensor", t))
    if scratch is not None:
        for i, op in enumerate(ops):
            proxy = op.with_(inputs=tuple(None if t is None else t if t.is_constant else
                                          t.with_(shape=largest.get(t, t.shape)) for t in op.inputs),
                             outputs=tuple(t.with_(shape=largest.get(t, t.shape)) for t in op.outputs))
            # The op's output has a patch buffer of its own, so a kernel whose in-place
            # form copies its input aside first (depthwise: the channel plane) may use it
            # out of place: ask for that form's scratch.
            for r, req in enumerate(scratch(proxy, bool(in_place_inputs(op)))):
                if req.size > 0 and not req.optional:  # a patch buffer has no spare bytes to lend
                    items.append(Lifetime(f"stage_op{i}_{req.name}", req.size, i, i, (Piece(0, req.size, i, i),),
                                          max(req.align, DEFAULT_ALIGN), "scratch", step=i, request=r))
    if not items:
        return (), tuple(() for _ in ops), 0
    placement = allocate(items, len(ops))
    buffers = tuple(PatchBuffer(item.root, placement.offsets[item.name], item.size, bands.get(item.root))
                    for item in items if item.kind == "tensor")
    op_scratch = [[] for _ in ops]
    for item in sorted((it for it in items if it.kind == "scratch"), key=lambda it: (it.step, it.request)):
        op_scratch[item.step].append((item.name, placement.offsets[item.name], item.size))
    return buffers, tuple(tuple(s) for s in op_scratch), placement.arena_bytes


def _nbytes(t: Tensor, shape: tuple[int, ...]) -> int:
    n = t.itemsize
    for d in shape:
        n *= d
    return n


def stage_op(stage: PatchStage, name: str) -> Op:
    return Op(PATCH_STAGE, stage.inputs, (stage.output,), stage, name=name)


def apply_stages(graph: Graph, specs: Sequence[StageSpec], scratch: ScratchFn | None = None,
                 built: dict | None = None) -> Graph:
    """`graph` with each spec's stage replaced by one PATCH_STAGE op (specs index the
    ops of `graph` as given; stages must not overlap). `built`: stages built before for
    this graph and scratch, by their ops and choices (a search applies the same stage in
    many schedules)."""
    ops = list(graph.ops)
    removed = 0
    previous_end = -1
    for spec in sorted(specs, key=lambda s: s.end):
        if spec.end <= previous_end:
            raise MCUCError(f"patch stages overlap at op {spec.end}; give each stage its own ops")
        end = spec.end - removed
        g = graph.with_(ops=tuple(ops))
        if not 0 <= spec.end < len(graph.ops):
            raise MCUCError(f"patch stage {spec}: op {spec.end} does not exist "
                            f"(the graph has ops 0..{len(graph.ops) - 1})")
        start = stage_start(g, end) if spec.start is None else spec.start - removed
        if spec.start is not None and spec.start <= previous_end:
            raise MCUCError(f"patch stage {spec} starts inside the previous stage")
        cache = spec.cache if isinstance(spec.cache, bool) else frozenset(k - removed for k in spec.cache)
        key = (tuple(map(id, g.ops[start:end + 1])), spec.grid, cache)
        stage = built.get(key) if built is not None else None
        if stage is None:
            stage = replace(build_stage(g, start, end, spec.grid, scratch, cache), span=(start + removed, spec.end))
            if built is not None:
                built[key] = stage
        ops[start:end + 1] = [stage_op(stage, f"patch_stage_{spec.end}")]
        removed += end - start
        previous_end = spec.end
    patched = graph.with_(ops=tuple(ops))
    patched.verify()
    return patched


def with_workspace(scratch: ScratchFn | None) -> ScratchFn:
    """The backend's scratch requests plus each PATCH_STAGE's workspace and, when its
    lowered calls gather or scatter, its temporary area (ir.patch_lowering.temp_bytes)."""
    def requests(op: Op, in_place: bool) -> Sequence[ScratchRequest]:
        if op.kind == PATCH_STAGE:
            temp = temp_bytes(op.attrs)
            return [ScratchRequest(WORKSPACE, op.attrs.workspace_bytes, DEFAULT_ALIGN)] + \
                ([ScratchRequest(TEMP, temp, TEMP_ALIGN)] if temp else [])
        return scratch(op, in_place) if scratch is not None else []
    return requests


def lower_patch_loops(program: Program) -> Program:
    """The pass that lowers every PATCH_STAGE step of a planned program to a PatchLoop
    whose `calls` (ir.patch_lowering.lower_stage) carry the plan's offsets."""
    steps = []
    for index, s in enumerate(program.steps):
        if s.op.kind != PATCH_STAGE:
            steps.append(s)
            continue
        stage = s.op.attrs
        workspace = next((b.offset for b in s.scratch if b.name.endswith(WORKSPACE)), 0)
        temp = next((b.offset for b in s.scratch if b.name.endswith(TEMP)), 0)
        calls = lower_stage(stage, program.offsets, workspace, temp, name=f"step{index}")
        steps.append(PatchLoop(s.op, s.scratch, s.placement, calls))
    return replace(program, steps=tuple(steps))


def plan_patched(graph: Graph, specs: Sequence[StageSpec], scratch: ScratchFn | None = None,
                 lower: bool = True, built: dict | None = None, **plan_options) -> Program:
    """Apply the stages, plan memory (stage workspaces included), emit PatchLoop steps
    (`lower` False: not yet, for a search that measures many schedules and runs one)."""
    from .plan import plan

    patched = apply_stages(graph, specs, scratch, built)
    program = plan(patched, with_workspace(scratch), **plan_options)
    return lower_patch_loops(program) if lower else program


def graph_macs(graph: Graph) -> int:
    """MACs of one inference (a stage counts its patches' MACs, halos included)."""
    return sum(op_def(op.kind).macs(op) for op in graph.ops)


def stage_macs(stage: PatchStage) -> int:
    return sum(region_macs(op, work.out) for works in stage.patches for op, work in zip(stage.ops, works))
