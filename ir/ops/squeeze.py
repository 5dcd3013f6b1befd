"""SQUEEZE: drop size-1 axes (all of them when `axes` is empty)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SqueezeAttrs:
    axes: tuple[int, ...] = ()
