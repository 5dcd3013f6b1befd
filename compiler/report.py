"""report.json: what a compilation produced, in figures a user compares."""
from __future__ import annotations

from mcuc.ir.ops import op_def
from mcuc.ir.program import Program
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
        "ops": len(ops),
        "mac_overhead": program.notes.get("mac_overhead", 0.0),
        "schedule": program.notes.get("schedule", []),
        "inputs": [_io(program, t, layout) for t in program.graph.inputs],
        "outputs": [_io(program, t, layout) for t in program.graph.outputs],
        "buffers": [{"name": b.name, "offset": b.offset, "size": b.size, "first": b.first, "last": b.last}
                    for b in program.buffers],
        "memory": memory_rows(program),  # per op: bytes live, placement, output offsets, scratch
    }


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
