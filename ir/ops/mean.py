"""MEAN over constant axes (the reduction-axes input becomes the `axes` attribute)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MeanAttrs:
    axes: tuple[int, ...]
    keep_dims: bool = False
