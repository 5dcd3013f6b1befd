"""ADD of two int8 tensors with broadcasting (TFLite's two-stage requantization)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AddAttrs:
    act_min: int = -128
    act_max: int = 127
