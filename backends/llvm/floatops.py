"""onnxruntime's float-scale requantization as LLVM IR: the same float32 operations in
the same order as mcuc.ir.ort_numerics (the IR's "onnxruntime" rounding rule).

LLVM never fuses or reorders float operations without fast-math flags, and none are
set here, so every fmul/fadd/fdiv rounds once as the numpy twin does; fused
multiply-adds are explicit llvm.fma calls (one rounding, as onnxruntime's FMA kernels).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from .emitter import F32, I32, Emitter


def f32(value: float) -> ir.Constant:
    return ir.Constant(F32, float(np.float32(value)))


def int_to_f32(em: Emitter, v: ir.Value) -> ir.Value:
    """(float)int32, rounding to nearest even."""
    return em.b.sitofp(v, F32)


def round_half_even(em: Emitter, v: ir.Value) -> ir.Value:
    """cvtps2dq: nearest integer, ties to even, as i32 (v must be in int32 range)."""
    fn = em.ctx.intrinsic("llvm.roundeven.f32", F32, [F32])
    return em.b.fptosi(em.b.call(fn, [v]), I32)


def fmax(em: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return em.b.select(em.b.fcmp_ordered(">", a, b), a, b)


def fmin(em: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    return em.b.select(em.b.fcmp_ordered("<", a, b), a, b)


def fma(em: Emitter, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    fn = em.ctx.intrinsic("llvm.fma.f32", F32, [F32, F32, F32])
    return em.b.call(fn, [a, b, c])


def quantize_linear(em: Emitter, x: ir.Value, scale: float, zero_point: int, lo: int, hi: int) -> ir.Value:
    """MlasQuantizeLinear of one float32 value (ort_numerics.quantize_linear): x / scale,
    clamped to [lo - zp, hi - zp], rounded half to even, plus the zero point."""
    q = em.b.fdiv(x, f32(scale))
    clamped = fmin(em, fmax(em, q, f32(lo - zero_point)), f32(hi - zero_point))  # NaN compares false: -> lo - zp
    return em.add(round_half_even(em, clamped), zero_point)


def requantize_output(em: Emitter, acc: ir.Value, scale: ir.Value, zero_point: int, lo: int, hi: int) -> ir.Value:
    """MlasRequantizeOutput: float32(acc) * scale, clamped to [lo - zp, hi - zp], rounded
    half to even, plus the zero point (an i32 in [lo, hi])."""
    product = em.b.fmul(int_to_f32(em, acc), scale)
    clamped = fmin(em, fmax(em, product, f32(lo - zero_point)), f32(hi - zero_point))
    return em.add(round_half_even(em, clamped), zero_point)


class FloatChannelRequant:
    """The onnxruntime output stage of conv/depthwise/FC: per-channel float32 scales
    (ort_numerics.channel_scales) as a constant global, then the op's clamp."""

    def __init__(self, em: Emitter, scales: np.ndarray, zero_point: int, dtype_lo: int, dtype_hi: int,
                 act_min: int, act_max: int, hint: str):
        self.em = em
        scales = np.asarray(scales, np.float32)
        self.uniform = bool(np.all(scales == scales[0]))
        self.scale = f32(scales[0]) if self.uniform else em.const_ptr(scales, f"{hint}.scale")
        self.zero_point, self.lo, self.hi = int(zero_point), int(dtype_lo), int(dtype_hi)
        self.act_min, self.act_max = int(act_min), int(act_max)

    def __call__(self, acc: ir.Value, channel: ir.Value) -> ir.Value:
        em = self.em
        scale = self.scale if self.uniform else em.load(self.scale, channel)
        y = requantize_output(em, acc, scale, self.zero_point, self.lo, self.hi)
        return em.clamp(y, self.act_min, self.act_max)
