"""Cortex-M C for the row normalizations: LOG_SOFTMAX (int8; runtime_c/mcuc_log_softmax.h
with the op module's per-difference tables) and L2_NORMALIZATION (int8;
runtime_c/mcuc_l2norm.h). Portable C on every core. `emit` returns
(declarations, call, runtime headers) for kernels.py's emitter table, as
kernels_binary.py does."""
from __future__ import annotations

from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import kinds
from mcuc.ir.ops.log_softmax import difference_tables, log_softmax_params
from mcuc.ir.program import Program, Step

from .c_syntax import c_comment
from .kernels_binary import arena_offset, c_array

LOG_SOFTMAX_H = "mcuc_log_softmax.h"
L2NORM_H = "mcuc_l2norm.h"


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    x, y = op.input, op.output
    name, fn = site.name, site.fn
    decls = [f"/* {c_comment(op.label)} */\n"]
    depth = x.shape[-1]
    x_at, y_at = arena_offset(program, x, op.label), arena_offset(program, y, op.label)
    if op.kind == kinds.L2_NORMALIZATION:
        decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n"
                     f"    mcuc_l2norm_s8((const int8_t *)(const void *)(arena + {x_at}), "
                     f"(int8_t *)(void *)(arena + {y_at}), {x.size // depth}, {depth}, "
                     f"{x.quant.scalar_zero_point});\n}}\n")
        return "".join(decls), f"{name}(arena);", (L2NORM_H,)
    if op.kind != kinds.LOG_SOFTMAX:
        raise MCUCError(f"{op.label}: kernels_norm has no kernel for {op.kind}")
    p = log_softmax_params(op)
    if site.first:
        q5, shares = difference_tables(op)
        decls.append(c_array("int32_t", f"{fn}_q5", q5))
        decls.append(c_array("int32_t", f"{fn}_shares", shares))
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n"
                 f"    mcuc_log_softmax_s8((const int8_t *)(const void *)(arena + {x_at}), "
                 f"(int8_t *)(void *)(arena + {y_at}), {x.size // depth}, {depth}, "
                 f"{fn}_q5, {fn}_shares, {p.diff_min}, {p.reverse_divisor}, {p.reverse_shift});\n}}\n")
    return "".join(decls), f"{name}(arena);", (LOG_SOFTMAX_H,)
