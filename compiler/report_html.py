"""report.html: report.json for a person. The summary, the verification result when this
run verified, the memory map (passes/report.memory_svg, legend included), the trade-off
plot when a patch schedule was searched (plan_cmd.tradeoff_svg), and the per-layer table:
MACs, weight bytes, bytes live, arena offsets of each step's outputs and scratch.

Rendered with jinja2 (templates/report.html.j2) with autoescape on: every string from the
model (tensor and op names) is HTML-escaped; only the two SVG documents, which escape
their own text, are inserted as markup."""
from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from mcuc.ir.graph import Graph
from mcuc.ir.ops import op_def
from mcuc.ir.program import Program
from mcuc.passes.report import live_bytes, memory_svg


def _weight_bytes(op) -> int:
    stage = op.attrs if hasattr(op.attrs, "ops") and hasattr(op.attrs, "patches") else None
    ops = stage.ops if stage is not None else (op,)
    return sum(t.nbytes for inner in ops for t in inner.inputs if t is not None and t.is_constant)


def _placement(record: dict) -> str:
    text = record["kind"].replace("_", "-")
    if record.get("input") is not None and record["kind"] != "fresh":
        text += f" over input {record['input']}"
    if record.get("shift"):
        text += f" {record['shift']:+d} B"
    return text


def layer_rows(program: Program) -> list[dict]:
    """One row per step of the program: what the HTML table shows."""
    from mcuc.passes.report import memory_rows

    live = live_bytes(program)
    peak = max(live, default=0)
    rows = []
    for step, row in zip(program.steps, memory_rows(program)):
        op = step.op
        rows.append({
            "index": row["index"], "kind": op.kind, "name": op.name, "peak": row["live_bytes"] == peak,
            "shapes": ", ".join("x".join(map(str, t.shape)) for t in op.outputs),
            "macs": int(op_def(op.kind).macs(op)), "weights": _weight_bytes(op), "live": row["live_bytes"],
            "outputs": ", ".join(f"{o['size']:,} B @ {o['offset']:,}" if o["offset"] is not None else f"{o['size']:,} B"
                                 for o in row["outputs"]),
            "scratch": ", ".join(f"{s['size']:,} B @ {s['offset']:,}" for s in row["scratch"]),
            "placement": _placement(row["placement"]),
        })
    return rows


def searched_tradeoff_svg(graph: Graph, options, scratch, program: Program) -> str | None:
    """The trade-off plot of the search that chose `program`'s schedule (`--patch auto`, or
    `--sram` that layer by layer misses), run again on the prepared `graph` (the pipeline
    keeps only the schedule it chose); None when no schedule was searched."""
    from mcuc.passes.patch_search import pareto_front, search
    from mcuc.passes.patch_schedule import AUTO_MAX_OVERHEAD
    from mcuc.plan_cmd import tradeoff_svg

    searched = options.patch == "auto" or (options.patch is None and options.sram is not None
                                           and bool(program.notes.get("schedule")))
    if not searched:
        return None
    result = search(graph, scratch, sram=options.sram, max_overhead=AUTO_MAX_OVERHEAD)
    front = [c for c in pareto_front(result.candidates) if c.stages and c.peak < result.baseline.peak]
    return tradeoff_svg(graph.name, result.baseline, result.candidates, front, result.best)


def render(report: dict, program: Program, tradeoff: str | None = None, verification: dict | None = None) -> str:
    """The HTML document of one compilation."""
    import jinja2

    from mcuc.version import read_version

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    rows = layer_rows(program)
    return env.get_template("report.html.j2").render(
        report=report, rows=rows, weight_bytes=sum(r["weights"] for r in rows), version=read_version(),
        memory_svg=Markup(memory_svg(program)), tradeoff_svg=Markup(tradeoff) if tradeoff else None,
        verification=verification)
