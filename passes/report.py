"""Memory reports: bytes live per step, the arena layout, and memory.svg (the arena over
time: x is the step, y the byte offset, one rectangle per buffer, the peak marked)."""
from __future__ import annotations

from dataclasses import asdict
from html import escape

from mcuc.ir.program import Alias, InPlace, Overlap, Program, StepPlacement

_PLACEMENT_NAMES = {InPlace: "in_place", Overlap: "overlap", Alias: "alias"}


def placement_record(placement: StepPlacement) -> dict:
    """A step's placement for report.json: its kind ("fresh", "in_place", "overlap",
    "alias") and its fields (the input index, an in-place shift)."""
    return {"kind": _PLACEMENT_NAMES.get(type(placement), "fresh"), **asdict(placement)}


def live_bytes(program: Program) -> list[int]:
    """Arena bytes in use at each step: the union of the live buffers' byte ranges (an
    in-place pair or an alias counts once). Its maximum is the live-set bound."""
    steps = max(len(program.steps), 1)
    ranges: list[list[tuple[int, int]]] = [[] for _ in range(steps)]
    for b in program.buffers:
        for s in range(b.first, min(b.last, steps - 1) + 1):
            ranges[s].append((b.offset, b.end))
    live = []
    for rs in ranges:
        total, end = 0, 0
        for a, z in sorted(rs):
            a = max(a, end)
            total += max(z - a, 0)
            end = max(end, z)
        live.append(total)
    return live


def memory_rows(program: Program) -> list[dict]:
    """Per step: op, bytes live, placement, the step's own buffers (for report.json /
    inspect)."""
    live = live_bytes(program)
    rows = []
    for i, step in enumerate(program.steps):
        op = step.op
        rows.append({
            "index": i,
            "kind": op.kind,
            "name": op.name,
            "live_bytes": live[i],
            "placement": placement_record(step.placement),
            # offset None: in a caller's buffer (--io-buffers caller), not in the arena
            "outputs": [{"name": t.name, "offset": program.offsets.get(t) if program.in_arena(t) else None,
                         "size": t.nbytes} for t in op.outputs],
            "scratch": [{"name": b.name, "offset": b.offset, "size": b.size} for b in step.scratch],
        })
    return rows


def memory_table(program: Program) -> str:
    """A text table: per step the op, bytes live and where its outputs go."""
    live = live_bytes(program)
    peak = max(live, default=0)
    lines = [f"arena {program.arena_bytes:,} B   live-set bound {program.live_bound_bytes:,} B   "
             f"peak step {live.index(peak) if live else 0}",
             f"{'#':>4}  {'op':<26} {'live B':>9}  {'output @ offset':<30} notes"]
    for row in memory_rows(program):
        outs = ", ".join(f"{o['size']}@{'caller' if o['offset'] is None else o['offset']}" for o in row["outputs"])
        placement = row["placement"]
        notes = "" if placement["kind"] == "fresh" else placement["kind"].replace("_", "-")
        if placement.get("shift"):
            notes += f" {placement['shift']:+d}B"
        if row["scratch"]:
            notes += " scratch " + ", ".join(f"{s['size']}@{s['offset']}" for s in row["scratch"])
        mark = " <- peak" if row["live_bytes"] == peak else ""
        lines.append(f"{row['index']:>4}  {row['kind'][:26]:<26} {row['live_bytes']:>9,}  {outs:<30} {notes}{mark}")
    states = program.graph.states
    if states:  # kept between invocations, apart from the arena (ir/program.py)
        kept = ", ".join(f"{t.name} {t.dtype}{list(t.shape)}" for t in states)
        lines.append(f"state {program.state_bytes:,} B kept between invocations, outside the arena: {kept}")
    return "\n".join(lines)


