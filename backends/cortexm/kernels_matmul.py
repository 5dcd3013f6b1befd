"""Cortex-M C for BATCH_MATMUL (int8, mcuc.ir.ops.batch_matmul).

A product by a constant matrix (rhs constant with zero point 0 and batch dimensions of
1, lhs computed and not transposed) is a fully connected layer over the lhs rows:
`as_fully_connected` gives that FULLY_CONNECTED view (weights rhs^T, no bias, the same
per-tensor double-product multiplier, the int8 range), which kernels.py emits with the
fully connected kernels (the DSP ones on cortex-m4/m7/m33) and plans with their scratch.
Otherwise `emit` writes literal loops over the output's batch axes, rows and columns, an
int32 sum over the depth (zero points subtracted as the reference does), then mcuc_mbqm
(TFLite's double rounding), the output zero point and the int8 clamp; int16 sums in int64
and applies the int64 output stage (mcuc.ir.ops.batch_matmul.multiply_int64): portable C
on every core. `emit` returns (declarations, call, runtime headers) for kernels.py's emitter
table, as kernels_binary.py does."""
from __future__ import annotations

from mcuc.ir.op import Op
from mcuc.ir.ops import kinds
from mcuc.ir.ops.batch_matmul import geometry, quant, reduced_multiplier
from mcuc.ir.ops.fully_connected import FullyConnectedAttrs
from mcuc.ir.program import Program, Step
from mcuc.ir.tensor import Tensor

from .c_syntax import c_comment
from .kernels_binary import ELEMENTWISE_H, arena_offset, c_array
from .kernels_reduce import _index, _loops


def as_fully_connected(op: Op) -> Op | None:
    """The FULLY_CONNECTED op computing the same bytes as this BATCH_MATMUL, or None."""
    lhs, rhs = op.inputs[0], op.inputs[1]
    if op.kind != kinds.BATCH_MATMUL or op.attrs.adj_x or lhs.is_constant or not rhs.is_constant \
            or op.output.dtype != "int8":
        return None
    if any(d != 1 for d in rhs.shape[:-2]) or rhs.quant is None or rhs.quant.scalar_zero_point != 0:
        return None
    g = geometry(op)
    matrix = rhs.data.reshape(rhs.shape[-2:])
    weights = matrix if op.attrs.adj_y else matrix.T  # [units = N, depth = K]
    w = Tensor(rhs.name, (g.cols, g.depth), "int8", rhs.quant, weights)
    return Op(kinds.FULLY_CONNECTED, (lhs, w), op.outputs, FullyConnectedAttrs(keep_num_dims=True), name=op.name)


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    g, q = geometry(op), quant(op)
    name = site.name
    wide = op.output.dtype == "int16"
    ctype, acc_t = ("int16_t", "int64_t") if wide else ("int8_t", "int32_t")
    decls = [f"/* {c_comment(op.label)} */\n"]
    sources = []
    for k, t in enumerate(op.inputs):
        if t.is_constant:
            decls.append(c_array(ctype, f"{name}_c{k}", t.data))
            sources.append(f"{name}_c{k}")
        else:
            sources.append(f"(const {ctype} *)(const void *)(arena + {arena_offset(program, t, op.label)})")
    out_batch, step_size = [0] * len(g.batch), g.rows * g.cols
    for i in range(len(g.batch) - 1, -1, -1):
        out_batch[i] = step_size
        step_size *= g.batch[i]
    counters = [f"b{i}" for i in range(len(g.batch))] + ["i", "j", "k"]
    body = [f"    const {ctype} *lhs = {sources[0]};\n", f"    const {ctype} *rhs = {sources[1]};\n",
            f"    {ctype} *out = ({ctype} *)(void *)(arena + {arena_offset(program, op.output, op.label)});\n",
            f"    int {', '.join(counters)};\n", "    (void)arena;\n"]
    open_b, close_b, ind = _loops("b", g.batch, "    ")
    body.append(open_b)
    if wide:
        total = 15 - q.shift
        stage = (f"(int16_t)mcuc_clamp((int32_t)(uint32_t)(uint64_t)((acc * {reduced_multiplier(q.multiplier)} + "
                 f"((int64_t)1 << {total - 1})) >> {total}), -32768, 32767)")
    else:
        stage = f"(int8_t)mcuc_clamp(mcuc_mbqm(acc, {q.multiplier}, {q.shift}) + ({q.output_zero_point}), -128, 127)"
    body.append(f"{ind}const {ctype} *l = lhs + {_index('b', g.lhs_batch)};\n"
                f"{ind}const {ctype} *r = rhs + {_index('b', g.rhs_batch)};\n"
                f"{ind}{ctype} *o = out + {_index('b', out_batch)};\n"
                f"{ind}for (i = 0; i < {g.rows}; i++) {{\n"
                f"{ind}    for (j = 0; j < {g.cols}; j++) {{\n"
                f"{ind}        {acc_t} acc = 0;\n"
                f"{ind}        for (k = 0; k < {g.depth}; k++) {{\n"
                f"{ind}            acc += ((int32_t)l[i * {g.lhs_row} + k * {g.lhs_depth}] - ({q.lhs_zero_point})) *\n"
                f"{ind}                   ((int32_t)r[k * {g.rhs_depth} + j * {g.rhs_col}] - ({q.rhs_zero_point}));\n"
                f"{ind}        }}\n"
                f"{ind}        o[i * {g.cols} + j] = {stage};\n"
                f"{ind}    }}\n{ind}}}\n")
    body.append(close_b)
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{''.join(body)}}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)
