"""Random stage graphs for the patch tests: chains and residual blocks of convolutions
(kernels 1-7, strides 1-2, dilation 1-2, asymmetric padding), depthwise convolutions,
pooling, PAD, concatenations of branches and nearest-neighbour resizes, built directly
from mcuc.ir (every op checked by its own infer_shapes)."""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, MCUCError, Tensor
from mcuc.ir.ops.common import Padding2D, window_output_size
from mcuc.ir.ops.add import AddAttrs
from mcuc.ir.ops.concatenation import ConcatAttrs
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.depthwise_conv2d import DepthwiseConv2DAttrs
from mcuc.ir.ops.pad import PadAttrs
from mcuc.ir.ops.pool2d import Pool2DAttrs
from mcuc.ir.ops.resize_nearest import ResizeNearestAttrs

from tests.support.memory_graphs import GraphBuilder


def _window(rng: np.random.Generator, size: tuple[int, int], max_kernel: int):
    """Random (kernel, stride, dilation, padding) that leave an output of at least 1x1."""
    for _ in range(20):
        kernel = tuple(int(rng.integers(1, max_kernel + 1)) for _ in range(2))
        stride = tuple(int(rng.choice([1, 2])) for _ in range(2))
        dilation = tuple(int(rng.choice([1, 1, 2])) for _ in range(2))
        pads = [int(rng.integers(0, (k - 1) * d + 1)) for k, d in zip(kernel, dilation) for _ in range(2)]
        padding = Padding2D(pads[0], pads[1], pads[2], pads[3])
        oh = window_output_size(size[0], kernel[0], stride[0], dilation[0], padding.top, padding.bottom)
        ow = window_output_size(size[1], kernel[1], stride[1], dilation[1], padding.left, padding.right)
        if oh >= 1 and ow >= 1:
            return kernel, stride, dilation, padding
    return (1, 1), (1, 1), (1, 1), Padding2D()


def _conv(b: GraphBuilder, x: Tensor, cout: int, max_kernel: int = 7) -> Tensor:
    kernel, stride, dilation, padding = _window(b.rng, x.shape[1:3], max_kernel)
    attrs = Conv2DAttrs(stride=stride, dilation=dilation, padding=padding)
    return b.add_op("CONV_2D", [x, b.weights((cout, *kernel, x.shape[3]), cout), b.bias(cout)], attrs)


def _depthwise(b: GraphBuilder, x: Tensor) -> Tensor:
    kernel, stride, dilation, padding = _window(b.rng, x.shape[1:3], 7)
    m = int(b.rng.choice([1, 1, 2]))
    c = x.shape[3] * m
    attrs = DepthwiseConv2DAttrs(stride=stride, dilation=dilation, padding=padding, depth_multiplier=m)
    return b.add_op("DEPTHWISE_CONV_2D", [x, b.weights((1, *kernel, c), c), b.bias(c)], attrs)


def _same(b: GraphBuilder, x: Tensor, cout: int, k: int, out_quant=None) -> Tensor:
    """A stride-1 'same' convolution (output as large as its input)."""
    p = k // 2
    attrs = Conv2DAttrs(padding=Padding2D(p, k - 1 - p, p, k - 1 - p))
    return b.add_op("CONV_2D", [x, b.weights((cout, k, k, x.shape[3]), cout), b.bias(cout)], attrs, out_quant)


def _pool(b: GraphBuilder, x: Tensor) -> Tensor:
    rng = b.rng
    kind = str(rng.choice(["AVERAGE_POOL_2D", "MAX_POOL_2D"]))
    f = tuple(int(rng.integers(1, 4)) for _ in range(2))
    s = tuple(int(rng.integers(1, 3)) for _ in range(2))
    pads = [int(rng.integers(0, k)) for k in f for _ in range(2)]
    attrs = Pool2DAttrs(f, s, Padding2D(*pads))
    try:
        return b.add_op(kind, [x], attrs, x.quant)
    except MCUCError:  # a window with no input element: pool without padding instead
        return b.add_op(kind, [x], Pool2DAttrs((1, 1), (1, 1)), x.quant)


def _step(b: GraphBuilder, x: Tensor) -> Tensor:
    rng = b.rng
    n, h, w, c = x.shape
    choice = str(rng.choice(["conv", "conv", "dw", "residual", "pool", "pad", "concat", "resize"]))
    if choice == "conv":
        return _conv(b, x, int(rng.integers(1, 6)))
    if choice == "dw":
        return _depthwise(b, x)
    if choice == "residual":  # expand 1x1 -> depthwise 'same' k x k -> project 1x1 -> ADD
        k = int(rng.choice([3, 5, 7]))
        e = _same(b, x, int(rng.integers(c, 3 * c + 2)), 1)
        p = k // 2
        attrs = DepthwiseConv2DAttrs(padding=Padding2D(p, p, p, p))
        d = b.add_op("DEPTHWISE_CONV_2D", [e, b.weights((1, k, k, e.shape[3]), e.shape[3]), b.bias(e.shape[3])], attrs)
        y = _same(b, d, c, 1)
        return b.add_op("ADD", [x, y] if rng.random() < 0.5 else [y, x], AddAttrs())
    if choice == "pool":
        return _pool(b, x)
    if choice == "pad":
        pads = ((0, 0), (int(rng.integers(0, 3)), int(rng.integers(0, 3))),
                (int(rng.integers(0, 3)), int(rng.integers(0, 3))), (0, int(rng.integers(0, 2))))
        return b.add_op("PAD", [x], PadAttrs(pads), x.quant)
    if choice == "concat":
        q = b.quant()
        parts = [_same(b, x, int(rng.integers(1, 4)), int(rng.choice([1, 3, 5])), q) for _ in range(2)]
        return b.add_op("CONCATENATION", parts, ConcatAttrs(3), q)
    if h > 12 or w > 12:  # keep graphs small: resize only small tensors
        return _conv(b, x, c)
    return b.add_op("RESIZE_NEAREST_NEIGHBOR", [x], ResizeNearestAttrs((2 * h, 2 * w),
                    half_pixel_centers=bool(rng.random() < 0.5)), x.quant)


def random_stage_graph(seed: int, max_steps: int = 5) -> Graph:
    """A random chain of steps (some are residual blocks or concatenated branches) on a
    random NHWC input, then one 1x1 convolution (so a stage is followed by layer-by-layer
    execution)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng)
    x = b.activation((1, int(rng.integers(5, 21)), int(rng.integers(5, 21)), int(rng.integers(1, 5))), "in")
    t = x
    for _ in range(int(rng.integers(1, max_steps + 1))):
        t = _step(b, t)
    t = b.conv(t, int(rng.integers(1, 4)))
    return b.graph([x], [t])
