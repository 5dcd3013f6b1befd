"""Random small graphs for the memory-planning tests, built directly from mcuc.ir.

Graphs mix everything the planner treats specially: branches and residual ADDs,
elementwise ops and depthwise convolutions that can run in place, RESHAPE aliases,
CONCATENATION (contiguous along H, or a copy along C), PAD in front of convolutions,
several outputs. Every op is checked with its own infer_shapes.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, Op, Quantization, Tensor
from mcuc.ir.ops import op_def
from mcuc.ir.ops.common import Padding2D
from mcuc.ir.ops.add import AddAttrs
from mcuc.ir.ops.concatenation import ConcatAttrs
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.depthwise_conv2d import DepthwiseConv2DAttrs
from mcuc.ir.ops.mul import MulAttrs
from mcuc.ir.ops.pad import PadAttrs
from mcuc.ir.ops.pool2d import Pool2DAttrs
from mcuc.ir.ops.reshape import ReshapeAttrs


class GraphBuilder:
    """Builds int8 NHWC graphs op by op with fresh tensor names."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.ops: list[Op] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def quant(self) -> Quantization:
        return Quantization(np.float32(self.rng.uniform(0.02, 0.1)), int(self.rng.integers(-20, 20)))

    def activation(self, shape: tuple[int, ...], prefix: str = "t") -> Tensor:
        return Tensor(self.name(prefix), shape, "int8", self.quant())

    def add_op(self, kind: str, inputs: list[Tensor | None], attrs,
               out_quant: Quantization | None = None) -> Tensor:
        quant = out_quant or self.quant()
        probe = Op(kind, tuple(inputs), (Tensor("probe", (1,), "int8", quant),), attrs)
        (shape,) = op_def(kind).infer_shapes(probe)
        out = Tensor(self.name("t"), shape, "int8", quant)
        op = Op(kind, tuple(inputs), (out,), attrs, name=self.name("op"))
        op_def(kind).infer_shapes(op)
        self.ops.append(op)
        return out

    def weights(self, shape: tuple[int, ...], channels: int) -> Tensor:
        return Tensor(self.name("w"), shape, "int8",
                      Quantization(np.full(channels, 0.02, np.float32), np.zeros(channels, np.int64),
                                   axis=0 if shape[0] == channels else 3),
                      self.rng.integers(-127, 128, shape).astype(np.int8))

    def bias(self, channels: int) -> Tensor:
        return Tensor(self.name("b"), (channels,), "int32", None,
                      self.rng.integers(-1000, 1000, channels).astype(np.int32))

    def conv(self, x: Tensor, cout: int, k: int = 1, stride: int = 1, pad: int = 0,
             out_quant: Quantization | None = None) -> Tensor:
        attrs = Conv2DAttrs(stride=(stride, stride), padding=Padding2D(pad, pad, pad, pad))
        return self.add_op("CONV_2D", [x, self.weights((cout, k, k, x.shape[3]), cout), self.bias(cout)],
                           attrs, out_quant)

    def depthwise(self, x: Tensor, k: int, stride: int, pad: int, multiplier: int = 1) -> Tensor:
        c = x.shape[3] * multiplier
        attrs = DepthwiseConv2DAttrs(stride=(stride, stride), padding=Padding2D(pad, pad, pad, pad),
                                     depth_multiplier=multiplier)
        return self.add_op("DEPTHWISE_CONV_2D", [x, self.weights((1, k, k, c), c), self.bias(c)], attrs)

    def graph(self, inputs: list[Tensor], outputs: list[Tensor]) -> Graph:
        return Graph(tuple(self.ops), tuple(inputs), tuple(outputs), name="random")


def _random_step(b: GraphBuilder, src: Tensor, pool: list[Tensor]) -> Tensor:
    rng = b.rng
    n, h, w, c = src.shape
    choice = rng.choice(["conv", "dw", "add", "mul", "unary", "reshape", "concat", "pad", "pool"])
    if choice == "conv":
        k = int(rng.choice([1, 3]))
        stride = int(rng.choice([1, 1, 2])) if h >= 3 and w >= 3 else 1
        return b.conv(src, int(rng.integers(1, 6)), k, stride, pad=k // 2)
    if choice == "dw":
        stride = int(rng.choice([1, 2])) if h >= 3 and w >= 3 else 1
        k = int(rng.choice([1, 3])) if h >= 3 and w >= 3 else 1
        return b.depthwise(src, k, stride, int(rng.integers(0, 2)) if k == 3 else 0,
                           int(rng.choice([1, 1, 2])))
    if choice in ("add", "mul"):
        # Another tensor of the same shape: one from the pool if there is one (a residual
        # connection), else a fresh 1x1 conv branch.
        same = [t for t in pool if t.shape == src.shape and t is not src]
        other = same[int(rng.integers(len(same)))] if same and rng.random() < 0.7 else b.conv(src, c)
        if rng.random() < 0.2:
            other = src  # x + x
        ins = [src, other] if rng.random() < 0.5 else [other, src]
        attrs = AddAttrs() if choice == "add" else MulAttrs()
        return b.add_op(choice.upper(), ins, attrs)
    if choice == "unary":
        kind = str(rng.choice(["RELU", "RELU6", "LOGISTIC", "HARD_SWISH", "QUANTIZE"]))
        q = Quantization(np.float32(1 / 256), -128) if kind == "LOGISTIC" else None
        if kind == "RELU6":
            q = src.quant  # TFLM's RELU6 keeps the input's quantization
        return b.add_op(kind, [src], None, q)
    if choice == "reshape":
        return b.add_op("RESHAPE", [src], ReshapeAttrs((n, w, h, c)), src.quant)
    if choice == "concat":
        axis = int(rng.choice([1, 3]))
        q = b.quant()
        parts = [b.conv(src, int(rng.integers(1, 4)) if axis == 3 else c, out_quant=q)
                 for _ in range(int(rng.integers(2, 4)))]
        return b.add_op("CONCATENATION", parts, ConcatAttrs(axis), q)
    if choice == "pad":
        p = int(rng.integers(1, 3))
        padded = b.add_op("PAD", [src], PadAttrs(((0, 0), (p, p), (p, p), (0, 0))), src.quant)
        if rng.random() < 0.5:
            return b.conv(padded, int(rng.integers(1, 5)), 3)
        return b.depthwise(padded, 3, int(rng.choice([1, 2])), 0)
    k = 2 if h >= 2 and w >= 2 else 1
    return b.add_op("MAX_POOL_2D", [src], Pool2DAttrs((k, k), (k, k)), src.quant)


def random_graph(seed: int, max_ops: int = 8) -> Graph:
    """A random DAG: mostly a chain, sometimes branching from an earlier tensor, outputs
    are the tensors nobody reads (and sometimes an inner one)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng)
    hw = int(rng.integers(2, 7))
    x = b.activation((1, hw, hw, int(rng.integers(1, 5))), "in")
    pool = [x]
    for _ in range(int(rng.integers(1, max_ops + 1))):
        src = pool[int(rng.integers(len(pool)))] if rng.random() < 0.3 else pool[-1]
        pool.append(_random_step(b, src, pool))
    read = {t for op in b.ops for t in op.inputs}
    outputs = [t for t in pool[1:] if t not in read]
    if rng.random() < 0.3 and len(pool) > 2:
        outputs.append(pool[int(rng.integers(1, len(pool) - 1))])
    return b.graph([x], list(dict.fromkeys(outputs)) or [pool[-1]])


def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, t.shape).astype(t.dtype) for t in graph.inputs]
