"""TRANSPOSE with a constant permutation (the perm input becomes the `perm` attribute)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...]
