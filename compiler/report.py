"""report.json: what a compilation produced, in figures a user compares."""
from __future__ import annotations

from mcuc.ir.ops import op_def
from mcuc.ir.program import Program
from mcuc.passes.regions import access_cost, buffer_regions
from mcuc.passes.report import memory_rows


def program_report(program: Program, target: str, layout: str | None = None) -> dict:
    """`layout` ("nchw" | "nhwc"), when given, is stated beside each 4-D input and output."""
    ops = [step.op for step in program.steps]
    return {
        "model": program.graph.name,
        "target": target,
        "arena_bytes": program.arena_bytes,
        "live_bound_bytes": program.live_bound_bytes,
        "io_buffers": program.graph.io_buffers,
        "macs": sum(op_def(op.kind).macs(op) for op in ops),
        # the model's MACs that pruning removed (channels no reader uses): not in "macs"
        "macs_skipped": program.notes.get("macs_skipped", 0),
        "ops": len(ops),
        "mac_overhead": program.notes.get("mac_overhead", 0.0),
        "schedule": program.notes.get("schedule", []),
        "inputs": [_io(program, t, layout) for t in program.graph.inputs],
        "outputs": [_io(program, t, layout) for t in program.graph.outputs],
        "buffers": [{"name": b.name, "offset": b.offset, "size": b.size, "first": b.first, "last": b.last}
                    for b in program.buffers],
        "memory": memory_rows(program),  # per op: bytes live, placement, output offsets, scratch
        **(regions_report(program) if program.regions else {}),
        # kept between invocations, outside the arena (SVDF, LSTM: ir/program.py's state area)
        **({"state_bytes": program.state_bytes, "states": program.state_records()} if program.graph.states else {}),
    }


def regions_report(program: Program) -> dict:
    """--memory: each region's address range, bytes, capacity, cost and buffers, and the
    estimated access cost against every buffer in the costliest region."""
    region_of = buffer_regions(program)
    regions = []
    for k, r in enumerate(program.regions):
        buffers = [b.name for b in program.buffers if region_of[b.name] == k]
        regions.append({"name": r.name, "address_base": r.base, "bytes": r.size, "capacity": r.capacity,
                        "cost": r.cost, "buffers": buffers,
                        **({"weights_bytes": r.weights_bytes} if r.weights_bytes is not None else {})})
    return {"regions": regions, "one_arena_bytes": program.notes.get("one_arena_bytes"),
            "access_cost": access_cost(program)}


def format_regions(report: dict) -> str:
    """The region placement of a report, as `mcuc compile` prints it."""
    lines = [f"{'region':<12} {'bytes':>10} {'capacity':>10} {'cost':>6}  buffers"]
    for r in report["regions"]:
        weights = f" + weights {r['weights_bytes']:,} B" if "weights_bytes" in r else ""
        lines.append(f"{r['name']:<12} {r['bytes']:>10,} {r['capacity']:>10,} {r['cost']:>6g}  "
                     f"{len(r['buffers'])}{weights}")
    cost = report["access_cost"]
    gain = cost["slowest"] / cost["planned"] if cost["planned"] else 1.0
    lines.append(f"estimated access cost {cost['planned']:,.0f} (every buffer in the costliest region: "
                 f"{cost['slowest']:,.0f}, {gain:.2f}x); one arena would be {report['one_arena_bytes']:,} B")
    return "\n".join(lines)


def _io(program: Program, t, layout: str | None = None) -> dict:
    # offset None: the tensor lives in the caller's buffer (--io-buffers caller)
    info = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
            "offset": program.offsets.get(t) if t in program.offsets and program.in_arena(t) else None}
    if layout and len(t.shape) == 4:
        info["layout"] = layout.upper()
    if t.quant is not None:
        info["scale"] = t.quant.scalar_scale
        info["zero_point"] = t.quant.scalar_zero_point
    return info
