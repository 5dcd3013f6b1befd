"""`mcuc plan`: the memory / MAC trade-off of patch-based schedules for one model.

Prints the Pareto front of the schedule search (split op, grid, peak arena bytes, MACs,
overhead), the layer-by-layer point and the schedule `--patch auto` picks, and writes an
SVG plot of peak memory against MAC overhead (every candidate as a dot, the front as a
line, layer by layer and the choice marked). With points to compare with (`--compare
CSV`: published figures, another tool's), each point gets the schedule of fewest MACs
whose arena is at most its bytes (the `--sram` search), side by side in the table and
marked on the plot.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from html import escape
from pathlib import Path

from mcuc.ir import MCUCError
from mcuc.ir.graph import Graph
from mcuc.passes.patch import cache_suffix
from mcuc.passes.patch_search import Candidate, pareto_front, plan_candidate, search, spec_start
from mcuc.passes.patch_schedule import AUTO_MAX_OVERHEAD
from mcuc.pipeline import CompileOptions, cortexm_scratch, prepare

FRONT_PLANNED = 30  # front entries planned exactly (the rest keep their estimate)
PLOT_MAX_OVERHEAD = 0.5  # the plot leaves out schedules beyond +50% MACs


@dataclass(frozen=True)
class Point:
    """A point to compare with: a peak in bytes reached at `mac_factor` times the MACs of
    layer by layer."""

    label: str
    arena_bytes: int
    mac_factor: float


def load_points(path: Path) -> list[Point]:
    """Points from a CSV file: a header row `label,arena_bytes,mac_factor`, then one point
    per row; lines starting with # are comments (where the figures come from)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MCUCError(f"--compare: cannot read {str(path)!r}: {e}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(line for _, line in lines))
    if not rows or [c.strip() for c in rows[0]] != ["label", "arena_bytes", "mac_factor"]:
        raise MCUCError(f"--compare: {str(path)!r} must start with the header label,arena_bytes,mac_factor")
    points = []
    for (n, _), row in zip(lines[1:], rows[1:]):
        try:
            label, arena, factor = (c.strip() for c in row)
            point = Point(label, int(arena), float(factor))
        except ValueError:
            raise MCUCError(f"--compare: {str(path)!r} line {n}: expected label,arena_bytes,mac_factor "
                            f"(an integer and a number), got {','.join(row)[:80]!r}") from None
        if point.arena_bytes <= 0 or not point.mac_factor >= 1.0:
            raise MCUCError(f"--compare: {str(path)!r} line {n}: arena_bytes must be positive and "
                            f"mac_factor at least 1 (layer by layer's MACs)")
        points.append(point)
    return points


def _compare(graph: Graph, scratch, points: list[Point]) -> list[dict]:
    """Per point, the schedule of fewest MACs that fits its bytes (or the smallest any
    schedule reaches), and whether it meets the point (bytes and MAC factor)."""
    rows = []
    for p in points:
        row = {"label": p.label, "arena_bytes": p.arena_bytes, "mac_factor": p.mac_factor}
        try:
            found = search(graph, scratch, sram=p.arena_bytes, max_overhead=AUTO_MAX_OVERHEAD).best
            row.update(patch=found.describe(), peak_bytes=found.peak, mcuc_mac_factor=round(1 + found.overhead, 4),
                       met=found.peak <= p.arena_bytes and 1 + found.overhead <= p.mac_factor + 1e-9)
        except MCUCError as e:
            row.update(patch=None, peak_bytes=None, mcuc_mac_factor=None, met=False, note=str(e))
        rows.append(row)
    return rows


def _row(graph: Graph, c: Candidate, role: str = "") -> dict:
    # (the first stage as the schedule has it: the search may have re-gridded the stage
    # it started from)
    first = c.stages[0] if c.stages else None
    op = graph.ops[first.end] if first is not None else None
    return {
        "split": first.end if op is not None else None,
        "split_op": op.label if op is not None else None,
        "split_kind": op.kind if op is not None else None,
        "split_name": op.name if op is not None else None,
        "start": spec_start(graph, first) if op is not None else None,
        "grid": list(first.grid) if op is not None else None,
        "patch": c.describe(),
        "stages": [str(spec) for spec in c.stages],
        "cached": c.cached,
        "first_cache": cache_suffix(first.cache) if first is not None else "",
        "peak_bytes": c.peak,
        "exact": c.arena_bytes is not None,
        "macs": c.macs,
        "mac_overhead": round(c.overhead, 6),
        "role": role,
    }


