"""Elementwise ops: ADD and MUL (with broadcasting), the unary int8/int16 maps as
lookup tables, and QUANTIZE from float32.

A unary op on an 8- or 16-bit input is a function of one integer with at most 65536
values, so its table is computed at compile time by running the op's own reference
`evaluate` over every input value: exact by construction, whatever the op's fixed-point
algorithm (LOGISTIC, HARD_SWISH, RELU, RELU6, requantizing QUANTIZE, DEQUANTIZE,
LOOKUP_TABLE).

In-place steps (output over an input at the same offset) need nothing special here:
every kernel reads element i before it writes element i.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.errors import MCUCError
from mcuc.ir.numerics import OrtFloat, OrtInteger, TFLiteQ31, uint8_offset
from mcuc.ir.ops import kinds, op_def
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.add import add_params
from mcuc.ir.ops.add_n import LEFT_SHIFT, AddNParams, add_n_params
from mcuc.ir.ops.mul import mul_params
from mcuc.ir.ort_numerics import fma_f32

from ..codegen import KernelCall
from ..emitter import F32, I32, strides_of
from ..fixedpoint import multiply_by_quantized_multiplier, split_shift
from ..floatops import f32, fma, fmax, fmin, int_to_f32, quantize_linear, round_half_even
from . import register

INT32_MIN = -(2**31)


def broadcast_strides(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of an input read in the output's index space (0 on broadcast axes)."""
    rank = len(out_shape)
    padded = (1,) * (rank - len(in_shape)) + tuple(in_shape)
    strides = strides_of(padded)
    return [0 if d == 1 and o != 1 else s for d, o, s in zip(padded, out_shape, strides)]


def _binary_loop(call: KernelCall, body) -> None:
    """Loop over the output of a two-input broadcasting op; body(x1, x2) -> i32 value."""
    em, op = call.em, call.op
    a_t, b_t, y_t = op.inputs[0], op.inputs[1], op.output
    a_ptr, b_ptr, y_ptr = call.value_ptr(a_t), call.value_ptr(b_t), call.ptr(y_t)
    if a_t.shape == y_t.shape and b_t.shape == y_t.shape:
        # No broadcasting: one flat loop the vectorizer handles best.
        shape, sa, sb = [y_t.size], [1], [1]
    else:
        shape = list(y_t.shape)
        sa, sb = broadcast_strides(a_t.shape, y_t.shape), broadcast_strides(b_t.shape, y_t.shape)
    sy = strides_of(shape)
    with em.nest(shape, "e") as idx:
        xa = em.load_i32(a_ptr, em.index(list(zip(idx, sa))), a_t.dtype)
        xb = em.load_i32(b_ptr, em.index(list(zip(idx, sb))), b_t.dtype)
        em.store(em.narrow(body(xa, xb), y_t.dtype), y_ptr, em.index(list(zip(idx, sy))))


def _float_result(em, v: ir.Value, offset: int, y_t, act_min: int, act_max: int) -> ir.Value:
    """rne(v) - offset saturated to the output type, then the op's clamp. v is first
    bounded to +-2^30 (far outside every output range) so the conversion is defined."""
    lo, hi = dtype_range(y_t.dtype)
    bounded = fmin(em, fmax(em, v, f32(-2.0**30)), f32(2.0**30))
    y = em.clamp(em.add(round_half_even(em, bounded), -offset), lo, hi)
    return em.clamp(y, act_min, act_max)


def _sum_rescaled(em, v: ir.Value, p: AddNParams) -> ir.Value:
    """mcuc.ir.ops.add_n.rescaled: (v << 20) times the input multiplier."""
    return multiply_by_quantized_multiplier(em, em.b.shl(v, em.i32(LEFT_SHIFT)), p.input_multiplier, 0,
                                            -p.input_shift)


def _sum_output(em, total: ir.Value, p: AddNParams) -> ir.Value:
    """mcuc.ir.ops.add_n.output_of: the sum rescaled, offset, clamped to int8."""
    scaled = multiply_by_quantized_multiplier(em, total, p.output_multiplier, 0, -p.output_shift)
    return em.clamp(em.add(scaled, p.output_offset), -128, 127)


