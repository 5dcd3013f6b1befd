"""AVERAGE_POOL_2D and MAX_POOL_2D over NHWC int8 tensors."""
from __future__ import annotations

from dataclasses import dataclass, field

from ._common import Padding2D


@dataclass(frozen=True)
class Pool2DAttrs:
    filter: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: Padding2D = field(default_factory=Padding2D)
    act_min: int = -128
    act_max: int = 127