def _measure(graph: Graph, rows: list[dict], candidates: list[Candidate], scratch, options: CompileOptions,
             base_macs: int) -> None:
    """Each row's schedule run on the emulated core (one inference of seeded random
    inputs): its instructions and estimated cycles (None on cores without a timing
    model), and both relative to layer by layer (the first row)."""
    import numpy as np

    from mcuc.backends.cortexm import run_cortexm
    from mcuc.pipeline import cortexm_target
    from mcuc.samples import random_inputs

    target = cortexm_target(options.target, options.optimize, options.float_abi)
    inputs = None
    for row, c in zip(rows, candidates):
        program = plan_candidate(graph, c, scratch, base_macs)[1]
        inputs = inputs if inputs is not None else random_inputs(program.graph, np.random.default_rng(0))
        result = run_cortexm(program, inputs, target)
        row["instructions"], row["cycles"] = result.instructions, result.cycles
    base = rows[0]
    for row in rows:
        row["instruction_factor"] = round(row["instructions"] / base["instructions"], 4)
        row["cycle_factor"] = round(row["cycles"] / base["cycles"], 4) if base["cycles"] else None


def plan_model(model_path: str, options: CompileOptions, svg_path: Path | None = None,
               progress: bool = False, compare: list[Point] | None = None, cycles: bool = False) -> dict:
    """The trade-off report of one model (and the SVG written to `svg_path`). `progress`:
    a tqdm bar on stderr over the search and the exact plans of the front. `cycles`: each
    schedule of the front also run on the emulated target (instructions, estimated
    cycles), which takes a few seconds per schedule."""
    from mcuc.bench import progress_bar
    from mcuc.model import load_with_options

    graph = prepare(load_with_options(model_path, options).graph, options)
    scratch = cortexm_scratch(options.target, options.optimize) if options.target != "host" else None
    bar = progress_bar(None, f"plan {graph.name}", "step") if progress else None
    if bar is not None:
        bar.set_postfix_str("searching patch schedules", refresh=True)
    chosen = search(graph, scratch, max_overhead=AUTO_MAX_OVERHEAD)
    baseline, candidates = chosen.baseline, chosen.candidates
    front = pareto_front(candidates)
    if bar is not None:
        bar.reset(total=1 + min(len(front), FRONT_PLANNED))
        bar.update(1)
        bar.set_postfix_str(f"{len(candidates)} schedules searched; planning the front exactly", refresh=True)
    planned = []
    for c in front[:FRONT_PLANNED]:
        planned.append(plan_candidate(graph, c, scratch, baseline.macs)[0])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    planned += front[FRONT_PLANNED:]
    # The front below layer by layer (a schedule no smaller than it is never worth it).
    planned = [c for c in pareto_front([*planned, chosen.best])
               if c.stages and c.peak < baseline.arena_bytes]
    rows = [_row(graph, baseline, "layer-by-layer" + ("" if chosen.best.stages else ", chosen"))]
    rows += [_row(graph, c, "chosen" if c.stages == chosen.best.stages else "") for c in planned]
    if cycles:
        _measure(graph, rows, [baseline, *planned], scratch, options, baseline.macs)
    report = {"model": graph.name, "io": options.io, "target": options.target,
              "max_overhead": AUTO_MAX_OVERHEAD, "candidates": len(candidates),
              "layer_by_layer_bytes": baseline.arena_bytes, "chosen": _row(graph, chosen.best, "chosen"),
              "front": rows}
    if compare:
        report["compare"] = _compare(graph, scratch, compare)
    if svg_path is not None:
        svg_path.write_text(tradeoff_svg(graph.name, baseline, candidates, planned, chosen.best,
                                         report.get("compare", [])))
        report["svg"] = str(svg_path)
    return report


OP_COLUMN_MAX = 40  # the op column's widest; longer names are shortened by fit()
ELLIPSIS = "..."
_BREAKS = " _./:-("


def fit(text: str, width: int) -> str:
    """`text` in at most `width` characters: whole if it fits, else cut after a word
    boundary (one of _BREAKS) when one is in the second half of the room, else at the
    width, and always marked with ELLIPSIS."""
    if len(text) <= width:
        return text
    room = width - len(ELLIPSIS)
    cut = max(text.rfind(c, 0, room + 1) for c in _BREAKS)
    if cut >= room // 2:
        keep = text[:cut + 1] if text[cut] in "(" else text[:cut]  # keep an opening bracket, drop a separator
        return keep.rstrip(" _./:-") + ELLIPSIS if keep.rstrip(" _./:-") else text[:room] + ELLIPSIS
    return text[:room] + ELLIPSIS


