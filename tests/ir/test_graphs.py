"""Small random graphs with branches and residual adds (CONV_2D, DEPTHWISE_CONV_2D, ADD,
CONCATENATION, pooling; FPN-style upsample-and-concat with RESIZE_NEAREST_NEIGHBOR; gates
with RELU/RELU6 and MUL; 2-8 ops, possibly several outputs) written as TFLite models:
mcuc's frontend + reference interpreter must give tflite-micro's bytes exactly.

Hypothesis draws the seed and the number of ops; the seed drives the graph's structure,
shapes, quantization, weights and inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite

from tests.ir.test_ops_elementwise import assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder, int8_weights, int32_bias, random_int8, same_or_valid_size

ACTIVATIONS = ("NONE", "RELU", "RELU6")


@dataclass
class Value:
    """A tensor of the model being built: its builder index, NHWC shape and quantization."""

    index: int
    shape: tuple[int, int, int, int]
    quant: tuple[float, int]


@dataclass
class RandomGraph:
    rng: np.random.Generator
    mb: ModelBuilder = field(default_factory=ModelBuilder)
    values: list[Value] = field(default_factory=list)
    consumed: set[int] = field(default_factory=set)
    ops: int = 0

    def quant(self) -> tuple[float, int]:
        return float(np.float32(np.exp(self.rng.uniform(np.log(0.01), np.log(0.2))))), int(self.rng.integers(-60, 60))

    def accumulator_quant(self, x: Value, weight_scales: np.ndarray, taps: int) -> tuple[float, int]:
        """An output quantization that fits a convolution's typical output (uniform int8
        data has a spread of ~74 levels), so outputs are rarely all saturated."""
        spread = x.quant[0] * 74.0 * float(np.mean(weight_scales)) * 74.0 * np.sqrt(taps)
        scale = float(np.float32(3.0 * spread / 128.0 * np.exp(self.rng.uniform(-0.7, 0.7))))
        return scale, int(self.rng.integers(-30, 30))

    def new(self, shape, quant=None) -> Value:
        quant = quant if quant is not None else self.quant()
        v = Value(self.mb.tensor(f"t{len(self.values)}", shape, "int8", *quant), tuple(shape), quant)
        self.values.append(v)
        return v

    def pick(self) -> Value:
        # Prefer recent values (chains) but reach back (branches) often enough.
        weights = np.arange(1, len(self.values) + 1, dtype=np.float64) ** 2
        return self.values[int(self.rng.choice(len(self.values), p=weights / weights.sum()))]

    def emit(self, kind: str, inputs: list[int], output: Value, **options) -> Value:
        self.mb.op(kind, inputs, [output.index], **options)
        self.consumed.update(i for i in inputs)
        self.ops += 1
        return output

    # -- layers --------------------------------------------------------------------------

    def conv(self, x: Value, out_channels: int | None = None, kernel: int | None = None, stride: int | None = None,
             padding: str | None = None, quant=None) -> Value:
        n, h, w, c = x.shape
        oc = out_channels or int(self.rng.integers(1, 9))
        k = kernel or int(self.rng.choice([1, 3]))
        s = stride or (int(self.rng.choice([1, 1, 2])) if min(h, w) >= 2 else 1)
        padding = padding or (str(self.rng.choice(["SAME", "VALID"])) if min(h, w) >= k else "SAME")
        weights, scales = int8_weights(self.rng, (oc, k, k, c), axis=0, per_channel=bool(self.rng.integers(0, 2)))
        w_t = self.mb.tensor(f"w{self.ops}", weights.shape, "int8", scales, [0] * scales.size, axis=0, data=weights)
        b_scales = (np.float64(x.quant[0]) * scales.astype(np.float64)).astype(np.float32)
        b_t = self.mb.tensor(f"b{self.ops}", (oc,), "int32", np.broadcast_to(b_scales, (oc,)), [0] * oc,
                             data=int32_bias(self.rng, oc))
        out = self.new((n, same_or_valid_size(h, k, s, 1, padding), same_or_valid_size(w, k, s, 1, padding), oc),
                       quant or self.accumulator_quant(x, scales, k * k * c))
        return self.emit("CONV_2D", [x.index, w_t, b_t], out, padding=padding, stride_h=s, stride_w=s,
                         fused_activation_function=str(self.rng.choice(ACTIVATIONS)))

    def depthwise(self, x: Value, keep_shape: bool = False) -> Value:
        n, h, w, c = x.shape
        dm = 1 if keep_shape else int(self.rng.choice([1, 1, 2]))
        s = int(self.rng.choice([1, 1, 2])) if min(h, w) >= 2 and not keep_shape else 1
        weights, scales = int8_weights(self.rng, (1, 3, 3, c * dm), axis=3, per_channel=True)
        w_t = self.mb.tensor(f"w{self.ops}", weights.shape, "int8", scales, [0] * scales.size, axis=3, data=weights)
        b_scales = (np.float64(x.quant[0]) * scales.astype(np.float64)).astype(np.float32)
        b_t = self.mb.tensor(f"b{self.ops}", (c * dm,), "int32", b_scales, [0] * (c * dm),
                             data=int32_bias(self.rng, c * dm))
        out = self.new((n, same_or_valid_size(h, 3, s, 1, "SAME"), same_or_valid_size(w, 3, s, 1, "SAME"), c * dm),
                       self.accumulator_quant(x, scales, 9))
        return self.emit("DEPTHWISE_CONV_2D", [x.index, w_t, b_t], out, padding="SAME", stride_h=s, stride_w=s,
                         depth_multiplier=dm, fused_activation_function=str(self.rng.choice(ACTIVATIONS)))

    def residual(self, x: Value) -> Value:
        """x + conv1x1(depthwise3x3(x)) or x + conv(x): a branch that rejoins."""
        branch = self.depthwise(x, keep_shape=True) if self.rng.integers(0, 2) else x
        kernel = 1 if branch is not x else int(self.rng.choice([1, 3]))
        branch = self.conv(branch, out_channels=x.shape[3], kernel=kernel, stride=1, padding="SAME")
        return self.add(x, branch)

    def add(self, a: Value, b: Value) -> Value:
        return self.emit("ADD", [a.index, b.index], self.new(a.shape),
                         fused_activation_function=str(self.rng.choice(ACTIVATIONS)))

    def concat(self, x: Value) -> Value:
        """concat(x, conv(x)) along channels; TFLM needs equal quantization, so the conv
        writes in x's quantization."""
        branch = self.conv(x, kernel=int(self.rng.choice([1, 3])), stride=1, padding="SAME", quant=x.quant)
        n, h, w, c = x.shape
        out = self.new((n, h, w, c + branch.shape[3]), x.quant)
        return self.emit("CONCATENATION", [x.index, branch.index], out, axis=int(self.rng.choice([3, -1])))

    def pool(self, x: Value) -> Value:
        n, h, w, c = x.shape
        kind = str(self.rng.choice(["MAX_POOL_2D", "AVERAGE_POOL_2D"]))
        f = 2 if min(h, w) >= 2 else 1
        out = self.new((n, same_or_valid_size(h, f, f, 1, "VALID"), same_or_valid_size(w, f, f, 1, "VALID"), c), x.quant)
        return self.emit(kind, [x.index], out, padding="VALID", stride_h=f, stride_w=f, filter_height=f, filter_width=f)

    def upsample_concat(self, x: Value) -> Value:
        """FPN-style: concat(x, resize_nearest(pool(x))) back at x's size (pool and resize
        keep x's quantization, which CONCATENATION needs)."""
        n, h, w, c = x.shape
        pooled = self.pool(x)
        size = [h, w]
        resized = self.new((n, h, w, c), x.quant)
        self.emit("RESIZE_NEAREST_NEIGHBOR", [pooled.index, self.mb.const(f"size{self.ops}", size)], resized,
                  align_corners=bool(self.rng.integers(0, 2)))
        out = self.new((n, h, w, 2 * c), x.quant)
        return self.emit("CONCATENATION", [resized.index, x.index], out, axis=3)

    def gate(self, x: Value) -> Value:
        """x * relu(conv1x1(x)): an elementwise product of a tensor and its own branch."""
        branch = self.conv(x, out_channels=x.shape[3], kernel=1, stride=1, padding="SAME")
        kind = str(self.rng.choice(["RELU", "RELU6"]))
        activated = self.emit(kind, [branch.index], self.new(branch.shape, branch.quant if kind == "RELU6" else None))
        return self.emit("MUL", [x.index, activated.index], self.new(x.shape),
                         fused_activation_function=str(self.rng.choice(ACTIVATIONS)))

    def same_shape_pair(self) -> tuple[Value, Value] | None:
        by_shape: dict[tuple, list[Value]] = {}
        for v in self.values:
            by_shape.setdefault(v.shape, []).append(v)
        pairs = [vs for vs in by_shape.values() if len(vs) >= 2]
        if not pairs:
            return None
        vs = pairs[int(self.rng.integers(0, len(pairs)))]
        i, j = self.rng.choice(len(vs), size=2, replace=False)
        return vs[int(i)], vs[int(j)]


