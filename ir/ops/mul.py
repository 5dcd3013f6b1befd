"""MUL of two int8 tensors with broadcasting."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MulAttrs:
    act_min: int = -128
    act_max: int = 127
