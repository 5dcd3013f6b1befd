"""The patch schedule search: split points x patch grids (1x1 .. 8x8) with the memory
planner, under an SRAM budget or at a MAC overhead limit.

Every candidate (a stage ending at a cut op, its longest start, a grid) is first
estimated fast and exactly in MACs: the spatial ops' rules are separable (rows depend
only on rows, columns on columns), so ph row bands and pw column bands give every
patch's region, the workspace and the MACs without analysing all ph*pw patches. Its
peak is estimated by the live-set bound of the planner's storage rules (the stage's
step holds its inputs, its output, other live tensors and the workspace). Only the most
promising candidates are then planned exactly (plan_patched), and the exact arena
decides.

Choice (issue 6): with a budget, among the schedules whose arena fits, the fewest MACs
(then the smallest arena); without one, the smallest arena at no more than
`max_overhead` extra MACs for the first stage, and further stages that add none.
Layer-by-layer execution is always a candidate.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Mapping, Sequence

from mcuc.ir import Graph, MCUCError, Op, Region, Tensor, op_def
from mcuc.ir.ops.kinds import PATCH_STAGE
from mcuc.ir.patch_lowering import TEMP_ALIGN
from mcuc.ir.patches import LineBand, region_end_byte, region_start_byte
from mcuc.ir.program import Program, ScratchRequest

from .aliasing import plan_storage
from .lifetimes import live_bytes_per_step, lifetimes
from .patch import (StageSpec, apply_stages, graph_macs, line_band, lower_patch_loops, plan_patched, stage_ends,
                    stage_problem, stage_start, with_workspace, workspace_layout)
from .report import live_bytes
from .plan import plan
from .receptive_field import backward_regions, cacheable, cached_pass, split_axis

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]
GRID_SIDES = tuple(range(1, 9))
EXACT_PLANS = 6  # candidates planned exactly per search
# Patch rows tried with cached halos (and the cut's height: one patch row per row of it).
CACHE_ROWS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64)
# Patch columns tried with cached halos: a line band spans the full width whatever the
# columns, so more columns only shrink the uncached buffers, for gathers and scatters.
CACHE_COLUMNS = (1, 2)
# Stages the search adds after its first, one at a time over the op at the peak, and the
# grids it tries for each ((rows, columns, cached); rows 0: one per row of the cut).
MORE_STAGES = 16  # rounds of more_stages (each adds a stage, or re-grids or grows one)
MORE_GRIDS = ((0, 1, True), (2, 2, False), (3, 3, False))
ROUND_PLANS = 4  # trials of a more_stages round planned exactly (the others only estimated)


@dataclass(frozen=True)
class Candidate:
    """One schedule: no stage (layer by layer) or one stage [start, end] with `grid`."""

    stages: tuple[StageSpec, ...]
    start: int
    end: int
    grid: tuple[int, int]
    macs: int
    overhead: float
    peak_estimate: int
    arena_bytes: int | None = None  # exact, once planned

    @property
    def layer_by_layer(self) -> bool:
        return not self.stages

    @property
    def peak(self) -> int:
        return self.arena_bytes if self.arena_bytes is not None else self.peak_estimate

    @property
    def patches(self) -> int:
        """Patches per inference (each a round of kernel calls): the tie-break between
        schedules of equal arena and MACs."""
        return sum(spec.grid[0] * spec.grid[1] for spec in self.stages)

    @property
    def cached(self) -> bool:
        return any(spec.cache for spec in self.stages)

    def describe(self) -> str:
        if self.layer_by_layer:
            return "layer-by-layer"
        return ",".join(str(spec) for spec in self.stages)


@dataclass
class SearchResult:
    best: Candidate
    program: Program
    baseline: Candidate
    candidates: list[Candidate] = field(default_factory=list)


def _band_ranges(ops: Sequence[Op], cut: Tensor, axis: int, parts: int) -> list[tuple[dict, list]]:
    """Per band of the cut along `axis` (1: rows, 2: columns): each tensor's range and
    each op's output range along that axis."""
    full = Region.full(cut.shape)
    bands = []
    for a, b in split_axis(cut.shape[axis], parts):
        regions, works = backward_regions(ops, {cut: full.with_axis(axis, a, b)})
        bands.append(({t: r.axis(axis) for t, r in regions.items()}, [w.out.axis(axis) for w in works]))
    return bands


