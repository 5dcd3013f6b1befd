"""The name of every registered op kind, as constants.

`Op.kind` stays a plain string (serialized tests and reports hold kinds as text);
code that names a kind imports its constant from here, so a typo is an import error
instead of a comparison that is silently never true. Each op module registers its OpDef
under its constant, and tests/ir/test_op_traits.py holds this list equal to the registry.
"""
from __future__ import annotations

ABS = "ABS"
ADD = "ADD"
AVERAGE_POOL_2D = "AVERAGE_POOL_2D"
CONCATENATION = "CONCATENATION"
CONV_2D = "CONV_2D"
DEPTHWISE_CONV_2D = "DEPTHWISE_CONV_2D"
DEQUANTIZE = "DEQUANTIZE"
ELU = "ELU"
FULLY_CONNECTED = "FULLY_CONNECTED"
HARD_SWISH = "HARD_SWISH"
LEAKY_RELU = "LEAKY_RELU"
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
RSQRT = "RSQRT"
SOFTMAX = "SOFTMAX"
SQUEEZE = "SQUEEZE"
SUB = "SUB"
TANH = "TANH"
TRANSPOSE = "TRANSPOSE"

ALL = (ABS, ADD, AVERAGE_POOL_2D, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE, ELU, FULLY_CONNECTED,
       HARD_SWISH, LEAKY_RELU, LOGISTIC, LOOKUP_TABLE, MAX_POOL_2D, MEAN, MUL, PAD, PATCH_STAGE, QUANTIZE, RELU,
       RELU6, RESHAPE, RESIZE_NEAREST_NEIGHBOR, RSQRT, SOFTMAX, SQUEEZE, SUB, TANH, TRANSPOSE)
