"""`mcuc inspect`: what a model is made of, op by op."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from mcuc.ir.graph import Graph
from mcuc.ir.ops import op_def
from mcuc.ir.program import Program
from mcuc.model import load_with_options
from mcuc.passes.report import live_bytes, memory_rows, memory_table
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule


@dataclass(frozen=True)
class OpRow:
    index: int
    kind: str
    inputs: list[list[int]]
    outputs: list[list[int]]
    macs: int
    weight_bytes: int
    activation_bytes: int  # the op's activation inputs and outputs, live while it runs


def op_rows(graph: Graph) -> list[OpRow]:
    rows = []
    for i, op in enumerate(graph.ops):
        acts = {t: None for t in op.activation_inputs} | dict.fromkeys(op.outputs)
        rows.append(OpRow(
            index=i,
            kind=op.kind,
            inputs=[list(t.shape) for t in op.inputs if t is not None and not t.is_constant],
            outputs=[list(t.shape) for t in op.outputs],
            macs=op_def(op.kind).macs(op),
            weight_bytes=sum(t.nbytes for t in op.inputs if t is not None and t.is_constant),
            activation_bytes=sum(t.nbytes for t in acts),
        ))
    return rows


def inspect_graph(graph: Graph) -> dict:
    rows = op_rows(graph)
    return {
        "model": graph.name,
        "inputs": [_tensor_info(t) for t in graph.inputs],
        "outputs": [_tensor_info(t) for t in graph.outputs],
        "ops": [asdict(r) for r in rows],
        "macs": sum(r.macs for r in rows),
        "weight_bytes": sum(t.nbytes for t in graph.constants),
        "max_op_activation_bytes": max((r.activation_bytes for r in rows), default=0),
    }


def inspect_model(path: str, options: CompileOptions) -> tuple[dict, Program]:
    """The model's ops as read, plus the memory plan mcuc makes for `options`:
    bytes live per step, where every output goes, the arena, the peak and the bound."""
    model = load_with_options(path, options)
    report = inspect_graph(model.graph)
    program = schedule(model.graph, options, cortexm_scratch(options.target, options.optimize))
    live = live_bytes(program)
    report["memory"] = {
        "target": options.target,
        "io": options.io or "as the model",
        "arena_bytes": program.arena_bytes,
        "live_bound_bytes": program.live_bound_bytes,
        "peak_step": live.index(max(live)) if live else 0,
        "steps": memory_rows(program),
    }
    return report, program


def _tensor_info(t) -> dict:
    info = {"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
    if t.quant is not None and not t.quant.per_channel:
        info["scale"] = t.quant.scalar_scale
        info["zero_point"] = t.quant.scalar_zero_point
    return info


def format_inspection(report: dict, program: Program | None = None) -> str:
    lines = [f"model {report['model']}"]
    for t in report["inputs"]:
        lines.append(f"  input  {t['name']}: {t['dtype']}{t['shape']}")
    for t in report["outputs"]:
        lines.append(f"  output {t['name']}: {t['dtype']}{t['shape']}")
    header = f"{'#':>4}  {'op':<24} {'input':<22} {'output':<18} {'MACs':>12} {'weights B':>10} {'live B':>9}"
    lines += ["", header, "-" * len(header)]
    for r in report["ops"]:
        shape = lambda s: "x".join(map(str, s))
        ins = ",".join(shape(s) for s in r["inputs"])
        outs = ",".join(shape(s) for s in r["outputs"])
        lines.append(f"{r['index']:>4}  {r['kind']:<24} {ins:<22} {outs:<18} {r['macs']:>12,} "
                     f"{r['weight_bytes']:>10,} {r['activation_bytes']:>9,}")
    lines += ["-" * len(header),
              f"total MACs {report['macs']:,}   weights {report['weight_bytes']:,} B   "
              f"largest op working set {report['max_op_activation_bytes']:,} B"]
    if program is not None:
        m = report["memory"]
        lines += ["", f"memory plan for {m['target']} (--io {m['io']}), in scheduled order:",
                  memory_table(program)]
    return "\n".join(lines)
