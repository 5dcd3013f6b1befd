"""Random model inputs for verification and benchmarks."""
from __future__ import annotations

import numpy as np

from mcuc.ir.graph import Graph
from mcuc.ir.ops.kinds import QUANTIZE
from mcuc.ir.tensor import Tensor


def random_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    return [random_input(graph, t, rng) for t in graph.inputs]


def random_input(graph: Graph, tensor: Tensor, rng: np.random.Generator) -> np.ndarray:
    """A random value for one graph input, spread over its whole quantized range.

    Float inputs that feed a QUANTIZE get values around that QUANTIZE's grid, off the
    grid points by up to half a step, so the rounding of the quantization is exercised.
    """
    if np.issubdtype(np.dtype(tensor.dtype), np.integer):
        info = np.iinfo(np.dtype(tensor.dtype))
        return rng.integers(info.min, int(info.max) + 1, size=tensor.shape, dtype=tensor.dtype)
    quant = _float_input_grid(graph, tensor)
    if quant is None:
        return rng.uniform(-1.0, 1.0, size=tensor.shape).astype(tensor.dtype)
    scale, zero_point, lo, hi = quant
    q = rng.integers(lo, hi + 1, size=tensor.shape)
    jitter = rng.uniform(-0.45, 0.45, size=tensor.shape)
    return (scale * (q - zero_point + jitter)).astype(tensor.dtype)


def _float_input_grid(graph: Graph, tensor: Tensor):
    for op in graph.consumers(tensor):
        out = op.outputs[0]
        if op.kind == QUANTIZE and out.quant is not None:
            info = np.iinfo(np.dtype(out.dtype))
            return out.quant.scalar_scale, out.quant.scalar_zero_point, int(info.min), int(info.max)
    return None
