"""LOOKUP_TABLE: an elementwise int8 -> int8 function given as its 256 results.

onnxruntime computes its quantized elementwise kernels this way (QLinearSigmoid,
QLinearLeakyRelu build a table from float math on the 256 dequantized inputs, and
QLinearConcat requantizes inputs with one), and a float op between DequantizeLinear and
QuantizeLinear (HardSwish) is such a function too: the frontend builds the table once,
mirroring onnxruntime's float arithmetic (ir/ort_numerics.py), and every backend only
indexes it. Entry i is the output for input value i - 128.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from . import OpDef, register
from .common import require
from .kinds import LOOKUP_TABLE
from .quantize import identity_regions

TABLE_SIZE = 256


@dataclass(frozen=True)
class LookupTableAttrs:
    table: tuple[int, ...]  # 256 int8 outputs, indexed by input + 128
    # What the table computes, for reports and debugging (e.g. "Sigmoid").
    function: str = ""


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and op.input is not None, op, "takes exactly one input")
    x, y = op.input, op.output
    require(x.dtype == "int8" and y.dtype == "int8", op, f"maps int8 to int8, got {x.dtype} -> {y.dtype}")
    table = op.attrs.table
    require(len(table) == TABLE_SIZE, op, f"table has {len(table)} entries, expected {TABLE_SIZE}")
    require(all(-128 <= v <= 127 for v in table), op, "table entries must be int8 values")
    return [x.shape]


def macs(op: Op) -> int:
    return 0


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    table = np.asarray(op.attrs.table, np.int8)
    return [table[inputs[0].astype(np.int64) + 128].astype(op.output.dtype)]


OPDEF = register(OpDef(LOOKUP_TABLE, LookupTableAttrs, infer_shapes, macs, identity_regions, evaluate))
