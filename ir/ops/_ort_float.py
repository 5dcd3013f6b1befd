"""Conv and matrix products that onnxruntime leaves in float between DequantizeLinear and
QuantizeLinear (ops with `ort_float`).

On x86-64 without VNNI onnxruntime converts int8 QDQ activations to uint8 one Q/DQ pair
at a time (single-consumer pairs only) and does not fuse a group whose tensors were
converted in part: it dequantizes, runs the float op and quantizes. MLAS's float conv
is an im2col GEMM: each output is a chain of float32 fused multiply-adds from zero over
the reduction axis in NCHW im2col order (input channel, then ky, then kx; one group at a
time), then the float bias is added, then QuantizeLinear. Matrix products chain over
the input depth the same way. Measured byte-exact against the pinned onnxruntime on
MobileNetV2- and ResNet-style networks.
"""
from __future__ import annotations

import numpy as np

from ..op import Op
from ..ort_numerics import fma_f32, int_to_f32, quantize_linear


def _dequantized(t, values: np.ndarray) -> np.ndarray:
    """DequantizeLinear: float32(q - zero_point) * scale (per channel along the last axis)."""
    scale = t.quant.scale.astype(np.float32)
    return int_to_f32(values.astype(np.int64) - t.quant.zero_point.astype(np.int64)) * scale


def _bias(op: Op, inputs: list[np.ndarray], channels: int) -> np.ndarray | None:
    if len(inputs) < 3 or inputs[2] is None:
        return None
    b_t = op.inputs[2]
    return int_to_f32(inputs[2].astype(np.int64)) * np.broadcast_to(b_t.quant.scale.astype(np.float32), (channels,))


def _quantize(op: Op, acc: np.ndarray) -> np.ndarray:
    y_t = op.output
    info = np.iinfo(np.dtype(y_t.dtype))
    y = quantize_linear(acc, y_t.quant.scale[0], y_t.quant.scalar_zero_point, int(info.min), int(info.max))
    return np.clip(y, op.attrs.act_min, op.attrs.act_max).astype(y_t.dtype)


def conv(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """CONV_2D (weights OHWI) as onnxruntime's float Conv computes it."""
    from .conv2d import groups, pad_spatial, windows

    a = op.attrs
    x = pad_spatial(_dequantized(op.inputs[0], inputs[0]), a.padding, 0.0)
    w = inputs[1]
    weights = _dequantized(op.inputs[1], np.moveaxis(w, 0, -1))  # [KH, KW, I, O]: scales along O
    _, oh, ow, oc = op.output.shape
    kh, kw, cin_g = w.shape[1], w.shape[2], w.shape[3]
    g = groups(op)
    cout_g = oc // g
    cols = windows(x, kh, kw, oh, ow, a.stride, a.dilation)  # [N, OH, OW, KH, KW, C]
    acc = np.zeros(op.output.shape, np.float32)
    for gi in range(g):
        out = slice(gi * cout_g, (gi + 1) * cout_g)
        part = acc[..., out]
        for c in range(cin_g):
            for ky in range(kh):
                for kx in range(kw):
                    part = fma_f32(weights[ky, kx, c, out], cols[:, :, :, ky, kx, gi * cin_g + c][..., None], part)
        acc[..., out] = part
    bias = _bias(op, inputs, oc)
    return _quantize(op, acc if bias is None else acc + bias)


def depthwise(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """DEPTHWISE_CONV_2D (weights [1, KH, KW, C*m]) as onnxruntime's float grouped Conv."""
    from .conv2d import pad_spatial, windows

    a = op.attrs
    x = pad_spatial(_dequantized(op.inputs[0], inputs[0]), a.padding, 0.0)
    weights = _dequantized(op.inputs[1], inputs[1][0])  # [KH, KW, C*m]
    _, oh, ow, oc = op.output.shape
    kh, kw = weights.shape[0], weights.shape[1]
    cols = windows(x, kh, kw, oh, ow, a.stride, a.dilation)
    source = np.repeat(np.arange(inputs[0].shape[3]), a.depth_multiplier)
    acc = np.zeros(op.output.shape, np.float32)
    for ky in range(kh):
        for kx in range(kw):
            acc = fma_f32(weights[ky, kx], cols[:, :, :, ky, kx, source], acc)
    bias = _bias(op, inputs, oc)
    return _quantize(op, acc if bias is None else acc + bias)


def fully_connected(op: Op, inputs: list[np.ndarray]) -> np.ndarray:
    """FULLY_CONNECTED (weights [units, depth]) as onnxruntime's float Gemm/MatMul."""
    w = inputs[1]
    rows = _dequantized(op.inputs[0], inputs[0]).reshape(-1, w.shape[1])
    weights = _dequantized(op.inputs[1], w.T)  # [depth, units]: scales along units
    acc = np.zeros((rows.shape[0], w.shape[0]), np.float32)
    for k in range(w.shape[1]):
        acc = fma_f32(rows[:, k:k + 1], weights[k], acc)
    bias = _bias(op, inputs, w.shape[0])
    return _quantize(op, acc if bias is None else acc + bias).reshape(op.output.shape)
