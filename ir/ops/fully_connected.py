"""FULLY_CONNECTED: y = x W^T + b. Weights [out, in] int8 (per-tensor or per-channel),
input any shape flattened to [-1, in], optional int32 bias."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FullyConnectedAttrs:
    act_min: int = -128
    act_max: int = 127
    keep_num_dims: bool = False
