"""Regions of tensors: the currency of receptive-field analysis and patch tiling."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """A box in a tensor: half-open [start, stop) per axis (NHWC for activations)."""

    start: tuple[int, ...]
    stop: tuple[int, ...]

    @staticmethod
    def full(shape: tuple[int, ...]) -> "Region":
        return Region(tuple(0 for _ in shape), tuple(shape))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.start, self.stop))

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def empty(self) -> bool:
        return any(b <= a for a, b in zip(self.start, self.stop))

    def axis(self, i: int) -> tuple[int, int]:
        return self.start[i], self.stop[i]

    def with_axis(self, i: int, start: int, stop: int) -> "Region":
        s, e = list(self.start), list(self.stop)
        s[i], e[i] = start, stop
        return Region(tuple(s), tuple(e))

    def union(self, other: "Region") -> "Region":
        """The bounding box of both."""
        return Region(tuple(map(min, self.start, other.start)), tuple(map(max, self.stop, other.stop)))

    def clip(self, shape: tuple[int, ...]) -> "Region":
        return Region(
            tuple(min(max(a, 0), d) for a, d in zip(self.start, shape)),
            tuple(min(max(b, 0), d) for b, d in zip(self.stop, shape)),
        )

    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop))


def window_input_range(out_start: int, out_stop: int, stride: int, pad_before: int,
                       kernel: int, dilation: int, in_size: int) -> tuple[int, int]:
    """Input rows a sliding window needs for output rows [out_start, out_stop).

    Padding only exists at the true borders of the full tensor, so the range is
    clipped to [0, in_size): a patch never invents padding in the middle.
    """
    if out_stop <= out_start:
        return 0, 0
    first = out_start * stride - pad_before
    last = (out_stop - 1) * stride - pad_before + (kernel - 1) * dilation
    return max(first, 0), min(last + 1, in_size)
