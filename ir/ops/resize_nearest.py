"""RESIZE_NEAREST_NEIGHBOR on NHWC (the size input becomes the `size` attribute)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResizeNearestAttrs:
    size: tuple[int, int]
    align_corners: bool = False
    half_pixel_centers: bool = False
