"""Random small graphs for the memory-planning tests, built directly from mcuc.ir.

Only op kinds whose semantics exist are used (checked through the op registry), so the
generator grows with ir/ops/ as other op modules land.
"""
from __future__ import annotations

import numpy as np

from mcuc.ir import Graph, Op, Quantization, Tensor
from mcuc.ir.ops import op_def, supported_kinds
from mcuc.ir.ops._common import Padding2D
from mcuc.ir.ops.conv2d import Conv2DAttrs


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
        return Quantization(np.float32(self.rng.uniform(0.01, 0.1)), int(self.rng.integers(-20, 20)))

    def activation(self, shape: tuple[int, ...], prefix: str = "t") -> Tensor:
        return Tensor(self.name(prefix), shape, "int8", self.quant())

    def add_op(self, kind: str, inputs: list[Tensor | None], attrs, out_dtype: str = "int8",
               out_quant: Quantization | None = None) -> Tensor:
        probe = Op(kind, tuple(inputs), (), attrs)
        (shape,) = op_def(kind).infer_shapes(probe)
        out = Tensor(self.name("t"), shape, out_dtype, out_quant or self.quant())
        self.ops.append(Op(kind, tuple(inputs), (out,), attrs, name=self.name("op")))
        return out

    def conv(self, x: Tensor, cout: int, k: int = 1, stride: int = 1, pad: int = 0) -> Tensor:
        cin = x.shape[3]
        w = Tensor(self.name("w"), (cout, k, k, cin), "int8",
                   Quantization(np.full(cout, 0.02, np.float32), np.zeros(cout, np.int64), axis=0),
                   self.rng.integers(-127, 128, (cout, k, k, cin)).astype(np.int8))
        b = Tensor(self.name("b"), (cout,), "int32", None,
                   self.rng.integers(-1000, 1000, cout).astype(np.int32))
        attrs = Conv2DAttrs(stride=(stride, stride), padding=Padding2D(pad, pad, pad, pad))
        return self.add_op("CONV_2D", [x, w, b], attrs)

    def graph(self, inputs: list[Tensor], outputs: list[Tensor]) -> Graph:
        return Graph(tuple(self.ops), tuple(inputs), tuple(outputs), name="random")


def has(kind: str) -> bool:
    """Whether the op kind's semantics are implemented yet."""
    if kind not in supported_kinds():
        return False
    return True


def random_graph(seed: int, max_ops: int = 8) -> Graph:
    """A random DAG of int8 ops over small NHWC tensors: chains, branches that fan out from
    any earlier tensor, several outputs."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng)
    hw = int(rng.integers(2, 7))
    x = b.activation((1, hw, hw, int(rng.integers(1, 5))), "in")
    pool = [x]
    consumed: set[Tensor] = set()
    for _ in range(int(rng.integers(1, max_ops + 1))):
        src = pool[int(rng.integers(len(pool)))] if rng.random() < 0.4 else pool[-1]
        consumed.add(src)
        k = int(rng.choice([1, 3]))
        stride = int(rng.choice([1, 1, 2])) if src.shape[1] >= 3 else 1
        pool.append(b.conv(src, int(rng.integers(1, 6)), k, stride, pad=k // 2))
    outputs = [t for t in pool[1:] if t not in consumed] or [pool[-1]]
    return b.graph([x], outputs)


def random_inputs(graph: Graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, t.shape).astype(t.dtype) for t in graph.inputs]
