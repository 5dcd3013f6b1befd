"""A folder of several models (issue 15 item 4): one C library a firmware links, with
one header and one source per model.

    model_<name>.h, model_<name>.c   each model, as project.write_project writes model.h
                                     and model.c (its API prefixed by <name>)
    <library>.h                      includes every model's header; with `exclusive`,
                                     the shared arena's size and alignment, checked by
                                     the preprocessor against every model's plan
    <library>.c                      with `exclusive` and a static arena: the arena
    mcuc_*.h                         the runtime headers the models use, once
    Makefile, CMakeLists.txt         build lib<library>.a / the CMake target <library>
    README.md                        the models, the build, the shared arena

`exclusive` is the user's declaration that the models never run at the same time: then
every model plans from offset 0 of one arena (its size the largest plan, its alignment
the largest), a static array in <library>.c (`<library>_arena`, section
`<LIBRARY>_ARENA_SECTION`) or, with arena "caller", the buffer each `<name>_invoke(arena)`
takes. A model whose arena holds something from one invocation to the next must not
share it (another model's run would overwrite it): `persistent_state` names why, and
write_bundle refuses such a model. A model's state tensors (ir.ops.Trait.STATEFUL ops:
SVDF, UNIDIRECTIONAL_SEQUENCE_LSTM) live in a state array of its own, outside the arena
(ir/program.py), so such a model shares the arena like any other and keeps its state.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mcuc import runtime_c
from mcuc.ir.errors import MCUCError
from mcuc.ir.program import Program

from .c_syntax import c_comment, check_model_name
from .project import ARENA_ALIGN, build_context, model_context, template_environment
from .target import Target

DEFAULT_LIBRARY = "models"

# The kinds of arena buffer that live during one invocation only (ir.program.Buffer.kind).
_TRANSIENT_BUFFERS = ("tensor", "scratch")


@dataclass(frozen=True, eq=False)
class BundledModel:
    """One model of a folder: its C prefix, its scheduled program, the layout of its 4-D
    edges (None: as the model) and where it came from (a file name, for messages)."""

    name: str
    program: Program
    layout: str | None = None
    source: str = ""

    @property
    def stem(self) -> str:
        return model_stem(self.name)


def model_stem(name: str) -> str:
    """The file name (without .c/.h) of model `name` in a folder of several models."""
    return f"model_{name}"


def check_names(library: str, models: list[tuple[str, str]]) -> None:
    """MCUCError unless every (name, source) of `models` and the folder's `library` name
    can live in one folder and one image: each a valid prefix (c_syntax.check_model_name),
    no two equal once upper-cased (their <NAME>_* macros would be one; on a case-blind
    file system model_<name>.c would be one file), and no model's header the library's."""
    try:
        check_model_name(library)
    except MCUCError as e:
        raise MCUCError(f"the library name {library!r} cannot prefix the folder's C names ({e}); "
                        "choose another --library") from None
    seen: dict[str, tuple[str, str]] = {}
    for name, source in models:
        check_model_name(name)
        key = name.upper()
        if key in seen:
            other_name, other_source = seen[key]
            raise MCUCError(f"the models {other_source} and {source} would both be named "
                            f"{other_name!r}{'' if other_name == name else f' / {name!r}'} in the generated C "
                            f"({name}_invoke, {key}_* macros, {model_stem(name)}.c); give each its own name "
                            "with --name A,B,... (in the order of the models)")
        seen[key] = (name, source)
        if key == library.upper():
            raise MCUCError(f"the model {source} would be named {name!r}, which is the folder's library name "
                            f"({library}.h, {library.upper()}_* macros); choose another --name or --library")
        if model_stem(name).upper() == library.upper():
            raise MCUCError(f"the library name {library!r} is the file name of the model {source}'s header "
                            f"({model_stem(name)}.h); choose another --library")


def persistent_state(program: Program) -> list[str]:
    """Why `program` keeps something in its arena from one invocation to the next: arena
    buffers of a kind other than one invocation's tensors and scratch, or a state tensor
    with an arena address. Empty: nothing (state tensors in the state area are the model's
    own)."""
    reasons = [f"state tensor {c_comment(t.name, 60)} in the arena" for t in program.graph.states
               if not program.in_state(program.offsets[t])]
    for buffer in program.buffers:
        if buffer.kind not in _TRANSIENT_BUFFERS:
            reasons.append(f"arena buffer {c_comment(buffer.name, 60)} of kind {buffer.kind!r}, "
                           "not one invocation's tensor or scratch")
    return reasons


def shared_arena_bytes(programs: list[Program]) -> int:
    """Bytes of the arena models that never run at the same time share: the largest plan
    (every model's offsets start at 0)."""
    return max(p.arena_bytes for p in programs)


def write_bundle(models: list[BundledModel], out_dir: Path | str, target: Target, library: str = DEFAULT_LIBRARY,
                 arena: str = "static", exclusive: bool = False) -> dict:
    """Write the folder of `models` (see the module docstring) into `out_dir`; return its
    report: per model write_project's report.json (with its `name` and files), and the
    folder's figures (`arena_bytes`: the arena memory the folder needs, the shared arena
    with `exclusive`, else the sum of the models' arenas)."""
    if arena not in ("static", "caller"):
        raise MCUCError(f"unknown arena mode {arena!r}; choose static or caller")
    if len(models) < 2:
        raise MCUCError(f"a folder of several models needs two or more, got {len(models)}")
    check_names(library, [(m.name, m.source) for m in models])
    if exclusive:
        for m in models:
            reasons = persistent_state(m.program)
            if reasons:
                raise MCUCError(f"the model {m.source} keeps state between invocations ({'; '.join(reasons[:3])}{'; ...' if len(reasons) > 3 else ''}), "
                                "so it cannot share an arena with other models: the others' runs would overwrite "
                                "its state; compile without --exclusive")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MCUCError(f"cannot create output directory {str(out)!r}: {e}") from None
    env = template_environment()
    shared = exclusive and arena == "static"
    runtime: dict[str, None] = {}
    entries = []
    for m in models:
        context, runtime_files, report = model_context(m.program, target, m.name, m.layout,
                                                       "shared" if shared else arena)
        context.update(header=f"{m.stem}.h", bundle_header=f"{library}.h" if exclusive else "",
                       shared_arena=f"{library}_arena" if shared else "",
                       arena_bytes_macro=f"{library.upper()}_ARENA_BYTES" if exclusive else context["arena_bytes_macro"])
        (out / f"{m.stem}.h").write_text(env.get_template("model.h.j2").render(context))
        (out / f"{m.stem}.c").write_text(env.get_template("model.c.j2").render(context))
        runtime.update(dict.fromkeys(runtime_files))
        entries.append({"name": m.name, "NAME": m.name.upper(), "header": f"{m.stem}.h", "source": f"{m.stem}.c",
                        "file": m.source, "graph_name": c_comment(m.program.graph.name),
                        "arena_bytes": m.program.arena_bytes, "macs": report["macs"],
                        "steps": len(m.program.steps), "inputs": context["inputs"], "outputs": context["outputs"],
                        "io_buffers": context["io_buffers"], "state_bytes": context["state_bytes"],
                        "report": report})
    runtime_files = list(runtime)
    sizes = [m.program.arena_bytes for m in models]
    shared_bytes = shared_arena_bytes([m.program for m in models]) if exclusive else None
    sources = [e["source"] for e in entries] + ([f"{library}.c"] if shared else []) + \
        [f for f in runtime_files if f.endswith(".c")]
    context = {
        **build_context(library, target, sources),
        "library": library,
        "LIBRARY": library.upper(),
        "models": entries,
        "arena": arena,
        "exclusive": exclusive,
        "shared": shared,
        "arena_align": ARENA_ALIGN,
        "shared_arena_bytes": shared_bytes,
        "sum_arena_bytes": sum(sizes),
        "headers": [f for f in runtime_files if f.endswith(".h")],
        # CMakeLists.txt's <NAME>_ARENA_SECTION variables: the shared arena's, or each
        # static arena's.
        "arena_sections": [library] if shared else [m.name for m in models] if arena == "static" else [],
        "weights_section": "",  # --weights-in-ram (refused for a folder of several models)
    }
    files = {f"{library}.h": "bundle/library.h.j2", "Makefile": "bundle/Makefile.j2",
             "CMakeLists.txt": "bundle/CMakeLists.txt.j2", "README.md": "bundle/README.md.j2"}
    if shared:
        files[f"{library}.c"] = "bundle/library.c.j2"
    for filename, template in files.items():
        (out / filename).write_text(env.get_template(template).render(context))
    for filename in runtime_files:
        shutil.copyfile(Path(runtime_c.SOURCE_DIR) / filename, out / filename)
    return {
        "library": library,
        "target": target.name,
        **({"float_abi": target.float_abi} if target.is_arm else {}),
        "arena": arena,
        "exclusive": exclusive,
        "arena_bytes": shared_bytes if exclusive else sum(sizes),
        "shared_arena_bytes": shared_bytes,
        "sum_of_arenas_bytes": sum(sizes),
        "macs": sum(e["macs"] for e in entries),
        "models": [{"name": e["name"], "file": e["file"], "header": e["header"], "source": e["source"],
                    **e["report"]} for e in entries],
        "runtime_files": runtime_files,
        "files": sorted([*(f for e in entries for f in (e["header"], e["source"])), *files, *runtime_files]),
    }
