"""`mcuc compile`: a model file in, a directory of C for a firmware project out."""
from __future__ import annotations

import json
import time
from pathlib import Path

from mcuc.ir.errors import MCUCError
from mcuc.model import load_with_options
from mcuc.pipeline import CompileOptions, cortexm_scratch, cortexm_target, schedule
from mcuc.report import program_report


def compile_to_directory(model_path: str, out_dir: Path, options: CompileOptions) -> dict:
    """Write the generated project, report.json and memory.svg into `out_dir`."""
    from mcuc.backends.cortexm import write_project
    from mcuc.passes.report import memory_svg

    start = time.perf_counter()
    model = load_with_options(model_path, options)
    program = schedule(model.graph, options, cortexm_scratch(options.target, options.optimize))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MCUCError(f"cannot create output directory {str(out_dir)!r}: {e}") from None
    write_project(program, out_dir, cortexm_target(options.target, options.optimize), name=model.graph.name,
                  layout=model.layout)
    # The backend's report (per-op kernels, runtime files) extended by the plan's figures.
    backend_report_path = out_dir / "report.json"
    report = json.loads(backend_report_path.read_text()) if backend_report_path.is_file() else {}
    report.update(program_report(program, options.target, model.layout))
    report["optimize"] = options.optimize
    if model.onnx_numerics is not None:
        report["onnx_numerics"] = model.onnx_numerics.spec
    # The folder depends on the model and the options only (same bytes on every host and
    # run); how long this run took is told to the caller, not written there.
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "memory.svg").write_text(memory_svg(program))
    return {**report, "compile_seconds": round(time.perf_counter() - start, 3)}