def _span(r: tuple[int, int]) -> int:
    return max(r[1] - r[0], 0)


class StageModel:
    """Fast figures of one stage (ops [start, end] of `graph`) for any grid."""

    def __init__(self, graph: Graph, start: int, end: int, scratch: ScratchFn | None):
        self.graph, self.start, self.end, self.scratch = graph, start, end, scratch
        self.ops = graph.ops[start:end + 1]
        self.cut = self.ops[-1].outputs[0]
        self.intermediates = [op.outputs[0] for op in self.ops[:-1]]
        self.per_pixel = [Fraction(op_def(op.kind).macs(op), op.outputs[0].shape[1] * op.outputs[0].shape[2])
                          for op in self.ops]
        self._bands: dict[tuple, list] = {}
        self._cacheable_sets: dict[tuple[int, int], frozenset[Tensor]] = {}
        self.outside_macs = graph_macs(graph) - graph_macs(graph.with_(ops=self.ops))
        self.live = self._live_without_workspace()
        inside = set(self.ops)
        # Stage inputs read by nobody after the stage: the output may overlap them (not a
        # graph input in the caller's buffer, which is neither in the arena nor writable).
        caller = set(graph.inputs) if graph.io_buffers == "caller" else set()
        produced = {op.outputs[0] for op in self.ops}
        self.stage_inputs = [t for t in dict.fromkeys(t for op in self.ops for t in op.activation_inputs)
                             if t not in produced]
        self.dying = [t for t in self.stage_inputs if t not in graph.outputs and t not in caller
                      and all(c in inside for c in graph.consumers(t))]

    def bands(self, axis: int, parts: int) -> list:
        key = (axis, parts)
        if key not in self._bands:
            self._bands[key] = _band_ranges(self.ops, self.cut, axis, parts)
        return self._bands[key]

    def _live_without_workspace(self) -> tuple[int, int]:
        """(bytes live at the stage's step without its workspace, peak of the other steps)."""
        patched = apply_stages(self.graph, [StageSpec(self.end, (1, 1), self.start)])

        def no_workspace(op: Op, in_place: bool):
            if op.kind == PATCH_STAGE:
                return []
            return self.scratch(op, in_place) if self.scratch is not None else []

        items = lifetimes(patched, plan_storage(patched, pointwise=None), no_workspace)
        live = live_bytes_per_step(items, len(patched.ops))
        others = [b for i, b in enumerate(live) if i != self.start]
        return live[self.start], max(others, default=0)

    def cached_bands(self, axis: int, parts: int, cached: frozenset[Tensor]) -> list:
        """Like bands(), with the halos of `cached` kept (receptive_field.cached_regions)."""
        key = (axis, parts, cached)
        if key not in self._bands:
            cut, full = self.cut, Region.full(self.cut.shape)
            grid = (parts, 1) if axis == 1 else (1, parts)
            passes = cached_pass(self.ops, [full.with_axis(axis, a, b) for a, b in split_axis(cut.shape[axis], parts)],
                                 grid, cached)
            self._bands[key] = [({t: r.axis(axis) for t, r in needs.items()}, [o.axis(axis) for o in outs])
                                for needs, outs in passes]
        return self._bands[key]

    def _cacheable(self, grid: tuple[int, int]) -> frozenset[Tensor]:
        if grid not in self._cacheable_sets:
            self._cacheable_sets[grid] = cacheable(self.ops, self.cut, grid, set(self.intermediates))
        return self._cacheable_sets[grid]

    def figures(self, grid: tuple[int, int], cache: bool = False) -> tuple[int, int]:
        """(MACs of one inference with this stage, estimated peak bytes); `cache`: every
        intermediate's halo cached in a line band, as far as its readers allow."""
        cached = self._cacheable(grid) if cache else frozenset()
        if cache:
            rows, cols = self.cached_bands(1, grid[0], cached), self.cached_bands(2, grid[1], cached)
        else:
            rows, cols = self.bands(1, grid[0]), self.bands(2, grid[1])
        macs = Fraction(0)
        for i in range(len(self.ops)):
            macs += self.per_pixel[i] * sum(_span(b[1][i]) for b in rows) * sum(_span(b[1][i]) for b in cols)
        largest, line_bands = {}, {}
        for t in self.intermediates:
            r = max((_span(b[0][t]) for b in rows if t in b[0]), default=0)
            c = max((_span(b[0][t]) for b in cols if t in b[0]), default=0)
            largest[t] = (t.shape[0], r, c, t.shape[3])
            band = line_band([b[0].get(t, (0, 0)) for b in rows], [b[0].get(t, (0, 0)) for b in cols]) \
                if t in cached else None
            if band is not None:
                line_bands[t] = band
        _, _, workspace = workspace_layout(self.ops, self.intermediates, largest, self.scratch, line_bands)
        stage_live, others = self.live
        stage_live -= max((self._overlap_saving(x, rows, cols) for x in self.dying), default=0)
        temp = self._temp_estimate(rows, cols, line_bands)
        return self.outside_macs + int(macs), max(stage_live + workspace + temp, others)

    def _temp_estimate(self, rows: list, cols: list, line_bands: Mapping[Tensor, LineBand]) -> int:
        """The stage's temporary area (ir.patch_lowering.temp_bytes), estimated: an op's
        input read from a whole stage input or a line band, and its output written into the
        stage output or a line band, pass through it when the patch does not span the
        holder's full width (whole rows are contiguous in NHWC, part rows are not). The
        sizes are the largest spans over the patches of each tensor's need (all its readers'
        together, so an op reading a narrower part of it may be missed): an estimate the
        exact plans correct. Without it, multi-column grids looked ~1-2 KB smaller than
        they plan, and the best grids were never planned exactly."""
        full = lambda t: (0, t.shape[2])
        holders = {t: full(t) for t in self.stage_inputs} | {t: b.cols for t, b in line_bands.items()} \
            | {self.cut: full(self.cut)}

        def through_temp(t: Tensor, col_spans: list, row_spans: list) -> int:
            if t not in holders or all(s == holders[t] or not _span(s) for s in col_spans):
                return 0
            size = t.shape[0] * max(map(_span, row_spans)) * max(map(_span, col_spans)) * t.shape[3] * t.itemsize
            return -(-size // TEMP_ALIGN) * TEMP_ALIGN

        temp = 0
        for i, op in enumerate(self.ops):
            needs = lambda bands, t: [b[0][t] for b in bands if t in b[0]]
            used = sum(through_temp(t, needs(cols, t), needs(rows, t)) for t in op.activation_inputs)
            used += through_temp(op.outputs[0], [b[1][i] for b in cols], [b[1][i] for b in rows])
            temp = max(temp, used)
        return temp

    def peak_floor(self) -> int:
        """No grid's estimated peak is below this: the stage's step without a workspace,
        with the output over a dying input as far as it can be (at most the smaller of
        the two), and the other steps."""
        stage_live, others = self.live
        saving = max((min(x.nbytes, self.cut.nbytes) for x in self.dying), default=0)
        return max(stage_live - saving, others)

    def _overlap_saving(self, x: Tensor, rows: list, cols: list) -> int:
        """Bytes saved by placing the output over dying input x at its shift
        (ir.patches.output_shifts, from the bands)."""
        cut = self.cut
        row_parts, col_parts = split_axis(cut.shape[1], len(rows)), split_axis(cut.shape[2], len(cols))
        shift, lowest = 0, x.nbytes
        for i in reversed(range(len(rows))):
            for j in reversed(range(len(cols))):
                r, c = rows[i][0].get(x), cols[j][0].get(x)
                if r is not None and c is not None and _span(r) and _span(c):
                    lowest = min(lowest, region_start_byte(x, Region((0, r[0], c[0], 0), (1, r[1], c[1], 1))))
                (_, r1), (_, c1) = row_parts[i], col_parts[j]
                end = region_end_byte(cut, Region((0, 0, 0, 0), (cut.shape[0], r1, c1, cut.shape[3])))
                shift = max(shift, end - lowest)
        if shift >= cut.nbytes:
            return 0
        return x.nbytes + cut.nbytes - max(shift + x.nbytes, cut.nbytes)


def enumerate_candidates(graph: Graph, scratch: ScratchFn | None = None,
                         sides: Sequence[int] = GRID_SIDES) -> tuple[Candidate, list[Candidate]]:
    """(layer by layer, every stage x grid), with exact MACs and estimated peaks."""
    base_macs = graph_macs(graph)
    base_items = lifetimes(graph, plan_storage(graph, pointwise=None), scratch)
    baseline = Candidate((), -1, -1, (1, 1), base_macs, 0.0, max(live_bytes_per_step(base_items, len(graph.ops))))
    result = []
    best_cached = None  # the smallest estimated peak of a cached candidate so far
    for start, end in stage_ends(graph):
        model = StageModel(graph, start, end, scratch)
        h, w = model.cut.shape[1], model.cut.shape[2]
        grids = [(ph, pw, False) for ph in sides for pw in sides]
        # Cached schedules all have the fewest MACs, so a stage whose peak cannot get
        # below the best cached one so far offers nothing new (and line bands need a
        # batch of 1).
        if model.cut.shape[0] == 1 and (best_cached is None or model.peak_floor() < best_cached):
            grids += [(ph, pw, True) for ph in sorted({*CACHE_ROWS, h}) for pw in CACHE_COLUMNS]
        for ph, pw, cache in grids:
            if ph > h or pw > w or (ph, pw) == (1, 1):
                continue
            macs, peak = model.figures((ph, pw), cache)
            if cache:
                best_cached = peak if best_cached is None else min(best_cached, peak)
            result.append(Candidate((StageSpec(end, (ph, pw), None, cache),), start, end, (ph, pw), macs,
                                    macs / base_macs - 1 if base_macs else 0.0, peak))
    return baseline, result


def plan_candidate(graph: Graph, c: Candidate, scratch: ScratchFn | None,
                   base_macs: int) -> tuple[Candidate, Program]:
    """The candidate planned exactly (its arena measured), with its program."""
    candidate, program = Planner(graph, scratch, base_macs)(c)
    return candidate, lower_patch_loops(program)


class Planner:
    """Exact plans of schedules of one graph (patch loops not yet lowered: a search plans
    hundreds and runs one). A search applies the same stages in many schedules, so each
    stage is built once."""

    def __init__(self, graph: Graph, scratch: ScratchFn | None, base_macs: int):
        self.graph, self.scratch, self.base_macs = graph, scratch, base_macs
        self._built: dict = {}

    def __call__(self, c: Candidate) -> tuple[Candidate, Program]:
        program = plan_patched(self.graph, c.stages, self.scratch, lower=False, built=self._built) \
            if c.stages else plan(self.graph, self.scratch)
        macs = graph_macs(program.graph)
        return replace(c, macs=macs, overhead=self.overhead(macs), arena_bytes=program.arena_bytes), program

    def overhead(self, macs: int) -> float:
        return macs / self.base_macs - 1 if self.base_macs else 0.0

    def estimate(self, stages: tuple[StageSpec, ...]) -> tuple[int, list[int]]:
        """(MACs, bytes live per step from the busiest down) of a schedule, without
        placing it: the storage with every eligible convolution overlapping, the
        planner's most compact (a lower bound on what it reaches, for ranking trials)."""
        patched = apply_stages(self.graph, stages, self.scratch, self._built)
        items = lifetimes(patched, plan_storage(patched, pointwise=None), with_workspace(self.scratch))
        return graph_macs(patched), sorted(live_bytes_per_step(items, len(patched.ops)), reverse=True)


def search(graph: Graph, scratch: ScratchFn | None = None, *, sram: int | None = None,
           max_overhead: float = 0.10, sides: Sequence[int] = GRID_SIDES) -> SearchResult:
    """The best schedule for `graph` (see the module docstring); MCUCError when a budget
    is given and nothing fits, naming the smallest peak any schedule reaches."""
    baseline, candidates = enumerate_candidates(graph, scratch, sides)
    exact = Planner(graph, scratch, baseline.macs)
    exact_baseline, base_program = exact(baseline)
    found = lambda best: SearchResult(best[0], lower_patch_loops(best[1]), exact_baseline, candidates)
    planned: list[tuple[Candidate, Program]] = [(exact_baseline, base_program)]
    allowed = sorted((c for c in candidates if c.overhead <= max_overhead), key=lambda c: (c.peak_estimate, c.macs))
    if sram is not None:
        if exact_baseline.arena_bytes <= sram:
            return found((exact_baseline, base_program))

        def fewest_macs_fitting():
            same = [p for p in planned if p[0].arena_bytes <= sram]
            return min(same, key=lambda p: (p[0].macs, p[0].arena_bytes, p[0].patches)) if same else None

        # The fewest MACs that fit, in rounds of growing cost: one stage within the
        # overhead, several stages within it (as --patch auto adds them), one stage at
        # any overhead, the smallest single stages, several stages at any overhead.
        fitting = sorted((c for c in candidates if c.peak_estimate <= sram), key=lambda c: (c.macs, c.peak_estimate))
        for c in fitting[:EXACT_PLANS * 2]:
            if c.overhead > max_overhead:
                break
            planned.append(exact(c))
            if planned[-1][0].arena_bytes <= sram:
                best = fewer_patches(exact, fewest_macs_fitting(), limit=sram)
                return found(best)
        # (from the single stage --patch auto starts from: the plans above would change it)
        start = _best_single([(exact_baseline, base_program)], allowed, exact, exact_baseline)
        cheap = more_stages(exact, start, max_overhead=start[0].overhead, sram=sram)
        if cheap[0].arena_bytes > sram:
            cheap = more_stages(exact, cheap, max_overhead=max_overhead, sram=sram)
        if cheap[0].arena_bytes <= sram:
            cheap = fewer_patches(exact, cheap, limit=sram)
            return found(cheap)
        for c in [c for c in fitting if c.overhead > max_overhead][:EXACT_PLANS * 2]:
            planned.append(exact(c))
            if planned[-1][0].arena_bytes <= sram:
                break
        if (best := fewest_macs_fitting()) is None:
            # The estimates of the cheapest candidates were optimistic; one of the smallest
            # may still fit.
            planned += [exact(c) for c in sorted(candidates, key=lambda c: (c.peak_estimate, c.macs))[:EXACT_PLANS]]
            best = fewest_macs_fitting()
        if best is not None:
            best = fewer_patches(exact, best, limit=sram)
            return found(best)
        smallest = more_stages(exact, min(planned, key=lambda p: p[0].arena_bytes), sram=sram)
        if smallest[0].arena_bytes <= sram:
            smallest = fewer_patches(exact, smallest, limit=sram)
            return found(smallest)
        smallest = min(smallest[0], cheap[0], key=lambda c: (c.arena_bytes, c.macs))
        state = sum(t.nbytes for t in graph.states)
        beside = f" (the arena; the state kept between invocations takes {state:,} B beside it)" if state else ""
        raise MCUCError(f"no schedule of {graph.name} fits {sram:,} B of SRAM{beside}: the smallest peak any "
                        f"schedule reaches is {smallest.arena_bytes:,} B ({smallest.describe()}, "
                        f"{smallest.overhead:.1%} extra MACs); raise --sram to at least that")
    allowed_best = _best_single(planned, allowed, exact, exact_baseline)
    # (more stages add no MACs: a smaller arena for more MACs is what --sram asks for)
    best = more_stages(exact, allowed_best, max_overhead=allowed_best[0].overhead)
    best = fewer_patches(exact, best)
    return found(best)


def _best_single(planned, allowed, exact, exact_baseline):
    """Without a budget: the smallest arena among the single-stage candidates within the
    overhead, then the cheapest grid that reaches it."""
    for c in allowed[:EXACT_PLANS]:
        if c.peak_estimate < exact_baseline.arena_bytes:
            planned.append(exact(c))
    best = min(planned, key=lambda p: (p[0].arena_bytes, p[0].macs, p[0].patches))
    # Where the stage is no longer the peak, cheaper grids reach the same arena.
    cheaper = sorted((c for c in allowed if c.peak_estimate <= best[0].arena_bytes and c.macs < best[0].macs),
                     key=lambda c: c.macs)
    for c in cheaper[:EXACT_PLANS]:
        trial = exact(c)
        if (trial[0].arena_bytes, trial[0].patches) <= (best[0].arena_bytes, best[0].patches):
            best = trial
            break
    return best


def _stage_spans(graph: Graph, program: Program) -> list[tuple[int, int]]:
    """[first, last] original op indices of each step of a planned (patched) program."""
    spans, at = {}, 0
    for op in program.graph.ops:
        if op.kind == PATCH_STAGE:
            spans[op] = op.attrs.span
            at = op.attrs.span[1] + 1
        else:
            spans[op] = (at, at)
            at += 1
    return [spans[step.op] for step in program.steps]


def more_stages(exact: Planner, best: tuple[Candidate, Program], *, max_overhead: float | None = None,
                sram: int | None = None) -> tuple[Candidate, Program]:
    """Improve a schedule a step at a time, up to MORE_STAGES rounds, while the arena (or the
    live bound, or the live bytes of the busiest steps) shrinks and the MACs stay within
    `max_overhead`, or with `sram`, until the arena fits (the fewest MACs of a round's
    trials that fit); the smallest arena reached, with the fewest rounds, is the result.
    Each round tries a stage over the busiest op outside the stages (ending at one of the
    nearest ops after it, cached or recomputed) and, when a stage is the busiest step,
    that stage changed (_regridded), estimates every trial (Planner.estimate), plans the
    ROUND_PLANS most promising exactly and keeps the best."""
    def key(trial: tuple[Candidate, Program]) -> tuple:
        # the live bound, then the arena, then the other steps' live bytes from the
        # busiest down: when several steps share the peak, one stage may not lower the
        # arena (placement can leave it above the bound) nor the bound (another step holds
        # it too), but it lowers the profile, and the next stage the bound and the arena
        live = sorted(live_bytes(trial[1]), reverse=True)
        return live[:1], trial[0].arena_bytes, live

    current = best
    for _ in range(MORE_STAGES):
        c, program = current
        if sram is not None and c.arena_bytes <= sram:
            return current
        trials = [tuple(sorted(c.stages + (spec,), key=lambda s: s.end))
                  for spec in _added_stages(exact.graph, c, program)]
        trials += _regridded(exact.graph, c, program, budget=sram is not None)
        # Ranked by their estimates; the most promising planned exactly.
        estimates = [(exact.estimate(stages), stages) for stages in dict.fromkeys(trials)]
        estimates = [((live[:1], live, macs), stages) for (macs, live), stages in estimates
                     if max_overhead is None or exact.overhead(macs) <= max_overhead]
        chosen = [stages for _, stages in sorted(estimates, key=lambda e: e[0])[:ROUND_PLANS]]
        if sram is not None:
            chosen += [stages for (bound, _, macs), stages in sorted(estimates, key=lambda e: e[0][2])
                       if bound[0] <= sram][:ROUND_PLANS]
        improved, fitting = None, None
        for stages in dict.fromkeys(chosen):
            trial = exact(replace(c, stages=stages, arena_bytes=None))
            if key(trial) < key(improved or current):
                improved = trial
            if sram is not None and trial[0].arena_bytes <= sram and \
                    (fitting is None or (trial[0].macs, trial[0].arena_bytes) < (fitting[0].macs, fitting[0].arena_bytes)):
                fitting = trial  # under a budget, of the round's trials that fit, the fewest MACs
        if fitting is not None:
            return fitting
        if improved is None:
            break
        current = improved
        if current[0].arena_bytes < best[0].arena_bytes:
            best = current  # (a round that only lowered the bound adds a stage for nothing)
    return best


def fewer_patches(exact: Planner, best: tuple[Candidate, Program],
                  limit: int | None = None) -> tuple[Candidate, Program]:
    """Each stage of `best` with half its patch rows, again and again, while the MACs do
    not grow and the arena does not grow (without a budget) or stays within `limit` (an
    --sram budget: the fastest schedule that fits). Each patch is a round of kernel calls,
    and its window ops gather their halo rows again. more_stages keeps the lowest live
    bound, so a stage off the peak can hold more patches than the arena needs:
    mcunet_person_det's second stage, 16x1 where 2x1 gives the same 80,704 B and 0.5%
    fewer instructions."""
    for end in [spec.end for spec in best[0].stages]:
        while True:
            c = best[0]
            spec = next(s for s in c.stages if s.end == end)
            rows, cols = spec.grid
            if rows < 2:
                break
            stages = tuple(replace(s, grid=(rows // 2, cols)) if s is spec else s for s in c.stages)
            trial = exact(replace(c, stages=stages, arena_bytes=None))
            if trial[0].arena_bytes > (c.arena_bytes if limit is None else limit) or trial[0].macs > c.macs:
                break
            best = trial
    return best


def _grids(cut: Tensor) -> list[tuple[tuple[int, int], bool]]:
    """MORE_GRIDS for a stage cutting at `cut` (rows 0: one per row; cached: batch 1)."""
    return [((min(rows or cut.shape[1], cut.shape[1]), min(cols, cut.shape[2])), cache)
            for rows, cols, cache in MORE_GRIDS if not (cache and cut.shape[0] != 1)]


def _added_stages(graph: Graph, c: Candidate, program: Program) -> list[StageSpec]:
    """Stages over the busiest step outside c's stages (the arena can exceed the live
    bound, so even when a stage holds the most live bytes, a stage elsewhere may shrink it)."""
    live, spans = live_bytes(program), _stage_spans(graph, program)
    # (a stage of one op spans one op too: its step is the PATCH_STAGE)
    outside = [i for i, (a, b) in enumerate(spans) if a == b and program.steps[i].op.kind != PATCH_STAGE]
    if not outside:
        return []
    first = spans[max(outside, key=live.__getitem__)][0]
    taken = [(spec_start(graph, spec), spec.end) for spec in c.stages]
    low = max((e + 1 for _, e in taken if e < first), default=0)
    high = min((s - 1 for s, _ in taken if s > first), default=len(graph.ops) - 1)
    trials: list[StageSpec] = []
    ends = 0
    for start, end in stage_ends(graph):
        start = max(start, low)
        if not (start <= first <= end <= high) or ends >= 3:
            continue
        ends += 1
        # from as early as it may start, and from the busiest op or the one before it
        for s in sorted({start} | {f for f in (first - 1, first) if f >= start}):
            trials += [StageSpec(end, grid, s, cache) for grid, cache in _grids(graph.ops[end].outputs[0])]
    return trials


def _regridded(graph: Graph, c: Candidate, program: Program, budget: bool) -> list[tuple[StageSpec, ...]]:
    """c's stages with the busiest step's stage (if a stage is the busiest) changed: on
    the other MORE_GRIDS; grown by the op after it (a residual ADD after a block: its
    output may then overwrite the block's input, which dies inside the stage); and under
    a `budget`, if cached, with more columns (a line band spans the full width, but the
    patch buffers shrink) and with the largest line band's halo recomputed instead (fewer
    bytes for more MACs: caching and recompute mixed per op). More columns cost no MACs
    but a round of kernel calls per patch (mcunet_person_det at 32x40 patches: 75,536 B
    instead of 80,704 B, but 11% more instructions than layer by layer), so only a
    budget that needs them gets them."""
    live = live_bytes(program)
    step = program.steps[max(range(len(live)), key=live.__getitem__)]
    if step.op.kind != PATCH_STAGE:
        return []
    stage = step.op.attrs
    end = stage.span[1]
    old = next(s for s in c.stages if s.end == end)
    variants = [replace(old, grid=grid, cache=cache) for grid, cache in _grids(graph.ops[end].outputs[0])
                if (grid, cache) != (old.grid, bool(old.cache))]
    if budget and stage.cached:
        rows, cols = old.grid
        wider = sorted({min(cols * f, stage.output.shape[2]) for f in (1, 2, 4)})
        variants += [replace(old, grid=(rows, w)) for w in wider if w != cols]
        banded = stage.line_band_bytes()
        fewer = frozenset(banded) - {max(banded, key=banded.__getitem__)}
        variants += [replace(old, grid=(rows, w), cache=fewer) for w in wider]
    others = [s for s in c.stages if s is not old]
    grown = end + 1
    if grown < len(graph.ops) and not any(spec_start(graph, s) <= grown <= s.end for s in others) \
            and stage_problem(graph, stage.span[0], grown) is None:
        cut = graph.ops[grown].outputs[0]
        grid = (min(old.grid[0], cut.shape[1]), min(old.grid[1], cut.shape[2]))
        variants.append(replace(old, end=grown, start=stage.span[0], grid=grid))
    return [tuple(sorted([*others, v], key=lambda s: s.end)) for v in variants]


def spec_start(graph: Graph, spec: StageSpec) -> int:
    return spec.start if spec.start is not None else stage_start(graph, spec.end)


def pareto_front(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Candidates no other beats in both peak and MACs, by increasing MACs."""
    front: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: (c.macs, c.peak)):
        if not front or c.peak < front[-1].peak:
            front.append(c)
    return front