@register(kinds.ADD_N)
def add_n(call: KernelCall) -> None:
    """TFLM's int8 ADD_N (mcuc.ir.ops.add_n): every input shifted left by 20 bits and
    rescaled, summed after the rescaled input offset, rescaled to the output."""
    em, op = call.em, call.op
    p = add_n_params(op)
    ptrs = [call.value_ptr(t) for t in op.inputs]
    y_t = op.output
    y_ptr = call.ptr(y_t)
    with em.loop(y_t.size, "e") as i:
        total = _sum_rescaled(em, em.i32(p.input_offset), p)
        for t, ptr in zip(op.inputs, ptrs):
            total = em.b.add(total, _sum_rescaled(em, em.add(em.load_i32(ptr, i, t.dtype), p.input_offset), p))
        em.store(em.narrow(_sum_output(em, total, p), y_t.dtype), y_ptr, i)


def pair_table(op) -> np.ndarray:
    """The int8 output of a two-input int8 op for every (x1, x2), indexed by
    (x1's raw bits << 8) | x2's raw bits, from the op's reference evaluate on a 1-D proxy
    holding every pair once."""
    raw = np.arange(65536, dtype=np.int64)
    x1, x2 = (raw >> 8).astype(np.uint8).view(np.int8), (raw & 0xFF).astype(np.uint8).view(np.int8)
    proxy = op.with_(inputs=tuple(t.with_(shape=(65536,)) for t in op.inputs),
                     outputs=(op.output.with_(shape=(65536,)),))
    return np.asarray(op_def(op.kind).evaluate(proxy, [x1, x2])[0], np.int8)


@register(kinds.DIV)
def div(call: KernelCall) -> None:
    """TFLM's int8 DIV (mcuc.ir.ops.div): a 65536-entry table of the reference over every
    operand pair (64 KB on the host), read with broadcasting."""
    em = call.em
    b = em.b
    table = em.const_ptr(pair_table(call.op), call.hint("div"))

    def body(x1: ir.Value, x2: ir.Value) -> ir.Value:
        index = b.or_(b.shl(b.and_(x1, em.i32(0xFF)), em.i32(8)), b.and_(x2, em.i32(0xFF)))
        return b.sext(em.load(table, b.zext(index, em.i64(0).type)), I32)

    _binary_loop(call, body)


@register(kinds.CUMSUM)
def cumsum(call: KernelCall) -> None:
    """TFLM's int8 CUMSUM (mcuc.ir.ops.cumsum): per line along the axis, the wrapping
    int32 sum from the rescaled input offset, each output rescaled after (or, exclusive,
    before) its element."""
    from mcuc.ir.ops.cumsum import cumsum_params

    em, op = call.em, call.op
    b = em.b
    p = cumsum_params(op)
    x_t, y_t = op.input, op.output
    axis = op.attrs.axis % len(x_t.shape)
    pre, depth = int(np.prod(x_t.shape[:axis], dtype=np.int64)), x_t.shape[axis]
    post = int(np.prod(x_t.shape[axis + 1:], dtype=np.int64))
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    total = em.slot(I32, "total")
    with em.loop(pre, "pre") as i, em.loop(post, "post") as k:
        b.store(_sum_rescaled(em, em.i32(p.input_offset), p), total)
        with em.loop(depth, "d") as d:
            step = b.sub(em.i64(depth - 1), d) if op.attrs.reverse else d
            at = em.index([(i, depth * post), (step, post), (k, 1)])
            value = _sum_rescaled(em, em.add(em.load_i32(x_ptr, at, x_t.dtype), p.input_offset), p)
            before = b.load(total)
            after = b.add(before, value)
            b.store(after, total)
            out = before if op.attrs.exclusive else after
            em.store(em.narrow(_sum_output(em, out, p), y_t.dtype), y_ptr, at)


