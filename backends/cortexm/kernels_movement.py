"""Cortex-M C for the data movement ops (SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK,
UNPACK, GATHER, SPACE_TO_DEPTH, DEPTH_TO_SPACE, MIRROR_PAD, SPACE_TO_BATCH_ND,
BATCH_TO_SPACE_ND, REVERSE_V2, BROADCAST_TO, FILL, DYNAMIC_UPDATE_SLICE): the op module's copies
(mcuc.ir.ops.movement.moves), each one call of runtime_c's mcuc_copy6 over byte
strides (negative ones too), its trailing contiguous axes merged into one memcpy run.
A constant input is a const array in flash.

`emit` returns (file-scope declarations, the call, runtime headers used); kernels.py
wraps it into its StepCode and registers it in its emitter table (site naming as in
kernels_binary.py).
"""
from __future__ import annotations

from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import dynamic_update_slice, gather, kinds
from mcuc.ir.ops.movement import moves
from mcuc.ir.patch_lowering import merged_runs
from mcuc.ir.program import Program, Step

from .c_syntax import c_comment
from .kernels_binary import ELEMENTWISE_H, arena_offset, c_array

_CTYPES = {1: "int8_t", 2: "int16_t"}
MAX_AXES = 6


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    if op.kind == kinds.GATHER and gather.dynamic(op):
        return _gather_run_time(site, step, program)
    name = site.name
    decls = [f"/* {c_comment(op.label)} */\n"]
    sources: dict[int, str] = {}
    # DYNAMIC_UPDATE_SLICE with run-time start indices: the update's copy starts at an
    # element offset the step computes first (`offset`) from the clamped indices.
    prologue, offset = "", None
    if op.kind == kinds.DYNAMIC_UPDATE_SLICE and dynamic_update_slice.dynamic(op):
        prologue, offset = _update_slice_offset(op, program), "offset"
        op_moves = [dynamic_update_slice.operand_move(op), dynamic_update_slice.update_move(op, 0)]
    else:
        op_moves = moves(op)
    for k in sorted({m.input for m in op_moves}):
        t = op.inputs[k]
        if t.is_constant:
            if t.itemsize not in _CTYPES:
                raise MCUCError(f"{op.label}: constant input {t.name!r} of {t.dtype} is not supported")
            decls.append(c_array(_CTYPES[t.itemsize], f"{name}_c{k}", t.data))
            sources[k] = f"(const uint8_t *){name}_c{k}"
        else:
            sources[k] = f"arena + {arena_offset(program, t, op.label)}"
    calls = []
    for j, m in enumerate(op_moves):
        x_t, y_t = op.inputs[m.input], op.outputs[m.output]
        item = x_t.itemsize
        shape, dst_strides, src_strides, run = merged_runs(
            m.shape, [s * item for s in m.dst_strides], [s * item for s in m.src_strides], item)
        if len(shape) > MAX_AXES:
            raise MCUCError(f"{op.label}: a copy over {len(shape)} non-contiguous axes is beyond the supported "
                            f"{MAX_AXES}")
        pad = MAX_AXES - len(shape)
        decls.append(c_array("int", f"{name}_e{j}", [1] * pad + list(shape)))
        decls.append(c_array("int", f"{name}_d{j}", [0] * pad + list(dst_strides)))
        decls.append(c_array("int", f"{name}_s{j}", [0] * pad + list(src_strides)))
        dst = arena_offset(program, y_t, op.label) + m.dst * item
        moved = f" + offset * {item}" if offset is not None and m.input == 1 else ""
        calls.append(f"    mcuc_copy6(arena + {dst}{moved}, {sources[m.input]} + {m.src * item}, {name}_e{j}, "
                     f"{name}_d{j}, {name}_s{j}, {run});\n")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{prologue}{''.join(calls)}    (void)arena;\n}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)


def _update_slice_offset(op, program: Program) -> str:
    """C computing `offset`, the element offset of DYNAMIC_UPDATE_SLICE's clamped start
    (mcuc.ir.ops.dynamic_update_slice), from the start indices in the arena."""
    operand, update, indices = op.inputs
    ctype = "int32_t" if indices.dtype == "int32" else "int64_t"
    at = arena_offset(program, indices, op.label)
    # memcpy: an int64 index is only 4-byte aligned in the arena
    lines = [f"    {ctype} start;\n", "    int32_t offset = 0;\n"]
    for axis, stride in enumerate(dynamic_update_slice.strides(op)):
        top = operand.shape[axis] - update.shape[axis]
        lines.append(f"    memcpy(&start, arena + {at + axis * indices.itemsize}, sizeof start);\n"
                     f"    offset += (int32_t)(start < 0 ? 0 : start > {top} ? {top} : start) * {stride};\n")
    return "".join(lines)


def _gather_run_time(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    """GATHER with indices computed at run time: per (batch, outer, coordinate) one index
    read and clamped into the axis (mcuc.ir.ops.gather), then `inner` bytes copied."""
    op = step.op
    params, indices = op.inputs
    axis, _, batch, outer, inner, coords = gather.geometry(op)
    size = params.shape[axis]
    name = site.name
    decls = [f"/* {c_comment(op.label)}: indices read at run time */\n"]
    if params.is_constant:
        decls.append(c_array("int8_t", f"{name}_params", params.data))
        source = f"{name}_params"
    else:
        source = f"(const int8_t *)(arena + {arena_offset(program, params, op.label)})"
    body = (f"    const int8_t *params = {source};\n"
            f"    const int32_t *idx = (const int32_t *)(const void *)(arena + "
            f"{arena_offset(program, indices, op.label)});\n"
            f"    int8_t *out = (int8_t *)(arena + {arena_offset(program, op.output, op.label)});\n"
            f"    int b, o, c;\n"
            f"    for (b = 0; b < {batch}; b++) {{\n"
            f"        for (o = 0; o < {outer}; o++) {{\n"
            f"            for (c = 0; c < {coords}; c++) {{\n"
            f"                int32_t i = idx[b * {coords} + c];\n"
            f"                if (i < 0) {{\n                    i = 0;\n                }}\n"
            f"                if (i > {size - 1}) {{\n                    i = {size - 1};\n                }}\n"
            f"                memcpy(out + ((b * {outer} + o) * {coords} + c) * {inner}, "
            f"params + ((b * {outer} + o) * {size} + i) * {inner}, {inner}u);\n"
            f"            }}\n        }}\n    }}\n")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{body}    (void)arena;\n}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)
