"""The generated firmware project: model.h, model.c, the runtime files, Makefile, report.json.

One folder a firmware engineer drops into a project (DESIGN.md, Backends). The schedule
becomes straight-line calls with constant arena offsets; each step's C comes from the
kernel emitters (kernels.emit_step), and this module only assembles the files through
the jinja2 templates under templates/.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from mcuc import runtime_c
from mcuc.ir.errors import MCUCError
from mcuc.ir.numerics import ONNXRUNTIME, rule_of
from mcuc.ir.ops import op_def
from mcuc.ir.program import CALLER_BUFFER_ALIGN, Program
from mcuc.ir.tensor import Tensor

from .c_syntax import c_comment, c_float, check_model_name
from .caller_io import relocate
from .target import TARGETS, Target

TEMPLATES = Path(__file__).parent / "templates"

C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
           "int64": "int64_t", "float32": "float", "bool": "uint8_t"}

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ARENA_ALIGN = 8
"""Bytes the arena's start is aligned to (`<NAME>_ARENA_ALIGN`): the planner's offsets
assume it, and the kernels' word loads need at least 4."""

PROJECT_TEMPLATES = (("model.h.j2", "model.h"), ("model.c.j2", "model.c"), ("Makefile.j2", "Makefile"),
                     ("CMakeLists.txt.j2", "CMakeLists.txt"), ("README.md.j2", "README.md"))


def build_context(name: str, target: Target, sources: list[str]) -> dict:
    """What the build files (Makefile, CMakeLists.txt) of a project for `target` say:
    the library's name, the cores offered and the defaults."""
    return {
        "name": name,
        "NAME": name.upper(),
        "target": target.name,
        "default_cpu": target.name,
        "default_float_abi": target.float_abi if target.is_arm else "",
        "cpus": offered_cpus(target),
        "has_dsp": target.has_dsp,
        "opt": target.opt,
        "sources": sources,
    }


def offered_cpus(target: Target) -> list[str]:
    """The cores the generated Makefile builds for: code compiled for a DSP core calls
    kernels that exist only with the DSP extension (the DSP cores); the portable code of
    the other targets builds for every core and the host."""
    arm = [name for name, t in TARGETS.items() if t.is_arm]
    if target.has_dsp:
        return [name for name in arm if TARGETS[name].has_dsp]
    return [*arm, "host"]


