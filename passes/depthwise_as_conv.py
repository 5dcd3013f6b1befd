"""depthwise_as_conv: a DEPTHWISE_CONV_2D over one input channel with a depth multiplier M
above 1 becomes the CONV_2D with M output channels that it is (exact, every backend).

With one input channel, output channel m sums w[0, ky, kx, m] * x over the window, as
output channel m of a convolution with OHWI weights w'[m, ky, kx, 0] does; TFLite's two
reference kernels skip the same padding taps, add the same int32 bias and take the same
per-channel Q31 stage (input scale x weight scale of channel m, over the output scale),
so every output byte is the same. The convolution runs on the GEMM kernels (im2col over
kh x kw taps) where the depthwise kernels have no fast path for a multiplier: the keyword
spotter micro_speech (a 10x8 window, multiplier 8) took 6 instructions per MAC.

Only TFLite's int8 rule (a 16x8 depthwise takes an int64 bias only, onnxruntime's
depthwise groups are their own), and only a multiplier above 1 (one channel in and out
runs faster on the depthwise channel-plane kernel), of a batch of 1.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, Op, Tensor
from mcuc.ir.numerics import TFLiteQ31
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.kinds import CONV_2D, DEPTHWISE_CONV_2D
from mcuc.ir.tensor import Quantization


def is_single_channel_multiplier(op: Op) -> bool:
    if op.kind != DEPTHWISE_CONV_2D or op.inputs[0].dtype != "int8":
        return False
    a = op.attrs
    # (batch 1: the Cortex-M convolutions take one image, its depthwise kernels more)
    x = op.inputs[0]
    return isinstance(a.numerics, TFLiteQ31) and x.shape[0] == 1 and x.shape[3] == 1 and a.depth_multiplier > 1


def as_conv(op: Op) -> Op:
    """The CONV_2D equal to single-channel depthwise `op`."""
    w, a = op.inputs[1], op.attrs
    q = w.quant
    # [1, kh, kw, M] -> [M, kh, kw, 1]; per-channel scales move from axis 3 to axis 0
    weights = Tensor(w.name, (w.shape[3], w.shape[1], w.shape[2], 1), w.dtype,
                     None if q is None else Quantization(q.scale, q.zero_point, axis=0),
                     np.transpose(w.data, (3, 1, 2, 0)))
    attrs = Conv2DAttrs(stride=a.stride, dilation=a.dilation, padding=a.padding, act_min=a.act_min,
                        act_max=a.act_max, numerics=a.numerics)
    return op.with_(kind=CONV_2D, inputs=(op.inputs[0], weights) + op.inputs[2:], attrs=attrs)


def depthwise_as_conv(graph: Graph) -> Graph:
    """The graph with every single-channel multiplier depthwise as its convolution."""
    if not any(is_single_channel_multiplier(op) for op in graph.ops):
        return graph
    return graph.with_(ops=tuple(as_conv(op) if is_single_channel_multiplier(op) else op for op in graph.ops))
