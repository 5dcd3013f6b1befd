"""DEPTHWISE_CONV_2D: per-channel 2-D convolution with a depth multiplier.

Weights [1, kh, kw, in_channels * depth_multiplier] (TFLite layout), per-channel or
per-tensor symmetric int8; optional int32 bias; input and output NHWC.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ._common import Padding2D


@dataclass(frozen=True)
class DepthwiseConv2DAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: Padding2D = field(default_factory=Padding2D)
    depth_multiplier: int = 1
    act_min: int = -128
    act_max: int = 127