def _memory_legend(x: float, y: float, palette: list[str], peak_step: int, peak: int) -> list[str]:
    """The key of memory_svg's marks, one row under the title."""
    parts = ['<g class="legend">']
    for i, color in enumerate(palette[:3]):  # a few of the tensor colours
        parts.append(f'<rect x="{x + 5 * i:.1f}" y="{y - 9}" width="10" height="10" fill="{color}" '
                     f'fill-opacity="0.75" stroke="#333" stroke-width="0.3"/>')
    parts.append(f'<text x="{x + 26}" y="{y}">activation tensors (hover: name, size, offset)</text>')
    x2 = x + 330
    parts.append(f'<rect x="{x2}" y="{y - 9}" width="10" height="10" fill="#bbbbbb" fill-opacity="0.75" '
                 f'stroke="#333" stroke-width="0.3"/><text x="{x2 + 16}" y="{y}">kernel scratch</text>')
    x3 = x2 + 120
    parts.append(f'<rect x="{x3}" y="{y - 9}" width="10" height="10" fill="#ff000018" stroke="#d00" '
                 f'stroke-dasharray="4 2"/><text x="{x3 + 16}" y="{y}">peak step {peak_step}: {peak:,} B live</text>')
    parts.append("</g>")
    return parts


def memory_svg(program: Program, width: int = 960, height: int = 540) -> str:
    """The arena over time as an SVG document."""
    margin_left, margin_right, margin_top, margin_bottom = 80, 20, 58, 40
    steps = max(len(program.steps), 1)
    arena = max(program.arena_bytes, 1)
    plot_w = width - margin_left - margin_right
    plot_h = height - margin_top - margin_bottom
    x_of = lambda s: margin_left + plot_w * s / steps
    y_of = lambda off: margin_top + plot_h * (1 - off / arena)
    live = live_bytes(program)
    peak = max(live, default=0)
    peak_step = live.index(peak) if live else 0
    palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<title>{escape(program.graph.name)}: arena {program.arena_bytes} B, live-set bound '
        f'{program.live_bound_bytes} B</title>',
        f'<text x="{margin_left}" y="20" font-size="13">{escape(program.graph.name)}: arena '
        f'{program.arena_bytes:,} B, live-set bound {program.live_bound_bytes:,} B, peak at step {peak_step}</text>',
        f'<rect x="{margin_left}" y="{margin_top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#999"/>',
        *_memory_legend(margin_left, 38, palette, peak_step, peak),
        # The peak step: a band across the whole arena height.
        f'<rect x="{x_of(peak_step):.1f}" y="{margin_top}" width="{max(x_of(peak_step + 1) - x_of(peak_step), 1):.1f}" '
        f'height="{plot_h}" fill="#ff000018" stroke="#d00" stroke-dasharray="4 2"><title>peak: step {peak_step}, '
        f'{peak} B live</title></rect>',
    ]
    for n, b in enumerate(program.buffers):
        if b.size == 0:
            continue
        x0, x1 = x_of(b.first), x_of(b.last + 1)
        y0, y1 = y_of(b.end), y_of(b.offset)
        color = "#bbbbbb" if b.kind == "scratch" else palette[n % len(palette)]
        label = escape(f"{b.name} ({b.kind}): {b.size} B at {b.offset}, steps {b.first}-{b.last}"
                       + (f"; shares storage with {b.group}" if b.group and b.group != b.name else ""))
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 0.5):.1f}" '
                     f'height="{max(y1 - y0, 0.5):.1f}" fill="{color}" fill-opacity="0.75" '
                     f'stroke="#333" stroke-width="0.3"><title>{label}</title></rect>')
    for frac in (0, 0.25, 0.5, 0.75, 1):
        off = int(arena * frac)
        parts.append(f'<text x="{margin_left - 6}" y="{y_of(off) + 4:.1f}" text-anchor="end">{off:,}</text>')
    tick = max(1, steps // 10)
    for s in range(0, steps + 1, tick):
        parts.append(f'<text x="{x_of(s):.1f}" y="{height - margin_bottom + 16}" text-anchor="middle">{s}</text>')
    parts.append(f'<text x="{margin_left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">step (op index)</text>')
    parts.append(f'<text x="14" y="{margin_top + plot_h / 2:.1f}" transform="rotate(-90 14 {margin_top + plot_h / 2:.1f})" '
                 f'text-anchor="middle">arena offset (bytes)</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