def short_name(name: str) -> str:
    """An op's name for a table: TFLite's fused names join every source op's name with ';',
    and the first is the op's own; the rest is marked ';...'."""
    first, _, rest = name.partition(";")
    return first + (";" + ELLIPSIS if rest else "")


def format_plan(report: dict) -> str:
    rows = report["front"]
    measured = bool(rows) and "instructions" in rows[0]
    kinds, names = [], []
    for r in rows:
        kind, name = r.get("split_kind"), r.get("split_name")
        if kind is None and r["split_op"]:  # a report without the split columns: KIND(name)
            kind, _, name = r["split_op"].partition("(")
            name = name[:-1] if name.endswith(")") else name
        kinds.append(kind or "layer by layer")
        names.append(short_name(name or ""))
    kind_width = max(map(len, kinds), default=2)
    width = max(4, min(OP_COLUMN_MAX, max(map(len, names), default=2)))
    lines = [f"{report['model']}: {report['candidates']} patch schedules searched; layer by layer "
             f"{report['layer_by_layer_bytes']:,} B; --patch auto (<= {report['max_overhead']:.0%} extra MACs) "
             f"picks {report['chosen']['patch']}: {report['chosen']['peak_bytes']:,} B, "
             f"{report['chosen']['mac_overhead']:.1%} extra MACs",
             f"{'split':>5}  {'op':<{kind_width}} {'name':<{width}} {'grid':>11} {'peak B':>10} {'MACs':>12} "
             f"{'overhead':>9}" + (f" {'instructions':>13} {'x':>6} {'est. cycles':>13} {'x':>6}" if measured else "")
             + "  note"]
    for r, kind, name in zip(rows, kinds, names):
        split = "-" if r["split"] is None else str(r["split"])
        # the first stage's halo choice (+cache, +cache=A/B; rows from older reports: +cache when any stage caches)
        cache = r.get("first_cache", "+cache" if r.get("cached") else "")
        grid = "-" if r["grid"] is None else f"{r['grid'][0]}x{r['grid'][1]}{cache}"
        peak = f"{r['peak_bytes']:,}" + ("" if r["exact"] else "~")
        # the first stage has the columns; later stages (the search adds them at the peak) go in the note
        later = r.get("stages", [])[1:]
        note = " ".join(x for x in (r["role"], "then " + ", ".join(later) if later else "") if x)
        speed = ""
        if measured:
            cyc = "-" if r["cycles"] is None else f"{r['cycles']:,}"
            cyc_x = "-" if r["cycle_factor"] is None else f"{r['cycle_factor']:.3f}"
            speed = f" {r['instructions']:>13,} {r['instruction_factor']:>6.3f} {cyc:>13} {cyc_x:>6}"
        lines.append(f"{split:>5}  {kind:<{kind_width}} {fit(name, width):<{width}} {grid:>11} {peak:>10} "
                     f"{r['macs']:>12,} {r['mac_overhead']:>8.1%}{speed}  {note}".rstrip())
    lines.append("peak B: arena bytes planned exactly; ~ marks an estimate (live-set bound)"
                 + ("; x: relative to layer by layer, on the emulated core" if measured else ""))
    if report.get("compare"):
        lines.append("compared (the fewest MACs whose arena fits each point):")
        lines.append(f"  {'point':<24} {'arena B':>9} {'x MACs':>7}  {'mcuc B':>9} {'x MACs':>7}  met  schedule")
        for r in report["compare"]:
            mine = (f"{r['peak_bytes']:>9,} {r['mcuc_mac_factor']:>7.3f}" if r["patch"] is not None
                    else f"{'-':>9} {'-':>7}")
            what = r["patch"] if r["patch"] is not None else \
                r["note"].partition(": ")[2].removesuffix("; raise --sram to at least that")
            lines.append(f"  {fit(r['label'], 24):<24} {r['arena_bytes']:>9,} {r['mac_factor']:>7.3f}  {mine}  "
                         f"{'yes' if r['met'] else 'no':<4} {what}")
    if "svg" in report:
        lines.append(f"plot: {report['svg']}")
    return "\n".join(lines)


