"""mcuc.ir: the graph IR, quantization, fixed-point arithmetic, op definitions and the
reference interpreter. Imports nothing from the rest of mcuc."""
from .errors import MCUCError
from .graph import Graph
from .op import Op
from .ops import OpDef, op_def, supported_kinds
from .region import Region
from .tensor import Quantization, Tensor

__all__ = ["MCUCError", "Graph", "Op", "OpDef", "op_def", "supported_kinds", "Region",
           "Quantization", "Tensor"]
