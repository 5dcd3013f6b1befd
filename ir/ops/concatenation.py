"""CONCATENATION of int8 tensors along one axis, requantizing inputs whose
quantization differs from the output's."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConcatAttrs:
    axis: int
    act_min: int = -128
    act_max: int = 127
