"""Cortex-M C for RESIZE_BILINEAR (int8, mcuc.ir.ops.resize_bilinear): per output row and
column the two source rows / columns (as element offsets) and the fraction come from the
op module's tables; each output sums the four corners' products in int32 (at most 2048^2
x 128 in magnitude), rounds half away from zero by 2^20 and wraps to int8, as the
reference does. Portable C on every core; inside a patch stage each region call has its
own tables. `emit` returns (declarations, call, runtime headers) for kernels.py's emitter
table, as kernels_binary.py does."""
from __future__ import annotations

from mcuc.ir.ops.resize_bilinear import tables
from mcuc.ir.program import Program, Step

from .c_syntax import c_comment
from .kernels_binary import ELEMENTWISE_H, arena_offset, c_array


def emit(site, step: Step, program: Program) -> tuple[str, str, tuple[str, ...]]:
    op = step.op
    x, y = op.input, op.output
    n, ih, iw, c = x.shape
    _, oh, ow, _ = y.shape
    name = site.name
    decls = [f"/* {c_comment(op.label)} */\n"]
    ty, tx = tables(op)
    # per call: a patch stage's region calls carry their own tables
    decls.append(c_array("int32_t", f"{name}_y", [[lo * iw * c, hi * iw * c, f] for lo, hi, f in ty.tolist()]))
    decls.append(c_array("int32_t", f"{name}_x", [[lo * c, hi * c, f] for lo, hi, f in tx.tolist()]))
    body = (f"    const int8_t *in = (const int8_t *)(const void *)(arena + {arena_offset(program, x, op.label)});\n"
            f"    int8_t *out = (int8_t *)(void *)(arena + {arena_offset(program, y, op.label)});\n"
            "    int b, oy, ox, k;\n"
            f"    for (b = 0; b < {n}; b++) {{\n"
            f"        const int8_t *image = in + b * {ih * iw * c};\n"
            f"        for (oy = 0; oy < {oh}; oy++) {{\n"
            f"            const int8_t *r0 = image + {name}_y[3 * oy], *r1 = image + {name}_y[3 * oy + 1];\n"
            f"            const int32_t fy = {name}_y[3 * oy + 2];\n"
            f"            for (ox = 0; ox < {ow}; ox++) {{\n"
            f"                const int32_t c0 = {name}_x[3 * ox], c1 = {name}_x[3 * ox + 1];\n"
            f"                const int32_t fx = {name}_x[3 * ox + 2];\n"
            "                const int32_t w00 = (1024 - fy) * (1024 - fx), w10 = fy * (1024 - fx);\n"
            "                const int32_t w01 = (1024 - fy) * fx, w11 = fy * fx;\n"
            f"                for (k = 0; k < {c}; k++) {{\n"
            "                    const int32_t s = r0[c0 + k] * w00 + r1[c0 + k] * w10 + r0[c1 + k] * w01 + "
            "r1[c1 + k] * w11;\n"
            "                    const int32_t q = (s + (s > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20);\n"
            "                    *out++ = (int8_t)(uint8_t)(uint32_t)q;\n"
            "                }\n            }\n        }\n    }\n")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{body}}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)
