"""`mcuc compile A.tflite B.onnx ... -o DIR`: several models into one folder, one C
library (backends/cortexm/bundle.py writes it).

Every model is compiled with the same options (one core, one float ABI, one --io,
--patch, ...); each gets a name, from `names` in order or from its file name made a C
identifier (c_syntax.default_model_name). With `exclusive` (the user's declaration that
the models never run at the same time) they share one arena, the largest of their plans.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from mcuc.ir.errors import MCUCError
from mcuc.model import Model, check_io_option, load_with_options, reloaded
from mcuc.pipeline import CompileOptions, cortexm_scratch, cortexm_target, prepare, schedule
from mcuc.report import program_report

DEFAULT_LIBRARY = "models"  # backends/cortexm/bundle.DEFAULT_LIBRARY, without importing the backend here


def split_names(names: str | Sequence[str] | None, count: int) -> list[str] | None:
    """`--name A,B,...` (or a list) as one name per model, in order; None: from the files."""
    if names is None:
        return None
    parts = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
    if len(parts) != count:
        raise MCUCError(f"--name gives {len(parts)} name{'s' if len(parts) != 1 else ''} for {count} models; "
                        "give one per model, comma-separated, in the order of the models (e.g. --name kws,vww)")
    return parts


def source_label(model: Model, index: int) -> str:
    """How messages name model `index` (0-based): its path as given, else its place and graph name."""
    if model.path is not None:
        return str(model.path)
    from mcuc.ir.tensor import quoted

    return f"model {index + 1} ({quoted(model.graph.name)})"


def load_models(models: Sequence[str | os.PathLike | bytes | Model], options: CompileOptions) -> list[Model]:
    """Each model read under `options` (a loaded Model read again under them), checked
    against --io."""
    loaded = []
    for m in models:
        model = (reloaded(m, options.layout, options.onnx_numerics) if isinstance(m, Model)
                 else load_with_options(m, options))
        check_io_option(model, options.io)
        loaded.append(model)
    return loaded


def compile_bundle(models: Sequence[str | os.PathLike | bytes | Model], out_dir: str | os.PathLike,
                   options: CompileOptions, names: str | Sequence[str] | None = None, exclusive: bool = False,
                   library: str = DEFAULT_LIBRARY, verify_samples: int | None = None,
                   progress: bool = False) -> dict:
    """Write the folder of `models` (paths, bytes or loaded Models) into `out_dir` and
    return its report (report.json: the folder's arena figures and, under `models`, each
    model's report as `mcuc compile` gives it for one). `options.name` must be None: the
    names come from `names` (a comma-separated string or a list, in order) or the files.
    With `verify_samples`, `mcuc verify`'s default check runs on every model too."""
    from mcuc.backends.cortexm.bundle import BundledModel, check_names, write_bundle
    from mcuc.backends.cortexm.c_syntax import default_model_name

    start = time.perf_counter()
    if len(models) < 2:
        raise MCUCError(f"a folder of several models needs two or more models, got {len(models)}")
    if options.name is not None:
        raise MCUCError("with several models, --name takes one name per model, comma-separated")
    if options.memory is not None:
        raise MCUCError("--memory plans one model over several memory regions; compile each model of a "
                        "folder with --memory on its own (mcuc compile MODEL --memory ...)")
    given = split_names(names, len(models))
    loaded = load_models(models, options)
    labels = [source_label(m, i) for i, m in enumerate(loaded)]
    prefixes = given or [default_model_name(m.name) for m in loaded]
    check_names(library, list(zip(prefixes, labels)))  # before the (slow) scheduling
    scratch = cortexm_scratch(options.target, options.optimize)
    from mcuc.bench import progress_bar

    bar = progress_bar(len(loaded) + 1, "compile models", "step") if progress else None
    programs = []
    for model, prefix in zip(loaded, prefixes):
        if bar is not None:
            bar.set_postfix_str(f"scheduling {prefix}", refresh=True)
        programs.append(schedule(model.graph, replace(options, name=prefix), scratch))
        if bar is not None:
            bar.update(1)
    out = Path(out_dir)
    before = written_files(out)
    bundled = [BundledModel(prefix, program, model.layout, label)
               for prefix, program, model, label in zip(prefixes, programs, loaded, labels)]
    report = write_bundle(bundled, out, cortexm_target(options.target, options.optimize, options.float_abi),
                          library=library, arena=options.arena, exclusive=exclusive)
    report["optimize"] = options.optimize
    from mcuc.passes.report import memory_svg
    from mcuc.report_html import render, searched_tradeoff_svg

    for entry, model, program in zip(report["models"], loaded, programs):
        if bar is not None:
            bar.set_postfix_str(f"reports of {entry['name']}", refresh=True)
        # The file's name only: the folder depends on the models and the options, not on
        # where they were read from (the same bytes on every host and run).
        entry["file"] = model.path.name if model.path is not None else None
        entry.update(program_report(program, options.target, model.layout))
        entry["optimize"] = options.optimize
        if model.onnx_numerics is not None:
            entry["onnx_numerics"] = model.onnx_numerics.spec
        model_options = replace(options, name=entry["name"])
        if verify_samples:
            from mcuc.verify import verify

            entry["verification"] = verify(model, None, verify_samples, 0, model_options)
        (out / f"memory_{entry['name']}.svg").write_text(memory_svg(program))
        tradeoff = searched_tradeoff_svg(prepare(model.graph, model_options), model_options, scratch, program)
        html = render(entry, program, tradeoff, entry.get("verification"))
        (out / f"report_{entry['name']}.html").write_text(html, encoding="utf-8", errors="backslashreplace")
        report["files"] += [f"memory_{entry['name']}.svg", f"report_{entry['name']}.html"]
    report["files"] = sorted([*report["files"], "report.json"])
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    remove_stale_files(out, before)
    if bar is not None:
        bar.update(1)
        bar.close()
    return {**report, "compile_seconds": round(time.perf_counter() - start, 3)}


def is_bundle_folder(path: Path) -> bool:
    """Whether `path` holds a folder of several models mcuc wrote (its report.json lists
    the models and its files, and the models' files are there)."""
    try:
        report = json.loads((path / "report.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(report, dict) or not isinstance(report.get("models"), list) or "library" not in report:
        return False
    files = report.get("files")
    return (isinstance(files, list) and all(isinstance(f, str) and "/" not in f and f not in ("", ".", "..")
                                            for f in files)
            and all((path / f).is_file() for f in files if f.startswith("model_")))


SINGLE_PROJECT_FILES = ("model.h", "model.c", "Makefile", "CMakeLists.txt", "README.md", "report.json",
                        "memory.svg", "report.html")
"""What `mcuc compile MODEL` writes besides the runtime headers its report.json lists."""


def written_files(folder: str | os.PathLike) -> set[str]:
    """The files the compile whose report.json is in `folder` wrote there (a folder of
    several models lists them; a one-model folder has fixed names and its runtime files);
    empty when `folder` holds no report of mcuc's."""
    path = Path(folder)
    try:
        report = json.loads((path / "report.json").read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(report, dict):
        return set()
    library = ""
    if is_bundle_folder(path):
        names, library = report["files"], str(report["library"])
    elif "arena_bytes" in report:
        runtime = report.get("runtime_files")
        names = [*SINGLE_PROJECT_FILES, *(runtime if isinstance(runtime, list) else [])]
    else:
        return set()
    # Only names mcuc writes, whatever a report.json says.
    ours = re.compile(r"(model_[A-Za-z0-9_]+\.[ch]|memory_[A-Za-z0-9_]+\.svg|report_[A-Za-z0-9_]+\.html|"
                      r"mcuc_[A-Za-z0-9_]+\.[ch]" + (f"|{re.escape(library)}\\.[ch]" if library else "") + ")")
    return {n for n in names if isinstance(n, str) and (n in SINGLE_PROJECT_FILES or ours.fullmatch(n))}


def remove_stale_files(folder: str | os.PathLike, before: set[str]) -> None:
    """Delete the files an earlier compile wrote into `folder` (`before`, its
    written_files) that the compile just done did not: a model renamed or dropped leaves
    no model_<old>.c behind for a build that globs *.c."""
    path = Path(folder)
    for name in sorted(before - written_files(path)):
        stale = path / name
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()


def summary(report: dict, folder: str) -> str:
    """`mcuc compile`'s line for a folder of several models."""
    models = ", ".join(f"{m['name']} {m['arena_bytes']:,} B" for m in report["models"])
    if report["exclusive"]:
        arena = (f"one shared arena {report['shared_arena_bytes']:,} B (their sum would be "
                 f"{report['sum_of_arenas_bytes']:,} B)")
    else:
        arena = f"arenas {report['sum_of_arenas_bytes']:,} B together"
    return (f"wrote {folder}: {len(report['models'])} models ({models}), {arena}, "
            f"{report['macs']:,} MACs (library {report['library']}, README.md)")
