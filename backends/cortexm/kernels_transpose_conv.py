"""Cortex-M C for TRANSPOSE_CONV (int8, mcuc.ir.ops.transpose_conv).

int16 activations (16x8) sum in int64 and take TFLite's int64 output stage, in the gather
form. On DSP cores (int8, batch 1) it is the convolution it equals: `as_dilated_conv` gives a VALID,
stride-1 CONV_2D with the kernel flipped over a scratch image D of (out_h + kh - 1) x
(out_w + kw - 1) pixels holding input pixel (iy, ix) at (iy * stride_h + kh - 1 - pad_h,
ix * stride_w + kw - 1 - pad_w) and the input zero point everywhere else (so those taps
add nothing); `emit_dilation` fills D and kernels.py emits the convolution with its GEMM
kernels. Otherwise (portable cores, batches) `emit` gathers: for each output pixel the
taps whose input pixel exists (oy + pad_h - fy a multiple of stride_h inside the input,
likewise for columns), an int32 sum over the input channels per output channel, plus the
bias, then mcuc_mbqm per channel (TFLite's double rounding), the output zero point and
the activation clamp. Both are the reference's scatter sums reordered (exact integers);
neither needs tflite-micro's output-sized int32 scratch. `emit` returns (declarations,
call, runtime headers) for kernels.py's emitter table, as kernels_binary.py does."""
from __future__ import annotations

import numpy as np

from mcuc.ir.op import Op
from mcuc.ir.ops import kinds
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.batch_matmul import reduced_multiplier
from mcuc.ir.ops.transpose_conv import requant_params
from mcuc.ir.program import Program, Step
from mcuc.ir.tensor import Tensor

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
    wide = x.dtype == "int16"  # 16x8: int64 sums, TFLite's int64 output stage, no zero points
    ctype, acc_t = ("int16_t", "int64_t") if wide else ("int8_t", "int32_t")
    bias = op.inputs[2].data if len(op.inputs) > 2 and op.inputs[2] is not None else np.zeros(oc, np.int32)
    if site.first:
        decls.append(c_array("int8_t", f"{fn}_w", w.data))
        if wide:
            decls.append(c_array("int64_t", f"{fn}_b", bias))
            decls.append(c_array("int32_t", f"{fn}_m", reduced_multiplier(mult)))
            decls.append(c_array("int32_t", f"{fn}_s", 15 - np.asarray(shift, np.int64)))
        else:
            decls.append(c_array("int32_t", f"{fn}_b", bias))
            decls.append(c_array("int32_t", f"{fn}_m", mult))
            decls.append(c_array("int32_t", f"{fn}_s", shift))
    zp, out_zp = x.quant.scalar_zero_point, y.quant.scalar_zero_point
    inner = (_axis("oy", "fy", a.pad[0], a.stride[0], ih, "iy") + "".join(
        [f"for (fx = 0; fx < {kw}; fx++) {{\n"]) + _indent(
        _axis("ox", "fx", a.pad[1], a.stride[1], iw, "ix")
        + f"const {ctype} *px = in + ((b * {ih} + iy) * {iw} + ix) * {ic};\n"
        + f"const int8_t *pw = {fn}_w + ((c * {kh} + fy) * {kw} + fx) * {ic};\n"
        + f"for (k = 0; k < {ic}; k++) {{\n"
        + f"    acc += ((int32_t)px[k] - ({zp})) * (int32_t)pw[k];\n}}\n", 1) + "}\n")
    if wide:
        stage = (f"({ctype})mcuc_clamp((int32_t)(uint32_t)(uint64_t)((acc * {fn}_m[c] + "
                 f"((int64_t)1 << ({fn}_s[c] - 1))) >> {fn}_s[c]), {a.act_min}, {a.act_max})")
    else:
        stage = f"({ctype})mcuc_clamp(mcuc_mbqm(acc, {fn}_m[c], {fn}_s[c]) + ({out_zp}), {a.act_min}, {a.act_max})"
    body = (f"const {ctype} *in = (const {ctype} *)(const void *)(arena + {arena_offset(program, x, op.label)});\n"
            f"{ctype} *out = ({ctype} *)(void *)(arena + {arena_offset(program, y, op.label)});\n"
            "int b, oy, ox, c, fy, fx, k;\n"
            f"for (b = 0; b < {n}; b++) {{\n"
            f"    for (oy = 0; oy < {oh}; oy++) {{\n"
            f"        for (ox = 0; ox < {ow}; ox++) {{\n"
            f"            for (c = 0; c < {oc}; c++) {{\n"
            f"                {acc_t} acc = {fn}_b[c];\n"
            f"                for (fy = 0; fy < {kh}; fy++) {{\n"
            + _indent(inner, 5)
            + "                }\n"
            f"                *out++ = {stage};\n"
            "            }\n        }\n    }\n}\n")
    decls.append(f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{_indent(body, 1)}}}\n")
    return "".join(decls), f"{name}(arena);", (ELEMENTWISE_H,)


