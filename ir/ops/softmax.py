"""SOFTMAX over the last axis, int8 in, int8 out (TFLite's fixed-point algorithm)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float = 1.0
