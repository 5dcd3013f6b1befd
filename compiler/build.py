"""`mcuc compile`: a model file in, a directory of C for a firmware project out."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mcuc.ir.errors import MCUCError
from mcuc.model import Model, load_with_options, reloaded
from mcuc.pipeline import CompileOptions, cortexm_scratch, cortexm_target, prepare, schedule
from mcuc.report import program_report


# Files whose presence marks a folder as one `mcuc compile` wrote (it may write there again).
PROJECT_MARKERS = ("report.json", "model.h", "model.c")


def check_output_folder(path: str | os.PathLike, force: bool = False) -> None:
    """`mcuc compile` (and the API's write) write into a folder that does not exist, is
    empty, or holds a project mcuc wrote before (its model.h, model.c and report.json);
    any other folder needs `force`, so the user's own files are not overwritten without a
    word. A folder of several models mcuc wrote (mcuc.bundle.is_bundle_folder) is its own too."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise MCUCError(f"--output {str(path)!r} is a file, not a folder")
    if force or not p.is_dir() or not any(p.iterdir()):
        return
    report = p / "report.json"
    ours = all((p / name).is_file() for name in PROJECT_MARKERS)
    if ours:
        try:
            ours = "arena_bytes" in json.loads(report.read_text())
        except (OSError, ValueError):
            ours = False
    if not ours:
        from mcuc.bundle import is_bundle_folder

        ours = is_bundle_folder(p)  # a folder of several models
    if not ours:
        raise MCUCError(f"--output {str(path)!r} is a folder that mcuc did not write and it is not empty; "
                        "choose another folder, or pass --force to write into it (files of the same names "
                        "are replaced)")


def compile_to_directory(model: str | os.PathLike | bytes | Model, out_dir: str | os.PathLike,
                         options: CompileOptions, verify_samples: int | None = None, progress: bool = False) -> dict:
    """Write the generated project, report.json, memory.svg and report.html into `out_dir`;
    `model` is a path, the bytes of a model, or a loaded Model (the API's). With
    `verify_samples`, `mcuc verify`'s default check on that many samples runs too and its
    report is report.json's `verification` (and a section of report.html)."""
    from mcuc.backends.cortexm import write_project
    from mcuc.backends.cortexm.c_syntax import default_model_name
    from mcuc.passes.report import memory_svg

    start = time.perf_counter()
    out_dir = Path(out_dir)
    model = (reloaded(model, options.layout, options.onnx_numerics) if isinstance(model, Model)
             else load_with_options(model, options))
    scratch = cortexm_scratch(options.target, options.optimize)
    # On a terminal (`progress`): a bar over the three phases, the first naming the patch search.
    from mcuc.bench import progress_bar

    bar = progress_bar(3, f"compile {model.name}", "phase") if progress else None
    searching = options.patch == "auto" or options.sram is not None
    _phase(bar, "scheduling (searching patch schedules)" if searching else "scheduling")
    program = schedule(model.graph, options, scratch)
    _phase(bar, "writing the C project", 1)
    from mcuc.bundle import remove_stale_files, written_files

    before = written_files(out_dir)  # a folder of several models compiled here before
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MCUCError(f"cannot create output directory {str(out_dir)!r}: {e}") from None
    write_project(program, out_dir, cortexm_target(options.target, options.optimize, options.float_abi),
                  name=options.name or default_model_name(model.name), layout=model.layout, arena=options.arena)
    # The backend's report (per-op kernels, runtime files) extended by the plan's figures.
    backend_report_path = out_dir / "report.json"
    report = json.loads(backend_report_path.read_text()) if backend_report_path.is_file() else {}
    report.update(program_report(program, options.target, model.layout))
    report["optimize"] = options.optimize
    if model.onnx_numerics is not None:
        report["onnx_numerics"] = model.onnx_numerics.spec
    # The folder depends on the model and the options only (same bytes on every host and
    # run); how long this run took is told to the caller, not written there.
    if verify_samples:
        from mcuc.verify import verify

        report["verification"] = verify(model, None, verify_samples, 0, options, progress=progress)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "memory.svg").write_text(memory_svg(program))
    from mcuc.report_html import render, searched_tradeoff_svg

    _phase(bar, "report.html" + (" (the search again, for its plot)" if searching else ""), 1)
    tradeoff = searched_tradeoff_svg(prepare(model.graph, options), options, scratch, program)
    html = render(report, program, tradeoff, report.get("verification"))
    (out_dir / "report.html").write_text(html, encoding="utf-8", errors="backslashreplace")  # as its <meta> says
    remove_stale_files(out_dir, before)
    if bar is not None:
        bar.close()
    return {**report, "compile_seconds": round(time.perf_counter() - start, 3)}


def _phase(bar, text: str, done: int = 0) -> None:
    """Advance a progress bar (None: no bar) by `done` phases and name the next one."""
    if bar is not None:
        bar.update(done)
        bar.set_postfix_str(text, refresh=True)