def random_graph_model(seed: int, n_ops: int, height: int, width: int, channels: int,
                       float_edges: bool = False) -> tuple[bytes, np.ndarray]:
    """A random graph; with `float_edges` it takes float32 (QUANTIZE in front) and returns
    float32 (DEQUANTIZE behind every output), as converted float models do."""
    g = RandomGraph(np.random.default_rng(seed))
    x = g.new((1, height, width, channels))
    while g.ops < n_ops:
        choice = str(g.rng.choice(["conv", "depthwise", "residual", "concat", "pool", "add", "upsample", "gate"]))
        v = g.pick()
        if choice == "conv":
            g.conv(v)
        elif choice == "depthwise":
            g.depthwise(v)
        elif choice == "residual":
            g.residual(v)
        elif choice == "concat":
            g.concat(v)
        elif choice == "pool":
            g.pool(v)
        elif choice == "upsample":
            g.upsample_concat(v)
        elif choice == "gate":
            g.gate(v)
        elif (pair := g.same_shape_pair()) is not None:
            g.add(*pair)
    outputs = [v.index for v in g.values[1:] if v.index not in g.consumed]
    if not float_edges:
        return g.mb.build([x.index], outputs), random_int8(g.rng, x.shape)
    float_in = g.mb.tensor("float_input", x.shape, "float32")
    g.mb.op("QUANTIZE", [float_in], [x.index])
    g.mb.operators.insert(0, g.mb.operators.pop())  # operators are listed in execution order
    float_outs = []
    for i, index in enumerate(outputs):
        float_outs.append(g.mb.tensor(f"float_output{i}", g.mb.tensors[index].shape, "float32"))
        g.mb.op("DEQUANTIZE", [index], [float_outs[-1]])
    # Real inputs spanning a bit more than the quantized range (some saturate).
    span = 160.0 * x.quant[0]
    return g.mb.build([float_in], float_outs), g.rng.uniform(-span, span, size=x.shape).astype(np.float32)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(2, 8), height=st.integers(1, 9),
       width=st.integers(1, 9), channels=st.integers(1, 6), float_edges=st.booleans())
def test_random_graph_matches_oracle(seed, n_ops, height, width, channels, float_edges):
    model, x = random_graph_model(seed, n_ops, height, width, channels, float_edges)
    assert_matches_oracle(model, [x])


def test_generated_graphs_branch_and_rejoin():
    """The generator does make what this file claims to test: over a few seeds, graphs
    with residual ADDs of a tensor with its own branch, concatenations, and several outputs."""
    kinds: dict[str, int] = {}
    multi_output = branching = 0
    for seed in range(12):
        model, _ = random_graph_model(seed, 6, 6, 6, 3)
        graph = load_tflite(model)
        for op in graph.ops:
            kinds[op.kind] = kinds.get(op.kind, 0) + 1
        multi_output += len(graph.outputs) > 1
        branching += any(len(graph.consumers(t)) > 1 for t in graph.tensors)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "CONCATENATION"} <= set(kinds), kinds
    assert kinds.get("MAX_POOL_2D", 0) + kinds.get("AVERAGE_POOL_2D", 0) > 0, kinds
    assert {"RESIZE_NEAREST_NEIGHBOR", "MUL"} <= set(kinds), kinds
    assert branching >= 6 and multi_output >= 1, (branching, multi_output)
