"""The interface between the ONNX importer (onnx.py) and its op builders (onnx_ops.py):
what a builder may ask while it turns one ONNX node into IR ops. The importer implements
it; builders see only this, so the two modules do not import each other."""
from __future__ import annotations

from typing import Protocol

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.tensor import Quantization, Tensor

from .onnx_numerics import OnnxNumerics
from .onnx_values import QInput, Value


class BuildContext(Protocol):
    numerics: OnnxNumerics  # which onnxruntime behaviour the IR reproduces

    def error(self, node, what: str) -> MCUCError:
        """An error naming the node and its op type (raise it)."""

    def unique(self, name: str) -> str:
        """A tensor name not used yet in the graph, based on `name`."""

    def constant(self, node, name: str, what: str) -> np.ndarray:
        """The value of initializer/Constant `name` (an error if computed at run time)."""

    def attrs(self, node) -> dict:
        """The node's attributes as Python values."""

    def emit(self, kind: str, inputs, attrs, out_name: str, dtype: str, quant: Quantization | None,
             node_name: str = "") -> Tensor:
        """Append one IR op; its output shape comes from the op's own shape rule."""

    def activation(self, node, q: QInput) -> Value:
        """The run-time value of an operand, checked to be an int8/uint8 activation read
        with the quantization it was written with."""

    def weights(self, node, w: QInput, channel_axis: int) -> tuple[np.ndarray, Quantization]:
        """Symmetric int8 weights, per tensor or per `channel_axis`, and their quantization."""

    def bias(self, node, b: QInput | None, x: QInput, w_quant: Quantization, channels: int,
             in_float: bool = False) -> Tensor | None:
        """The int32 bias tensor of a conv/Gemm (None without bias); `in_float`: the group
        runs in float, where DequantizeLinear subtracts the bias's zero point."""

    def bias_in_float(self, node, b: QInput | None, x: QInput, w_quant: Quantization, channels: int) -> bool:
        """Whether the bias's own quantization keeps onnxruntime from fusing the group."""