@register(kinds.ADD, numerics=TFLiteQ31)
def add(call: KernelCall) -> None:
    """TFLM's int8 ADD: both inputs shifted left by 20 bits and rescaled to twice the
    larger input scale, summed, then rescaled to the output."""
    _rescaled_binary(call, call.em.b.add)


@register(kinds.SUB, numerics=TFLiteQ31)
def sub(call: KernelCall) -> None:
    """TFLM's int8/int16 SUB: ADD's two-stage rescale, joined by a difference."""
    _rescaled_binary(call, call.em.b.sub)


def _rescaled_binary(call: KernelCall, combine) -> None:
    """mcuc.ir.ops.add.evaluate_rescaled: both inputs offset, shifted left and rescaled
    onto twice the larger input scale, joined by `combine`, rescaled to the output."""
    em, op = call.em, call.op
    p = add_params(op)
    a = op.attrs

    def rescale(x: ir.Value, offset: int, multiplier: int, shift: int) -> ir.Value:
        shifted = em.b.shl(em.add(x, offset), em.i32(p.left_shift))
        return multiply_by_quantized_multiplier(em, shifted, multiplier, 0, -shift)

    def body(x1: ir.Value, x2: ir.Value) -> ir.Value:
        s1 = rescale(x1, p.input1_offset, p.input1_multiplier, p.input1_shift)
        s2 = rescale(x2, p.input2_offset, p.input2_multiplier, p.input2_shift)
        raw = multiply_by_quantized_multiplier(em, combine(s1, s2), p.output_multiplier, 0, -p.output_shift)
        return em.clamp(em.add(raw, p.output_offset), a.act_min, a.act_max)

    _binary_loop(call, body)


@register(kinds.ADD, numerics=OrtInteger)
def add_onnxruntime(call: KernelCall) -> None:
    """onnxruntime's QLinearAdd in float32 (mcuc.ir.ops.add.evaluate_onnxruntime): the
    constant part computed here exactly as the reference does, the rest as fused
    multiply-adds (a one-element input goes through one more)."""
    em, op = call.em, call.op
    a = op.attrs
    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    off = uint8_offset(a)
    sa, sb, sc = (np.float32(t.quant.scale[0]) for t in (x1, x2, y_t))
    za, zb, zc = (np.float32(t.quant.scalar_zero_point + off) for t in (x1, x2, y_t))
    ra, rb = np.float32(sa / sc), np.float32(sb / sc)
    fixed = np.float32(zc - fma_f32(ra, za, np.float32(rb * zb)))

    def body(v1: ir.Value, v2: ir.Value) -> ir.Value:
        va, vb = int_to_f32(em, em.add(v1, off)), int_to_f32(em, em.add(v2, off))
        if x1.size == 1 and x2.size != 1:
            v = fma(em, vb, f32(rb), fma(em, va, f32(ra), f32(fixed)))
        elif x2.size == 1 and x1.size != 1:
            v = fma(em, va, f32(ra), fma(em, vb, f32(rb), f32(fixed)))
        else:
            v = fma(em, va, f32(ra), fma(em, vb, f32(rb), f32(fixed)))
        return _float_result(em, v, off, y_t, a.act_min, a.act_max)

    _binary_loop(call, body)


@register(kinds.ADD, numerics=OrtFloat)
def add_onnxruntime_float(call: KernelCall) -> None:
    """DequantizeLinear -> float Add -> QuantizeLinear as onnxruntime runs it unfused
    (mcuc.ir.ops.add.evaluate_onnxruntime_float): float32(x - zp) * scale per input,
    one float32 sum, then QuantizeLinear of the sum and the op's clamp."""
    em, op = call.em, call.op
    a = op.attrs
    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    lo, hi = dtype_range(y_t.dtype)
    zp = y_t.quant.scalar_zero_point
    b = em.b

    def real(v: ir.Value, t) -> ir.Value:
        return b.fmul(int_to_f32(em, em.add(v, -t.quant.scalar_zero_point)), f32(t.quant.scale[0]))

    def body(v1: ir.Value, v2: ir.Value) -> ir.Value:
        total = b.fadd(real(v1, x1), real(v2, x2))
        y = quantize_linear(em, total, y_t.quant.scale[0], zp, lo, hi)
        return em.clamp(y, a.act_min, a.act_max)

    _binary_loop(call, body)


