"""The name of every registered op kind, as constants.

`Op.kind` stays a plain string (serialized tests and reports hold kinds as text);
code that names a kind imports its constant from here, so a typo is an import error
instead of a comparison that is silently never true. Each op module registers its OpDef
under its constant, and tests/ir/test_op_traits.py holds this list equal to the registry.
"""
from __future__ import annotations

ADD = "ADD"
AVERAGE_POOL_2D = "AVERAGE_POOL_2D"
CONCATENATION = "CONCATENATION"
CONV_2D = "CONV_2D"
DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"
DEQUANTIZE = "DEQUANTIZE"
FULLY_CONNECTED = "FULLY_CONNECTED"
HARD_SWISH = "HARD_SWISH"
LOGISTIC = "LOGISTIC"
LOOKUP_TABLE = "LOOKUP_TABLE"
MAX_POOL_2D = "MAX_POOL_2D"
MEAN = "MEAN"
MUL = "MUL"
PAD = "PAD"
PATCH_STAGE = "PATCH_STAGE"
QUANTIZE = "QUANTIZE"
RELU = "RELU"
RELU6 = "RELU6"
RESHAPE = "RESHAPE"
RESIZE_NEAREST_NEIGHBOR = "RESIZE_NEAREST_NEIGHBOR"
SOFTMAX = "SOFTMAX"
SQUEEZE = "SQUEEZE"
SUB = "SUB"
TRANSPOSE = "TRANSPOSE"

ALL = (ADD, AVERAGE_POOL_2D, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE, FULLY_CONNECTED,
       HARD_SWISH, LOGISTIC, LOOKUP_TABLE, MAX_POOL_2D, MEAN, MUL, PAD, PATCH_STAGE, QUANTIZE, RELU,
       RELU6, RESHAPE, RESIZE_NEAREST_NEIGHBOR, SOFTMAX, SQUEEZE, SUB, TRANSPOSE)
