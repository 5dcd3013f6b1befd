"""TFLite builtins added after the first set: their converters, merged into
frontend/tflite.py's table (builtin name -> (options table class, converter)).

A converter gets tflite.py's _OpContext (the op's inputs, outputs and options table) and
returns (IR kind, IR inputs, attributes); shape and quantization rules live in the op
modules (mcuc.ir.ops), which refuse what tflite-micro refuses.
"""
from __future__ import annotations

from mcuc.ir.ops import kinds
from mcuc.ir.ops.maximum_minimum import MaximumMinimumAttrs
from mcuc.ir.ops.squared_difference import SquaredDifferenceAttrs


def _two_inputs(kind: str, attrs_cls):
    def convert(ctx):
        ctx.need_inputs(2)
        return kind, ctx.inputs, attrs_cls()
    return convert


CONVERTERS = {
    "MAXIMUM": (None, _two_inputs(kinds.MAXIMUM, MaximumMinimumAttrs)),
    "MINIMUM": (None, _two_inputs(kinds.MINIMUM, MaximumMinimumAttrs)),
    "SQUARED_DIFFERENCE": (None, _two_inputs(kinds.SQUARED_DIFFERENCE, SquaredDifferenceAttrs)),
}