@register(kinds.MUL, numerics=OrtFloat)
def mul_onnxruntime_float(call: KernelCall) -> None:
    """DequantizeLinear -> float Mul -> QuantizeLinear (mcuc.ir.ops.mul's float branch):
    float32(x - zp) * scale per input, one float32 product, QuantizeLinear, the clamp."""
    em, op = call.em, call.op
    a = op.attrs
    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    lo, hi = dtype_range(y_t.dtype)
    b = em.b

    def real(v: ir.Value, t) -> ir.Value:
        return b.fmul(int_to_f32(em, em.add(v, -t.quant.scalar_zero_point)), f32(t.quant.scale[0]))

    def body(v1: ir.Value, v2: ir.Value) -> ir.Value:
        y = quantize_linear(em, b.fmul(real(v1, x1), real(v2, x2)), y_t.quant.scale[0],
                            y_t.quant.scalar_zero_point, lo, hi)
        return em.clamp(y, a.act_min, a.act_max)

    _binary_loop(call, body)


@register(kinds.MUL, numerics=OrtInteger)
def mul_onnxruntime(call: KernelCall) -> None:
    """onnxruntime's QLinearMul: float32(exact product of the centred inputs) * ratio +
    float(zc + offset), rounded half to even."""
    em, op = call.em, call.op
    a = op.attrs
    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    sa, sb, sc = (np.float32(t.quant.scale[0]) for t in (x1, x2, y_t))
    ratio = np.float32(np.float32(sa * sb) / sc)
    zero = np.float32(y_t.quant.scalar_zero_point + uint8_offset(a))
    b = em.b

    def body(v1: ir.Value, v2: ir.Value) -> ir.Value:
        product = b.mul(em.add(v1, -x1.quant.scalar_zero_point), em.add(v2, -x2.quant.scalar_zero_point))
        v = b.fadd(b.fmul(int_to_f32(em, product), f32(ratio)), f32(zero))
        return _float_result(em, v, uint8_offset(a), y_t, a.act_min, a.act_max)

    _binary_loop(call, body)


@register(kinds.MUL, numerics=TFLiteQ31)
def mul(call: KernelCall) -> None:
    em, op = call.em, call.op
    p = mul_params(op)
    a = op.attrs
    (left,), (right,) = split_shift([p.output_shift])

    def body(x1: ir.Value, x2: ir.Value) -> ir.Value:
        product = em.b.mul(em.add(x1, p.input1_offset), em.add(x2, p.input2_offset))
        y = multiply_by_quantized_multiplier(em, product, p.output_multiplier, int(left), int(right))
        return em.clamp(em.add(y, p.output_offset), a.act_min, a.act_max)

    _binary_loop(call, body)


def unary_table(op, index: int) -> np.ndarray:
    """The op's output for every value of its 8- or 16-bit input, in the order of the
    input's raw bits read as unsigned (so the table is indexed by zero-extended input),
    computed with the op's reference evaluate on a one-dimensional proxy of the op
    holding every input value once (elementwise ops evaluate any shape, as the patch
    interpreter's region proxies rely on)."""
    x_t, y_t = op.input, op.output
    lo, hi = dtype_range(x_t.dtype)
    values = np.arange(lo, hi + 1, dtype=np.int64).astype(x_t.dtype)
    proxy = op.with_(inputs=(x_t.with_(shape=values.shape),) + tuple(op.inputs[1:]),
                     outputs=(y_t.with_(shape=values.shape),))
    outputs = np.asarray(op_def(op.kind).evaluate(proxy, [values])[0])
    if outputs.shape != values.shape or outputs.dtype != np.dtype(y_t.dtype):
        raise MCUCError(f"step {index} {op.label}: evaluating it on all {values.size} input values gave "
                        f"{outputs.dtype}{list(outputs.shape)}; it cannot be compiled as a lookup table")
    # Reorder from signed order (lo..hi) to raw-bit order (0..2^bits-1).
    raw_order = values.view(np.dtype(f"uint{8 * values.itemsize}")).astype(np.int64)
    table = np.empty_like(outputs)
    table[raw_order] = outputs
    return table


