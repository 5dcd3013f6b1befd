"""--patch and --sram: from the user's choice to a planned Program (issue 6).

- `--patch off` (the default without --sram): layer by layer; with --sram, an error if
  that does not fit.
- `--patch auto`: the search (patch_search.search): within --sram the fewest MACs, or
  without it the smallest arena at <= 10% extra MACs.
- `--patch RxC@OP[,RxC@OP...]`: the given stages, each ending at op OP (its index in the
  prepared graph, as `mcuc plan` lists it, or its output tensor's name) and starting at
  the earliest op it can; `RxC@START:END` starts it at op START; a `+cache` suffix keeps
  every intermediate's halo in a line band instead of recomputing it (no extra MACs),
  `+cache=A/B/...` only those of ops A, B, ... (the others recompute theirs: fewer bytes
  for more MACs).
- `--sram BYTES` without --patch: layer by layer if it fits, else the search.

The program's notes carry `schedule` (the stages) and `mac_overhead` (extra MACs over
layer by layer, as a fraction) for report.json. Every program it returns has passed the
static verifier (ir/program_check.check_program).
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

from mcuc.ir import Graph, MCUCError, Op
from mcuc.ir.ops.kinds import PATCH_STAGE
from mcuc.ir.program import Program, ScratchRequest
from mcuc.ir.program_check import check_program

from .patch import StageSpec, cache_suffix, graph_macs, plan_patched, stage_start
from .patch_search import search
from .plan import plan

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]
AUTO_MAX_OVERHEAD = 0.10
_MANUAL = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*@\s*(\S+?)(\+cache(?:=(\d+(?:/\d+)*))?)?\s*$")


def check_patch_option(patch: str | None) -> None:
    """MCUCError unless `patch` is None, auto, off or a list of RxC@OP."""
    if patch is None or patch in ("auto", "off"):
        return
    for part in patch.split(","):
        if not _MANUAL.match(part):
            raise MCUCError(f"--patch {patch!r}: {part.strip()!r} is not RxC@OP[+cache[=A/B/...]]; write auto, "
                            f"off, or for example 3x3@12 (a 3x3 grid at op 12's output; `mcuc plan` lists the "
                            f"ops), 20x1@12+cache (halos cached instead of recomputed) or 20x4@12+cache=9/10 "
                            f"(only ops 9 and 10's halos cached)")


def parse_stages(patch: str, graph: Graph) -> list[StageSpec]:
    """The StageSpecs of a manual --patch value; OP is an op index or an output tensor name."""
    check_patch_option(patch)
    by_name = {t.name: i for i, op in enumerate(graph.ops) for t in op.outputs}
    specs = []
    for part in patch.split(","):
        rows, cols, at, cache, cached_ops = _MANUAL.match(part).groups()
        if "+cache" in at:  # (a malformed list: the op pattern took the suffix)
            raise MCUCError(f"--patch {part.strip()!r}: +cache= takes the indices of the stage's ops whose halos "
                            f"are cached, separated by /: for example +cache=9/10")
        start = None
        if ":" in at:  # START:END, a stage that starts later than it could
            first, at = at.split(":", 1)
            if not first.isdigit():
                raise MCUCError(f"--patch {part.strip()!r}: the stage's first op {first!r} is not an op index")
            start = int(first)
        if at.isdigit():
            end = int(at)
        elif at in by_name:
            end = by_name[at]
        else:
            raise MCUCError(f"--patch {part.strip()!r}: {at!r} is neither an op index (0..{len(graph.ops) - 1}) "
                            f"nor an op output's name")
        if not 0 <= end < len(graph.ops):
            raise MCUCError(f"--patch {part.strip()!r}: op {end} does not exist (ops 0..{len(graph.ops) - 1})")
        if start is not None and not 0 <= start <= end:
            raise MCUCError(f"--patch {part.strip()!r}: the stage must start at an op from 0 to {end}")
        cache = cache is not None
        if cached_ops is not None:
            cache = frozenset(map(int, cached_ops.split("/")))
            first = start if start is not None else stage_start(graph, end)
            outside = sorted(k for k in cache if not first <= k < end)
            if outside:
                raise MCUCError(f"--patch {part.strip()!r}: op {outside[0]} is not one of the stage's ops "
                                f"{first}..{end - 1} (+cache=A/B/... names those whose halos are cached)")
        specs.append(StageSpec(end, (int(rows), int(cols)), start, cache))
    return specs


def schedule_summary(program: Program, graph: Graph) -> list[dict]:
    """The stages of a planned program of `graph`, for report.json; each one's `patch`
    given back as --patch makes the same stage."""
    stages = []
    previous_last = None
    for step in sorted((s for s in program.steps if s.op.kind == PATCH_STAGE),
                       key=lambda s: s.op.attrs.span):
        stage = step.op.attrs
        first, last = stage.span
        # A stage that starts later than it could (right after another, or by choice)
        # says where.
        later = previous_last is not None and first == previous_last + 1 or first != stage_start(graph, last)
        at = f"{first}:{last}" if later else f"{last}"
        previous_last = last
        cache = frozenset(stage.line_band_bytes()) if stage.cache_chosen else stage.cached
        stages.append({"patch": f"{stage.grid[0]}x{stage.grid[1]}@{at}" + cache_suffix(cache),
                       "cached": stage.cached, "start": first, "split": last,
                       "step": program.steps.index(step), "ops": [op.label for op in stage.ops],
                       "output": stage.output.name, "grid": list(stage.grid),
                       "workspace_bytes": stage.workspace_bytes})
    return stages


def _annotate(program: Program, graph: Graph, base_macs: int) -> Program:
    """The verified program, with its schedule notes (every return path comes here)."""
    check_program(program)
    macs = graph_macs(program.graph)
    program.notes["schedule"] = schedule_summary(program, graph)
    program.notes["mac_overhead"] = round(macs / base_macs - 1, 6) if base_macs else 0.0
    return program


def schedule_with_patches(graph: Graph, patch: str | None, sram: int | None,
                          scratch: ScratchFn | None = None) -> Program:
    """The planned program for a prepared graph under --patch / --sram."""
    check_patch_option(patch)
    if sram is not None and sram <= 0:
        raise MCUCError(f"--sram {sram}: give the SRAM budget in bytes (a positive number)")
    base_macs = graph_macs(graph)
    if patch in (None, "off"):
        program = plan(graph, scratch)
        if sram is None or program.arena_bytes <= sram:
            return _annotate(program, graph, base_macs)
        if patch == "off":
            raise MCUCError(f"layer-by-layer execution of {graph.name} needs {program.arena_bytes:,} B, more than "
                            f"--sram {sram:,}; allow patch-based inference with --patch auto")
        patch = "auto"
    if patch == "auto":
        result = search(graph, scratch, sram=sram, max_overhead=AUTO_MAX_OVERHEAD)
        return _annotate(result.program, graph, base_macs)
    program = plan_patched(graph, parse_stages(patch, graph), scratch)
    if sram is not None and program.arena_bytes > sram:
        raise MCUCError(f"--patch {patch} needs {program.arena_bytes:,} B, more than --sram {sram:,}; "
                        f"try --patch auto or another grid")
    return _annotate(program, graph, base_macs)