def template_environment() -> jinja2.Environment:
    """The templates of this backend. StrictUndefined: a missing value is a bug, not
    an empty string in the C."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=False, lstrip_blocks=False)


@dataclass(frozen=True)
class IOTensor:
    """A graph input or output as model.h describes it."""

    index: int
    name: str
    dtype: str
    ctype: str
    shape: tuple[int, ...]
    elements: int
    bytes: int
    offset: int
    quantized: bool
    scale: str
    zero_point: int
    layout: str = ""  # "NCHW" | "NHWC" for a 4-D tensor of a model compiled for a stated layout
    in_arena: bool = True  # False: in the caller's buffer (--io-buffers caller), `offset` is no arena offset
    # --memory: the region holding it after the first ("" in the first, the arena) and
    # its offset in that region's array
    region: str = ""
    region_offset: int = 0

    def as_json(self) -> dict:
        info = {"index": self.index, "name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                **({"layout": self.layout} if self.layout else {}),
                "bytes": self.bytes, "arena_offset": self.offset if self.in_arena else None}
        if self.quantized:
            info["scale"] = float(self.scale)
            info["zero_point"] = self.zero_point
        return info


def io_tensors(program: Program, tensors: tuple[Tensor, ...], role: str, layout: str | None = None) -> list[IOTensor]:
    result = []
    for index, t in enumerate(tensors):
        if t not in program.offsets:
            raise MCUCError(f"graph {role} {index} {t.name!r} has no place in the arena "
                            "(a constant graph output?): the Cortex-M backend needs every "
                            f"graph {role} to be computed; remove it from the model's {role}s")
        if t.dtype not in C_TYPES:
            raise MCUCError(f"graph {role} {t.name!r} has dtype {t.dtype}, which the generated "
                            f"C API cannot express (use one of {', '.join(C_TYPES)})")
        quantized = t.quant is not None and not t.quant.per_channel
        found = program.region_at(program.offset(t)) if program.in_arena(t) else None
        region, region_offset = ("", program.offset(t)) if found is None or found[0] == 0 else \
            (found[1].name, program.offset(t) - found[1].base)
        result.append(IOTensor(
            index=index, name=c_comment(t.name), dtype=t.dtype, ctype=C_TYPES[t.dtype],
            shape=t.shape, elements=t.size, bytes=t.nbytes, offset=program.offset(t),
            quantized=quantized, scale=c_float(t.quant.scalar_scale) if quantized else "",
            zero_point=t.quant.scalar_zero_point if quantized else 0,
            layout=layout.upper() if layout and len(t.shape) == 4 else "", in_arena=program.in_arena(t),
            region=region, region_offset=region_offset))
    return result


def state_tensors(program: Program) -> list[dict]:
    """Each state tensor of Program.state_records, its name made safe for a C comment."""
    return [{**record, "name": c_comment(record["name"])} for record in program.state_records()]


def _state_initializer(program: Program) -> str:
    """The state array's initializer when a reset byte is not 0 (an int8 state's zero
    point), else "" (the array is in .bss)."""
    area = program.reset_state_area()
    if not area.any():
        return ""
    values = [str(int(v)) for v in area]
    return ",\n    ".join(", ".join(values[i:i + 16]) for i in range(0, len(values), 16))


# A constant array of the generated C (kernels_binary.c_array, kernels/_macros.j2): its
# element type and count; MCUC_WEIGHTS places it (flash, or RAM with --weights-in-ram).
_WEIGHT_ARRAY = re.compile(r"static const (\w+) (\w+)\[(\d+)\][^=;]*\bMCUC_WEIGHTS\b")
# Every element type the emitters give a constant array (kernels_binary's broadcast
# extents and strides are `int`: 32 bits on every Cortex-M and on the host).
_C_SIZES = {"int": 4, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
            "int64_t": 8, "uint64_t": 8, "float": 4, "double": 8}


def constant_bytes(program: Program, target: Target) -> int:
    """Bytes of the MCUC_WEIGHTS arrays of `program`'s C for `target` that its code names,
    each rounded up to 4 (the alignment the arrays may take): what --weights-in-ram puts
    in RAM, at most (gcc may fold a small array into the code that reads it, as it does
    for the 3x3 depthwise weights of vww_96_int8: 274,144 B in the section of 285,304
    counted)."""
    return _array_bytes(emit_steps(program, target)[0])


def _array_bytes(steps: list["EmittedStep"]) -> int:
    total = 0
    for step in steps:
        for ctype, name, count in _WEIGHT_ARRAY.findall(step.decls):
            if len(re.findall(rf"\b{name}\b", step.decls)) < 2:
                continue  # declared, never read
            if ctype not in _C_SIZES:
                raise MCUCError(f"step {step.index} {step.label}: a constant array of type {ctype}, whose size "
                                f"the weights count does not know")
            total += -(-int(count) * _C_SIZES[ctype] // 4) * 4
    return total


@dataclass(frozen=True)
class EmittedStep:
    index: int
    label: str
    kind: str
    decls: str
    call: str


def emit_steps(program: Program, target: Target) -> tuple[list[EmittedStep], list[str]]:
    """Every step's C and the runtime_c files they need (in first-use order)."""
    from .kernels import emit_step  # the emitters' module; imported late to keep this one light

    steps: list[EmittedStep] = []
    runtime: dict[str, None] = {}
    for index, step in enumerate(program.steps):
        code = emit_step(index, step, program, target)
        decls = relocate(code.decls, program, f"step {index} {step.op.label}")  # --io-buffers caller
        steps.append(EmittedStep(index, c_comment(step.op.label), step.op.kind,
                                 decls.strip("\n"), code.call.strip("\n")))
        runtime.update(dict.fromkeys(code.runtime))
    return steps, list(runtime)


def runtime_closure(names: list[str]) -> list[str]:
    """`names` plus every runtime_c file they #include "..." (transitively)."""
    source_dir = Path(runtime_c.SOURCE_DIR)
    ordered: dict[str, None] = {}
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in ordered:
            continue
        path = source_dir / name
        if not path.is_file():
            raise MCUCError(f"the kernel emitters asked for runtime file {name!r}, which is not in "
                            f"{source_dir}: the mcuc installation is incomplete")
        ordered[name] = None
        pending.extend(n for n in _INCLUDE.findall(path.read_text()) if (source_dir / n).is_file())
    return list(ordered)