def _lookup(call: KernelCall) -> None:
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    table = em.const_ptr(unary_table(op, call.index), call.hint("table"))
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    with em.loop(x_t.size, "e") as i:
        raw = em.b.zext(em.load(x_ptr, i), em.i64(0).type)
        em.store(em.load(table, raw), y_ptr, i)


@register(kinds.RELU, kinds.RELU6, kinds.LOGISTIC, kinds.HARD_SWISH, kinds.DEQUANTIZE, kinds.LOOKUP_TABLE,
          kinds.ABS, kinds.LEAKY_RELU, kinds.TANH, kinds.ELU, kinds.RSQRT)
def lookup_unary(call: KernelCall) -> None:
    if np.dtype(call.op.input.dtype).itemsize > 2 or call.op.input.dtype == "float32":
        raise MCUCError(f"step {call.index} {call.op.label}: input dtype {call.op.input.dtype} is not supported "
                        "by the llvm backend (8- or 16-bit integer inputs only)")
    _lookup(call)


@register(kinds.QUANTIZE, numerics=OrtInteger)
def quantize_onnxruntime(call: KernelCall) -> None:
    """QuantizeLinear of a float32 input; an integer input is a table like TFLite's."""
    if call.op.input.dtype == "float32":
        _quantize_linear(call)
    else:
        quantize(call)


@register(kinds.QUANTIZE, numerics=TFLiteQ31)
def quantize(call: KernelCall) -> None:
    op = call.op
    if op.input.dtype == "float32":
        _quantize_float(call)
    elif np.dtype(op.input.dtype).itemsize <= 2:
        _lookup(call)
    else:
        raise MCUCError(f"step {call.index} {op.label}: QUANTIZE from {op.input.dtype} is not supported "
                        "by the llvm backend")


def _quantize_linear(call: KernelCall) -> None:
    """onnxruntime's QuantizeLinear: x / scale in float32, clamped to the output range
    around the zero point (NaN -> the low end), rounded half to even, + zero point."""
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    lo, hi = dtype_range(y_t.dtype)
    zp = y_t.quant.scalar_zero_point
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    with em.loop(x_t.size, "e") as i:
        y = quantize_linear(em, em.load(x_ptr, i), y_t.quant.scale[0], zp, lo, hi)
        em.store(em.narrow(y, y_t.dtype), y_ptr, i)


def _quantize_float(call: KernelCall) -> None:
    """round(x / scale) in float32 (roundf: ties away from zero), C's cast to int32 as
    x86-64 executes it (out of range or NaN -> INT32_MIN), + zero point, clamp."""
    em, op = call.em, call.op
    x_t, y_t = op.input, op.output
    b = em.b
    scale = ir.Constant(F32, float(np.float32(y_t.quant.scale[0])))
    roundf = em.ctx.intrinsic("llvm.round.f32", F32, [F32])
    lo, hi = dtype_range(y_t.dtype)
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    with em.loop(x_t.size, "e") as i:
        q = b.call(roundf, [b.fdiv(em.load(x_ptr, i), scale)])
        inside = b.and_(b.fcmp_ordered(">=", q, ir.Constant(F32, -2.0**31)),
                        b.fcmp_ordered("<", q, ir.Constant(F32, 2.0**31)))
        as_int = b.select(inside, b.fptosi(q, I32), em.i32(INT32_MIN))
        y = em.clamp(em.add(as_int, y_t.quant.scalar_zero_point), lo, hi)
        em.store(em.narrow(y, y_t.dtype), y_ptr, i)

