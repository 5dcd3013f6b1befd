"""Cortex-M C for MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, PRELU (int8; int16, PRELU with
an int8 alpha) and DIV (int8), portable C on every core.

Each emitter returns (file-scope declarations, the call, runtime headers used);
kernels.py wraps them into its StepCode and registers them in its emitter table. Site
naming follows kernels.Site: `site.fn` prefixes the op's constants (emitted only when
`site.first`), `site.name` this call's function and its per-call arrays (broadcast
extents and strides, a constant operand's values).

An int8 SQUARED_DIFFERENCE reads each input's rescaled value ((x + offset) << 7 times
its multiplier, mcuc.ir.ops.squared_difference.scaled_input) from a 256-entry int32
table computed at compile time by the op module itself; an int16 one (zero points 0, no
shift) applies the multipliers in C (mcuc_mbqm_small). The square and the output stage
(mcuc_mbqm, TFLite's double rounding) run in C.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import kinds
from mcuc.ir.ops.div import div_params, divisor_tables
from mcuc.ir.ops.prelu import prelu_params
from mcuc.ir.ops.squared_difference import scaled_input, squared_difference_params
from mcuc.ir.program import Program, Step
from mcuc.ir.tensor import Tensor

from .c_syntax import c_comment

ELEMENTWISE_H = "mcuc_elementwise.h"
_CTYPES = {"int8": "int8_t", "int16": "int16_t"}


def arena_offset(program: Program, tensor: Tensor, label: str) -> int:
    try:
        return program.offsets[tensor]
    except KeyError:
        raise MCUCError(f"{label}: tensor {tensor.name!r} has no place in the arena; the program's memory plan "
                        "is incomplete (plan the graph with mcuc.passes.plan)") from None


def c_array(ctype: str, name: str, values) -> str:
    values = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = ",\n    ".join(", ".join(values[i:i + 16]) for i in range(0, len(values), 16))
    return f"static const {ctype} {name}[{max(len(values), 1)}] MCUC_WEIGHTS = {{\n    {rows or '0'}\n}};\n"


def padded_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of `shape` read along the 6-D padded `out_shape` (0 where broadcast)."""
    padded = (1,) * (6 - len(shape)) + tuple(shape)
    out = (1,) * (6 - len(out_shape)) + tuple(out_shape)
    strides, step = [0] * 6, 1
    for axis in range(5, -1, -1):
        strides[axis] = step if padded[axis] != 1 or out[axis] == 1 else 0
        step *= padded[axis]
    return strides


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    if len(y.shape) > 6:
        raise MCUCError(f"{op.label}: rank {len(y.shape)} is beyond the supported 6")
    if y.dtype not in _CTYPES:
        raise MCUCError(f"{op.label}: {y.dtype} is not supported by the Cortex-M backend (int8, int16)")
    ctype = _CTYPES[y.dtype]
    in_ctypes = [_CTYPES.get(t.dtype, ctype) for t in (x1, x2)]  # PRELU int16: an int8 alpha
    name = site.name
    decls = [f"/* {c_comment(op.label)} */\n"]
    pointers = []
    for k, t in enumerate((x1, x2)):
        if t.is_constant:
            decls.append(c_array(in_ctypes[k], f"{name}_c{k + 1}", t.data))
            pointers.append(f"{name}_c{k + 1}")
        else:
            pointers.append(f"(const {in_ctypes[k]} *)(const void *)(arena + {arena_offset(program, t, op.label)})")
    extents = [1] * (6 - len(y.shape)) + list(y.shape)
    decls.append(c_array("int", f"{name}_e", extents))
    decls.append(c_array("int", f"{name}_s1", padded_strides(x1.shape, y.shape)))
    decls.append(c_array("int", f"{name}_s2", padded_strides(x2.shape, y.shape)))
    if op.kind == kinds.SQUARED_DIFFERENCE and y.dtype == "int16":
        # int16 (zero points 0, no left shift): each input's multiplier applied in C.
        p = squared_difference_params(op)
        body = (f"const int32_t d = mcuc_mbqm_small(in1[MCUC_IDX({name}_s1)], {p.input1_multiplier}, "
                f"{p.input1_shift}) - mcuc_mbqm_small(in2[MCUC_IDX({name}_s2)], {p.input2_multiplier}, "
                f"{p.input2_shift});\n"
                f"        const int32_t v = (int32_t)((uint32_t)mcuc_mbqm(d * d, {p.output_multiplier}, "
                f"{p.output_shift}) + (uint32_t)({p.output_offset}));\n"
                f"        out[o] = (int16_t)mcuc_clamp(v, -32768, 32767);")
    elif op.kind == kinds.SQUARED_DIFFERENCE:
        p = squared_difference_params(op)
        if site.first:
            values = np.arange(-128, 128)
            decls.append(c_array("int32_t", f"{site.fn}_t1",
                                 scaled_input(values, p.input1_offset, p.input1_multiplier, p.input1_shift)))
            decls.append(c_array("int32_t", f"{site.fn}_t2",
                                 scaled_input(values, p.input2_offset, p.input2_multiplier, p.input2_shift)))
        body = (f"const int32_t d = {site.fn}_t1[in1[MCUC_IDX({name}_s1)] + 128] - "
                f"{site.fn}_t2[in2[MCUC_IDX({name}_s2)] + 128];\n"
                f"        const int32_t v = (int32_t)((uint32_t)mcuc_mbqm(d * d, {p.output_multiplier}, "
                f"{p.output_shift}) + (uint32_t)({p.output_offset}));\n"
                f"        out[o] = (int8_t)mcuc_clamp(v, -128, 127);")
    elif op.kind == kinds.DIV:
        # what depends on the divisor alone is tabulated (mcuc.ir.ops.div.divisor_tables);
        # the dividend's leading sign bits, the high multiplies and the shift run here
        p = div_params(op)
        if site.first:
            negate, reciprocal, exponent = divisor_tables(op)
            decls.append(c_array("int32_t", f"{site.fn}_recip", reciprocal))
            decls.append(c_array("int8_t", f"{site.fn}_exp", exponent))
            decls.append(c_array("int8_t", f"{site.fn}_neg", negate))
        body = (f"const int at = in2[MCUC_IDX({name}_s2)] + 128;\n"
                f"        const int32_t d = in1[MCUC_IDX({name}_s1)] + ({p.input1_offset});\n"
                f"        const int32_t v = {site.fn}_neg[at] ? -d : d;\n"
                f"        const int h = mcuc_clsb32(v);\n"
                f"        const int32_t q = mcuc_srdhm(mcuc_shl_wrap(v, h), {site.fn}_recip[at]);\n"
                f"        const int32_t r = mcuc_rdbpot(mcuc_srdhm(q, {p.output_multiplier}), "
                f"h + {site.fn}_exp[at] - ({p.output_shift})) + ({p.output_offset});\n"
                f"        out[o] = (int8_t)mcuc_clamp(r, {op.attrs.act_min}, {op.attrs.act_max});")
    elif op.kind == kinds.PRELU:
        p = prelu_params(op)
        lo, hi = (-32768, 32767) if y.dtype == "int16" else (-128, 127)
        body = (f"const int32_t v = (int32_t)in1[MCUC_IDX({name}_s1)] - ({p.input_zero_point});\n"
                f"        const int32_t a = (int32_t)in2[MCUC_IDX({name}_s2)] - ({p.alpha_zero_point});\n"
                f"        const int32_t r = v >= 0 ? mcuc_mbqm(v, {p.multiplier1}, {p.shift1}) : "
                f"mcuc_mbqm(v * a, {p.multiplier2}, {p.shift2});\n"
                f"        out[o] = ({ctype})mcuc_clamp(r + ({p.output_zero_point}), {lo}, {hi});")
    else:
        sign = ">" if op.kind == kinds.MAXIMUM else "<"
        body = (f"const {ctype} a = in1[MCUC_IDX({name}_s1)];\n"
                f"        const {ctype} b = in2[MCUC_IDX({name}_s2)];\n"
                f"        out[o] = ({ctype})(a {sign} b ? a : b);")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n"
                 f"    const {in_ctypes[0]} *in1 = {pointers[0]};\n"
                 f"    const {in_ctypes[1]} *in2 = {pointers[1]};\n"
                 f"    {ctype} *out = ({ctype} *)(void *)(arena + {arena_offset(program, y, op.label)});\n"
                 f"    (void)arena;\n"
                 f"    MCUC_FOR6({name}_e, {{\n        {body}\n    }});\n}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)
