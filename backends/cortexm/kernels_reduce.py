"""Cortex-M C for REDUCE_MAX, REDUCE_MIN and SUM (int8; SUM int16 too) and ARG_MAX / ARG_MIN (int8 -> int32): literal
nested loops over the kept axes, then over the reduced ones (mcuc.ir.ops.reduce_max
.reduction_geometry), written straight into the step function. `emit` returns
(declarations, call, runtime headers) for kernels.py's emitter table, as
kernels_binary.py does."""
from __future__ import annotations

from mcuc.ir.ops import kinds
from mcuc.ir.ops.arg_min_max import axis_of
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.reduce_max import reduction_geometry, resolved_axes
from mcuc.ir.ops.sum import sum_params
from mcuc.ir.program import Program, Step

from .c_syntax import c_comment
from .kernels_binary import ELEMENTWISE_H, arena_offset, c_array


def _loops(prefix: str, extents, indent: str) -> tuple[str, str, str]:
    """(opening lines, closing lines, innermost indent) of nested for loops over `extents`
    with counters prefix0, prefix1, ..."""
    opening, closing = "", ""
    for i, e in enumerate(extents):
        opening += f"{indent}for ({prefix}{i} = 0; {prefix}{i} < {e}; {prefix}{i}++) {{\n"
        closing = f"{indent}}}\n" + closing
        indent += "    "
    return opening, closing, indent


def _index(prefix: str, strides) -> str:
    terms = [f"{prefix}{i} * {s}" for i, s in enumerate(strides)]
    return " + ".join(terms) if terms else "0"


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    x, y = op.input, op.output
    name = site.name
    decls = [f"/* {c_comment(op.label)} */\n"]
    in_ctype = "int16_t" if x.dtype == "int16" else "int8_t"
    if x.is_constant:
        decls.append(c_array(in_ctype, f"{name}_c", x.data))
        source = f"{name}_c"
    else:
        source = f"({in_ctype} const *)(const void *)(arena + {arena_offset(program, x, op.label)})"
    arg = op.kind in (kinds.ARG_MAX, kinds.ARG_MIN)
    axes = (axis_of(op),) if arg else resolved_axes(op, op.attrs.axes)
    kept, kept_strides, red, red_strides = reduction_geometry(x.shape, axes)
    counters = [f"k{i}" for i in range(len(kept))] + [f"r{i}" for i in range(len(red))]
    out_ctype = "int32_t" if arg else in_ctype
    body = [f"    const {in_ctype} *in = {source};\n",
            f"    {out_ctype} *out = ({out_ctype} *)(void *)(arena + {arena_offset(program, y, op.label)});\n"]
    if counters:
        body.append(f"    int {', '.join(counters)};\n")
    open_k, close_k, ind = _loops("k", kept, "    ")
    body.append(open_k)
    body.append(f"{ind}const {in_ctype} *p = in + {_index('k', kept_strides)};\n")
    if arg:
        sign = ">" if op.kind == kinds.ARG_MAX else "<"
        body.append(f"{ind}int8_t best = p[0];\n{ind}int32_t index = 0;\n")
        open_r, close_r, ind2 = _loops("r", red, ind)
        body.append(open_r)
        body.append(f"{ind2}if (p[r0 * {red_strides[0]}] {sign} best) {{\n"
                    f"{ind2}    best = p[r0 * {red_strides[0]}];\n{ind2}    index = r0;\n{ind2}}}\n")
        body.append(close_r)
        body.append(f"{ind}*out++ = index;\n")
    elif op.kind == kinds.SUM:
        p = sum_params(op)
        lo, hi = dtype_range(y.dtype)
        offset = (p.input_zero_point * p.count + 2**31) % 2**32 - 2**31
        body.append(f"{ind}uint32_t acc = 0u;\n")  # the int32 sum wraps, as the reference's
        open_r, close_r, ind2 = _loops("r", red, ind)
        body.append(open_r)
        body.append(f"{ind2}const int32_t v = p[{_index('r', red_strides)}];\n{ind2}acc += (uint32_t)v;\n")
        body.append(close_r)
        body.append(f"{ind}const int32_t shifted = (int32_t)(acc - (uint32_t)({offset}L));\n"
                    f"{ind}const int32_t v = (int32_t)((uint32_t)mcuc_mbqm(shifted, {p.multiplier}, {p.shift}) + "
                    f"(uint32_t)({p.output_zero_point}));\n"
                    f"{ind}*out++ = ({in_ctype})mcuc_clamp(v, {lo}, {hi});\n")
    else:
        start, sign = (-128, ">") if op.kind == kinds.REDUCE_MAX else (127, "<")
        body.append(f"{ind}int8_t acc = {start};\n")
        open_r, close_r, ind2 = _loops("r", red, ind)
        body.append(open_r)
        body.append(f"{ind2}const int8_t v = p[{_index('r', red_strides)}];\n{ind2}if (v {sign} acc) {{\n"
                    f"{ind2}    acc = v;\n{ind2}}}\n")
        body.append(close_r)
        body.append(f"{ind}*out++ = acc;\n")
    body.append(close_k)
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{''.join(body)}    (void)arena;\n}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)
