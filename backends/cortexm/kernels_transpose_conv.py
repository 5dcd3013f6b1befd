"""Cortex-M C for TRANSPOSE_CONV (int8, mcuc.ir.ops.transpose_conv) in gather form: for
each output pixel the taps whose input pixel exists (oy + pad_h - fy a multiple of
stride_h inside the input, likewise for columns), an int32 sum over the input channels
per output channel, plus the bias, then mcuc_mbqm per channel (TFLite's double rounding),
the output zero point and the activation clamp. The reference's scatter sums reordered
(exact integers): no int32 scratch the size of the output as tflite-micro takes. Portable
C on every core. `emit` returns (declarations, call, runtime headers) for kernels.py's
emitter table, as kernels_binary.py does."""
from __future__ import annotations

import numpy as np

from mcuc.ir.ops.transpose_conv import requant_params
from mcuc.ir.program import Program, Step

from .c_syntax import c_comment
from .kernels_binary import ELEMENTWISE_H, arena_offset, c_array


def _axis(o: str, f: str, pad: int, stride: int, size: int, i: str) -> str:
    """C that sets `i` to the input coordinate of output `o` under tap `f`, or continues."""
    t = f"{o} + {pad} - {f}"
    if stride == 1:
        return f"const int {i} = {t};\n" \
               f"if ({i} < 0 || {i} >= {size}) continue;\n"
    return f"const int t{i} = {t};\n" \
           f"if (t{i} < 0 || t{i} % {stride} != 0 || t{i} / {stride} >= {size}) continue;\n" \
           f"const int {i} = t{i} / {stride};\n"


def _indent(text: str, depth: int) -> str:
    pad = "    " * depth
    return "".join(pad + line + "\n" for line in text.splitlines())


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    a = op.attrs
    x, w, y = op.inputs[0], op.inputs[1], op.output
    n, ih, iw, ic = x.shape
    oc, kh, kw, _ = w.shape
    oh, ow = a.out_hw
    name, fn = site.name, site.fn
    decls = [f"/* {c_comment(op.label)} */\n"]
    mult, shift = requant_params(op)
    bias = op.inputs[2].data if len(op.inputs) > 2 and op.inputs[2] is not None else np.zeros(oc, np.int32)
    if site.first:
        decls.append(c_array("int8_t", f"{fn}_w", w.data))
        decls.append(c_array("int32_t", f"{fn}_b", bias))
        decls.append(c_array("int32_t", f"{fn}_m", mult))
        decls.append(c_array("int32_t", f"{fn}_s", shift))
    zp, out_zp = x.quant.scalar_zero_point, y.quant.scalar_zero_point
    inner = (_axis("oy", "fy", a.pad[0], a.stride[0], ih, "iy") + "".join(
        [f"for (fx = 0; fx < {kw}; fx++) {{\n"]) + _indent(
        _axis("ox", "fx", a.pad[1], a.stride[1], iw, "ix")
        + f"const int8_t *px = in + ((b * {ih} + iy) * {iw} + ix) * {ic};\n"
        + f"const int8_t *pw = {fn}_w + ((c * {kh} + fy) * {kw} + fx) * {ic};\n"
        + f"for (k = 0; k < {ic}; k++) {{\n"
        + f"    acc += ((int32_t)px[k] - ({zp})) * (int32_t)pw[k];\n}}\n", 1) + "}\n")
    body = (f"const int8_t *in = (const int8_t *)(const void *)(arena + {arena_offset(program, x, op.label)});\n"
            f"int8_t *out = (int8_t *)(void *)(arena + {arena_offset(program, y, op.label)});\n"
            "int b, oy, ox, c, fy, fx, k;\n"
            f"for (b = 0; b < {n}; b++) {{\n"
            f"    for (oy = 0; oy < {oh}; oy++) {{\n"
            f"        for (ox = 0; ox < {ow}; ox++) {{\n"
            f"            for (c = 0; c < {oc}; c++) {{\n"
            f"                int32_t acc = {fn}_b[c];\n"
            f"                for (fy = 0; fy < {kh}; fy++) {{\n"
            + _indent(inner, 5)
            + "                }\n"
            f"                *out++ = (int8_t)mcuc_clamp(mcuc_mbqm(acc, {fn}_m[c], {fn}_s[c]) + ({out_zp}), "
            f"{a.act_min}, {a.act_max});\n"
            "            }\n        }\n    }\n}\n")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{_indent(body, 1)}}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)
