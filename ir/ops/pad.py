"""PAD / PADV2: constant padding. `pads` holds (before, after) per axis; `value` is the
quantized pad value (None: the output zero point, as PAD without constant_values)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PadAttrs:
    pads: tuple[tuple[int, int], ...]
    value: int | None = None