def op_report(index: int, program: Program) -> dict:
    step = program.steps[index]
    op = step.op
    return {
        "index": index,
        "kind": op.kind,
        "name": op.name,
        "macs": int(op_def(op.kind).macs(op)),
        "inputs": [{"name": t.name, "shape": list(t.shape), "arena_offset": program.offsets.get(t)}
                   for t in op.inputs if t is not None and not t.is_constant],
        "outputs": [{"name": t.name, "shape": list(t.shape), "arena_offset": program.offsets.get(t)}
                    for t in op.outputs],
        "weight_bytes": int(sum(t.nbytes for t in op.inputs if t is not None and t.is_constant)),
        "scratch": [{"name": b.name, "offset": b.offset, "size": b.size} for b in step.scratch],
    }


def model_context(program: Program, target: Target, name: str = "model", layout: str | None = None,
                  arena: str = "static") -> tuple[dict, list[str], dict]:
    """What the templates of one model say (the context), the runtime_c files it uses and
    its report.json: write_project's work before it writes, shared with the folders of
    several models (bundle.py). `arena`: "static", "caller" or "shared" (bundle.py: the
    arena another file defines for every model of a folder)."""
    if arena not in ("static", "caller", "shared"):
        raise MCUCError(f"unknown arena mode {arena!r}; choose static or caller")
    prefix = check_model_name(name)
    steps, runtime = emit_steps(program, target)
    weights = next((r for r in program.regions if r.weights_bytes is not None), None)
    # --memory: the arena is the first region; each later one is an array of its own
    arena_bytes = program.regions[0].size if program.regions else program.arena_bytes
    if weights is not None:  # the planner counted the arrays of a plan with the same C constants
        held = _array_bytes(steps)
        if held > weights.weights_bytes:
            raise MCUCError(f"--weights-in-ram {weights.name}: the C holds {held} B of constant arrays, but the "
                            f"plan counted {weights.weights_bytes} B in region {weights.name!r}")
    runtime_files = runtime_closure(runtime)
    inputs = io_tensors(program, program.graph.inputs, "input", layout)
    outputs = io_tensors(program, program.graph.outputs, "output", layout)
    macs = sum(int(op_def(s.op.kind).macs(s.op)) for s in program.steps)
    context = {
        **build_context(prefix, target, ["model.c", *(f for f in runtime_files if f.endswith(".c"))]),
        "graph_name": c_comment(program.graph.name),
        "header": "model.h",  # the file model.c includes (bundle.py: model_<name>.h)
        "bundle_header": "",  # a folder of several models: its header, which model.c includes too
        "shared_arena": "",  # arena "shared": the symbol of the arena every model of the folder uses
        "arena_bytes_macro": f"{prefix.upper()}_ARENA_BYTES",  # the arena the caller allocates
        "arena": arena,
        # "caller": the graph inputs and outputs live in buffers <name>_invoke_io takes
        # (ir/program.CallerBuffer; caller_io.py relocates their addresses)
        "io_buffers": "caller" if program.caller_buffers else "arena",
        "io_align": CALLER_BUFFER_ALIGN,
        "caller_buffers": [{"slot": k, "role": b.role, "index": b.index, "bytes": b.tensor.nbytes}
                           for k, b in enumerate(program.caller_buffers)],
        # The names whose <NAME>_ARENA_SECTION CMakeLists.txt offers: a static arena's own.
        "arena_sections": [prefix, *(f"{prefix}_{r.name}" for r in program.regions[1:])] if arena == "static" else [],
        "arena_align": ARENA_ALIGN,
        # --weights-in-ram: the region holding the constant arrays and their default section
        "weights_region": weights.name if weights else "",
        "weights_section": f".data.{prefix}_weights" if weights else "",
        "arena_bytes": arena_bytes,
        "first_region": program.regions[0].name if program.regions else "",
        "regions": [{"index": k, "name": r.name, "bytes": r.size, "storage_bytes": max(r.size, 1),
                     "NAME": r.name.upper(), "cost": f"{r.cost:g}"} for k, r in enumerate(program.regions) if k],
        # A zero-length array is not C; a model whose activations need no bytes still
        # gets a one-byte arena.
        "arena_storage_bytes": max(arena_bytes, 1),
        "inputs": inputs,
        "outputs": outputs,
        # The state area (ir/program.Program.state_base): a static array of model.c that
        # keeps the state tensors between invocations, initialized to their reset bytes.
        "state_bytes": program.state_bytes,
        "states": state_tensors(program),
        "state_initializer": _state_initializer(program),
        "steps": steps,
        "macs": macs,
        "headers": [f for f in runtime_files if f.endswith(".h")],
        # onnxruntime's rule rounds float32 values: with softfp/hard on the FPU, whose
        # FPSCR the README then asks the firmware to leave as reset
        "onnxruntime_on_fpu": target.fpu is not None and any(
            rule_of(op.attrs) == ONNXRUNTIME for op in program.graph.ops),
    }
    report = {
        "model": program.graph.name,
        "c_prefix": prefix,
        "target": target.name,
        **({"float_abi": target.float_abi} if target.is_arm else {}),
        "arena": arena,
        "io_buffers": "caller" if program.caller_buffers else "arena",
        "arena_bytes": program.arena_bytes,
        "live_bound_bytes": program.live_bound_bytes,
        "macs": macs,
        "inputs": [t.as_json() for t in inputs],
        "outputs": [t.as_json() for t in outputs],
        "buffers": [{"name": b.name, "offset": b.offset, "size": b.size, "first": b.first,
                     "last": b.last} for b in program.buffers],
        **({"state_bytes": program.state_bytes, "states": program.state_records()} if program.graph.states else {}),
        "ops": [op_report(i, program) for i in range(len(program.steps))],
        "runtime_files": runtime_files,
    }
    return context, runtime_files, report


