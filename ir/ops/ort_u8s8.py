"""onnxruntime's uint8 x int8 products on x86-64 with AVX2 and no VNNI.

There MLAS's u8s8 GEMM kernels multiply with vpmaddubsw: each pair of neighbouring
products along the reduction axis (k, k + 1 for even k) is summed in int16 with
saturation before the int32 accumulation; the zero-point correction zp * sum(w) is
exact. QLinearConv (every conv but the depthwise kernel with one output per channel),
QLinearMatMul and QGemm go through it whenever the activations are uint8 (or int8 QDQ
activations that onnxruntime converted to uint8). With 7-bit weights no pair saturates
and the result is the exact sum; with full-range weights it often does.

The reduction order is the GEMM's: (ky, kx, channel) for a conv on NHWC windows (one
group at a time), the input depth for FC. An odd last element pairs with a zero.
Values arrive as the IR's int8 (uint8 - 128).
"""
from __future__ import annotations

import numpy as np

from ..op import Op
from .common import groups, pad_spatial, windows

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def pair_saturating_dot(activations_u8: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum over pairs of sat16(a[k] w[k] + a[k+1] w[k+1]): activations [..., K] (uint8
    values), weights [O, K] (int8) -> [..., O]."""
    a = activations_u8.astype(np.int64)
    w = weights.astype(np.int64)
    if a.shape[-1] % 2:
        a = np.concatenate([a, np.zeros(a.shape[:-1] + (1,), np.int64)], axis=-1)
        w = np.concatenate([w, np.zeros((w.shape[0], 1), np.int64)], axis=-1)
    even = a[..., None, 0::2] * w[:, 0::2]
    odd = a[..., None, 1::2] * w[:, 1::2]
    return np.clip(even + odd, INT16_MIN, INT16_MAX).sum(axis=-1)


def conv_accumulator(op: Op, x: np.ndarray, w_ohwi: np.ndarray) -> np.ndarray:
    """int32 accumulators (before bias) of a CONV_2D as onnxruntime's u8s8 GEMM sums them."""
    a = op.attrs
    zero_point = op.inputs[0].quant.scalar_zero_point + 128
    padded = pad_spatial(x.astype(np.int64) + 128, a.padding, zero_point)
    _, oh, ow, oc = op.output.shape
    g = groups(op)
    cin_g, cout_g = w_ohwi.shape[3], oc // g
    acc = np.empty(op.output.shape, np.int64)
    for gi in range(g):
        cols = windows(padded[..., gi * cin_g:(gi + 1) * cin_g], w_ohwi.shape[1], w_ohwi.shape[2], oh, ow,
                       a.stride, a.dilation)
        wg = w_ohwi[gi * cout_g:(gi + 1) * cout_g].astype(np.int64).reshape(cout_g, -1)
        acc[..., gi * cout_g:(gi + 1) * cout_g] = (pair_saturating_dot(cols.reshape(*cols.shape[:3], -1), wg)
                                                   - zero_point * wg.sum(axis=1))
    return acc


def depthwise_accumulator(op: Op, x: np.ndarray, w_1hwc: np.ndarray) -> np.ndarray:
    """A DEPTHWISE_CONV_2D with a channel multiplier above 1 is a grouped conv to
    onnxruntime (one input channel per group): its GEMM sums the kh*kw taps in pairs."""
    a = op.attrs
    m = a.depth_multiplier
    zero_point = op.inputs[0].quant.scalar_zero_point + 128
    padded = pad_spatial(x.astype(np.int64) + 128, a.padding, zero_point)
    _, oh, ow, oc = op.output.shape
    kh, kw = w_1hwc.shape[1], w_1hwc.shape[2]
    cols = windows(padded, kh, kw, oh, ow, a.stride, a.dilation)  # [N, OH, OW, KH, KW, C]
    acc = np.empty(op.output.shape, np.int64)
    for c in range(x.shape[3]):
        taps = cols[..., c].reshape(*cols.shape[:3], kh * kw)
        wc = w_1hwc[0, :, :, c * m:(c + 1) * m].astype(np.int64).reshape(kh * kw, m).T
        acc[..., c * m:(c + 1) * m] = pair_saturating_dot(taps, wc) - zero_point * wc.sum(axis=1)
    return acc


def fully_connected_accumulator(op: Op, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[rows, units] accumulators (before bias) of a FULLY_CONNECTED."""
    zero_point = op.inputs[0].quant.scalar_zero_point + 128
    rows = (x.astype(np.int64) + 128).reshape(-1, w.shape[1])
    w64 = w.astype(np.int64)
    return pair_saturating_dot(rows, w64) - zero_point * w64.sum(axis=1)