def as_dilated_conv(op: Op) -> Op | None:
    """The CONV_2D over the dilated image D computing this TRANSPOSE_CONV (batch 1), or None."""
    x, w = op.inputs[0], op.inputs[1]
    if op.kind != kinds.TRANSPOSE_CONV or x.shape[0] != 1 or x.dtype != "int8":
        return None
    a = op.attrs
    _, kh, kw, ic = w.shape
    image = Tensor(f"{x.name}/dilated", (1, a.out_hw[0] + kh - 1, a.out_hw[1] + kw - 1, ic), "int8", x.quant)
    flipped = Tensor(w.name, w.shape, "int8", w.quant, w.data[:, ::-1, ::-1, :])
    return Op(kinds.CONV_2D, (image, flipped, *op.inputs[2:]), op.outputs, Conv2DAttrs(act_min=a.act_min,
                                                                                      act_max=a.act_max),
              name=op.name)


def _placed(stride: int, offset: int, in_size: int, out_size: int) -> tuple[int, int]:
    """[first, last) input coordinates whose dilated position i * stride + offset lies in
    [0, out_size) (positions grow with i)."""
    inside = [i for i in range(in_size) if 0 <= i * stride + offset < out_size]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def emit_dilation(name: str, op: Op, image_offset: int, program: Program) -> tuple[str, str]:
    """(the function filling D, its call)."""
    a = op.attrs
    x, w = op.inputs[0], op.inputs[1]
    _, ih, iw, ic = x.shape
    _, kh, kw, _ = w.shape
    dh, dw = a.out_hw[0] + kh - 1, a.out_hw[1] + kw - 1
    off_h, off_w = kh - 1 - a.pad[0], kw - 1 - a.pad[1]
    y0, y1 = _placed(a.stride[0], off_h, ih, dh)
    x0, x1 = _placed(a.stride[1], off_w, iw, dw)
    zp = x.quant.scalar_zero_point
    body = (f"    const int8_t *in = (const int8_t *)(const void *)(arena + {arena_offset(program, x, op.label)});\n"
            f"    int8_t *image = (int8_t *)(void *)(arena + {image_offset});\n"
            "    int iy, ix;\n"
            f"    memset(image, {zp}, {dh * dw * ic}u);\n"
            f"    for (iy = {y0}; iy < {y1}; iy++) {{\n"
            f"        for (ix = {x0}; ix < {x1}; ix++) {{\n"
            f"            memcpy(image + ((iy * {a.stride[0]} + {off_h}) * {dw} + ix * {a.stride[1]} + {off_w})"
            f" * {ic},\n"
            f"                   in + (iy * {iw} + ix) * {ic}, {ic}u);\n"
            "        }\n    }\n")
    if y0 == y1 or x0 == x1:
        body = (f"    int8_t *image = (int8_t *)(void *)(arena + {image_offset});\n"
                f"    memset(image, {zp}, {dh * dw * ic}u);\n")
    decl = (f"/* {c_comment(op.label)}: the input dilated by the strides */\n"
            f"MCUC_STEP void {name}(uint8_t *arena)\n{{\n{body}}}\n")
    return decl, f"{name}(arena);"