def write_project(program: Program, out_dir: Path | str, target: Target, name: str = "model",
                  layout: str | None = None, arena: str = "static") -> Path:
    """Write the C project for `program` into `out_dir` (created if needed); return it.
    `name` prefixes every external symbol, macro and section (c_syntax.check_model_name).
    `layout` ("nchw" | "nhwc"), when given, is named beside each 4-D input and output.
    `arena`: "static" (an array in model.c, section overridable by <NAME>_ARENA_SECTION)
    or "caller" (<name>_invoke takes the arena).

    Files: model.h (the API), model.c (arena, weights, schedule), the runtime_c files the
    model uses, Makefile (`make CPU=<core>` builds lib<name>.a), CMakeLists.txt (the
    same as a CMake library target), README.md, report.json.
    """
    if arena not in ("static", "caller"):
        raise MCUCError(f"unknown arena mode {arena!r}; choose static or caller")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MCUCError(f"cannot create output directory {str(out)!r}: {e}") from None
    context, runtime_files, report = model_context(program, target, name, layout, arena)
    env = template_environment()
    for template, filename in PROJECT_TEMPLATES:
        (out / filename).write_text(env.get_template(template).render(context))
    for filename in runtime_files:
        shutil.copyfile(Path(runtime_c.SOURCE_DIR) / filename, out / filename)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return out


@dataclass(frozen=True, eq=False)
class ModelIO:
    """What running a built program needs to know of it: its graph inputs and outputs and
    their arena offsets, and its state area's bytes (a run gives and takes them, so that
    runs in separate processes continue one stream). Builds keep this instead of the
    Program, so a cache of builds keyed weakly by program can let the program (and its
    build) go."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    input_offsets: tuple[int, ...]
    output_offsets: tuple[int, ...]
    state_bytes: int = 0

    @classmethod
    def of(cls, program: Program) -> "ModelIO":
        graph = program.graph
        io_tensors(program, graph.inputs, "input")  # every input and output has an arena place
        io_tensors(program, graph.outputs, "output")
        return cls(graph.name, graph.inputs, graph.outputs,
                   tuple(program.offset(t) for t in graph.inputs),
                   tuple(program.offset(t) for t in graph.outputs), program.state_bytes)

    def pack(self, inputs) -> list[bytes]:
        """The raw bytes of each graph input, checked against the graph: one array per
        input, as many elements as the tensor, integer values that fit its dtype."""
        if len(inputs) != len(self.inputs):
            raise MCUCError(f"graph {self.name!r} takes {len(self.inputs)} inputs, got {len(inputs)}")
        packed = []
        for t, value in zip(self.inputs, inputs):
            array = np.asarray(value)
            if array.size != t.size:
                raise MCUCError(f"input {t.name!r}: expected {t.size} elements (shape {list(t.shape)}), "
                                f"got shape {list(array.shape)}")
            converted = array.astype(t.dtype)
            # Integer inputs must fit exactly; float inputs round to float32 as any caller's would.
            if np.issubdtype(converted.dtype, np.integer) and array.dtype != converted.dtype \
                    and not np.array_equal(converted, array):
                raise MCUCError(f"input {t.name!r}: values of dtype {array.dtype} do not fit {t.dtype}")
            packed.append(np.ascontiguousarray(converted).tobytes())
        return packed

    def unpack(self, blobs: list[bytes]) -> list[np.ndarray]:
        """Each graph output's bytes as an array of its shape and dtype."""
        return [np.frombuffer(blob, dtype=t.dtype).reshape(t.shape).copy()
                for t, blob in zip(self.outputs, blobs)]