def tradeoff_svg(name: str, baseline: Candidate, candidates: list[Candidate], front: list[Candidate],
                 chosen: Candidate, compare: list[dict] = (), width: int = 900, height: int = 540) -> str:
    """Peak memory (y) against MAC overhead (x) as an SVG document; `compare`: the rows of
    _compare, each point a diamond and mcuc's schedule for it a ring."""
    left, right, top, bottom = 90, 30, 40, 50
    searched = len(candidates)
    candidates = [c for c in candidates if c.overhead <= PLOT_MAX_OVERHEAD]
    front = [c for c in front if c.overhead <= PLOT_MAX_OVERHEAD]
    points = [baseline, *candidates, *front, chosen]
    compare = [r for r in compare if r["mac_factor"] - 1 <= PLOT_MAX_OVERHEAD]
    mine = [r for r in compare if r["patch"] is not None and r["mcuc_mac_factor"] - 1 <= PLOT_MAX_OVERHEAD]
    max_x = max(max(c.overhead for c in points), *(r["mac_factor"] - 1 for r in compare), 0.01)
    max_y = max(c.peak for c in points)
    pw, ph = width - left - right, height - top - bottom
    x_of = lambda v: left + pw * v / max_x
    y_of = lambda v: top + ph * (1 - v / max_y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="22" font-size="13">{escape(name)}: peak memory vs MAC overhead: '
             f'{searched} patch schedules searched, the {len(candidates)} up to +{PLOT_MAX_OVERHEAD:.0%} '
             f'MACs shown</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>']
    for c in candidates:
        parts.append(f'<circle cx="{x_of(c.overhead):.1f}" cy="{y_of(c.peak):.1f}" r="1.6" fill="#9ab">'
                     f'<title>{escape(c.describe())}: ~{c.peak} B, {c.overhead:.1%}</title></circle>')
    line = " ".join(f"{x_of(c.overhead):.1f},{y_of(c.peak):.1f}" for c in sorted(front, key=lambda c: c.overhead))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#e15759" stroke-width="1.5"/>')
    for c in front:
        parts.append(f'<circle cx="{x_of(c.overhead):.1f}" cy="{y_of(c.peak):.1f}" r="3" fill="#e15759">'
                     f'<title>{escape(c.describe())}: {c.peak} B, {c.overhead:.1%}</title></circle>')
    for r in compare:
        x, y = x_of(r["mac_factor"] - 1), y_of(r["arena_bytes"])
        parts.append(f'<path d="M{x:.1f},{y - 6:.1f} L{x + 6:.1f},{y:.1f} L{x:.1f},{y + 6:.1f} L{x - 6:.1f},{y:.1f} Z" '
                     f'fill="#f28e2b"><title>{escape(r["label"])}: {r["arena_bytes"]:,} B at '
                     f'{r["mac_factor"]:.3f}x MACs</title></path>'
                     f'<text x="{x + 8:.1f}" y="{y + 4:.1f}" fill="#b35806">{escape(r["label"])}</text>')
    for r in mine:
        x, y = x_of(r["mcuc_mac_factor"] - 1), y_of(r["peak_bytes"])
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="none" stroke="#59a14f" stroke-width="2">'
                     f'<title>mcuc for {escape(r["label"])}: {escape(r["patch"])}, {r["peak_bytes"]:,} B at '
                     f'{r["mcuc_mac_factor"]:.3f}x MACs</title></circle>')
    legend = [("#9ab", "schedule searched (estimate)"), ("#e15759", "Pareto front")]
    if compare:
        legend += [("#f28e2b", "point compared with"), ("#59a14f", "mcuc's fewest MACs within its bytes (ring)")]
    for i, (color, text) in enumerate(legend):
        y = top + 14 + 14 * i
        parts.append(f'<rect x="{left + pw - 250}" y="{y - 8}" width="9" height="9" fill="{color}"/>'
                     f'<text x="{left + pw - 236}" y="{y}">{escape(text)}</text>')
    marks = ((baseline, "#4e79a7", "layer by layer"), (chosen, "#59a14f", f"chosen {chosen.describe()}"))
    for c, color, label in marks:
        x, y = x_of(c.overhead), y_of(c.peak)
        parts.append(f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 8:.1f}" y="{y - 6:.1f}">{escape(label)}: {c.peak:,} B</text>')
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y_tick, x_tick = max_y * frac, max_x * frac
        parts.append(f'<text x="{left - 6}" y="{y_of(y_tick) + 4:.1f}" text-anchor="end">{int(y_tick):,}</text>')
        parts.append(f'<text x="{x_of(x_tick):.1f}" y="{top + ph + 16}" text-anchor="middle">{x_tick:.0%}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 10}" text-anchor="middle">'
                 f'extra MACs over layer by layer</text>')
    parts.append(f'<text x="16" y="{top + ph / 2:.1f}" transform="rotate(-90 16 {top + ph / 2:.1f})" '
                 f'text-anchor="middle">peak arena bytes</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
