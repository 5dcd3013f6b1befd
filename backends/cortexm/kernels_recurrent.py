"""Cortex-M C for the ops that keep state between invocations: SVDF (int8, int16 or int8
state; runtime_c/mcuc_svdf.h). Portable C on every core. The state tensor's address lies
in the state area, which caller_io.relocate maps to the model's state array. `emit`
returns (declarations, call, runtime headers) for kernels.py's emitter table, as
kernels_norm.py does."""
from __future__ import annotations

from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import kinds
from mcuc.ir.ops.svdf import svdf_params
from mcuc.ir.program import Program, ScratchRequest, Step

from .c_syntax import c_comment
from .kernels_binary import arena_offset, c_array

SVDF_H = "mcuc_svdf.h"
_STATE_KERNELS = {"int16": ("mcuc_svdf_s8_s16", "int16_t"), "int8": ("mcuc_svdf_s8_s8", "int8_t")}


def scratch_requests(op) -> list[ScratchRequest]:
    """One int32 time sum per filter (mcuc_svdf_get_buffer_size)."""
    return [ScratchRequest(f"{op.name or 'svdf'}.times", svdf_params(op).filters * 4, 4)]


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    if op.kind != kinds.SVDF:
        raise MCUCError(f"{op.label}: kernels_recurrent has no kernel for {op.kind}")
    p = svdf_params(op)
    x, wf, wt, bias, state = op.inputs
    kernel, ctype = _STATE_KERNELS[p.state_dtype]
    name, fn = site.name, site.fn
    decls = [f"/* {c_comment(op.label)}: rank {p.rank}, memory {p.memory}, {p.state_dtype} state */\n"]
    if site.first:
        fields = (p.batch, p.inputs, p.filters, p.units, p.memory, p.rank, -p.input_zero_point, p.state_zero_point,
                  p.output_zero_point, p.multiplier_1, p.shift_1, p.multiplier_2, p.shift_2)
        decls.append(f"static const mcuc_svdf_params_t {fn}_params = {{{', '.join(str(int(v)) for v in fields)}}};\n")
        decls.append(c_array("int8_t", f"{fn}_weights_feature", wf.data))
        decls.append(c_array(ctype, f"{fn}_weights_time", wt.data))
        decls.append(c_array("int32_t", f"{fn}_bias", bias.data))
    x_at, y_at = arena_offset(program, x, op.label), arena_offset(program, op.output, op.label)
    state_at = arena_offset(program, state, op.label)
    if len(step.scratch) != 1 or step.scratch[0].size < p.filters * 4:
        raise MCUCError(f"{op.label}: the plan has no scratch for the time sums ({p.filters * 4} B); plan with "
                        "the Cortex-M backend's scratch requests")
    times_at = step.scratch[0].offset
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n"
                 f"    {kernel}(&{fn}_params, (const int8_t *)(const void *)(arena + {x_at}), {fn}_weights_feature, "
                 f"{fn}_weights_time, {fn}_bias, ({ctype} *)(void *)(arena + {state_at}), "
                 f"(int32_t *)(void *)(arena + {times_at}), (int8_t *)(void *)(arena + {y_at}));\n}}\n")
    return "".join(decls), f"{name}(arena);", (SVDF_H,)
