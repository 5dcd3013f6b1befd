"""RESHAPE: same bytes, new shape (the shape input becomes the `shape` attribute)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]
