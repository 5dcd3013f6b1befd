"""The per-channel constants of onnxruntime's requantization in integer arithmetic
(runtime_c/mcuc_ort.h's mcuc_ort_requant_signed and mcuc_ort_requant_int, stated in numpy
by mcuc.ir.ort_numerics.requantize_output_signed and requantize_output_integer): for each
float32 scale its significand (`mult7`), the fast path's shift (`shift`) and, where some
scale is outside the signed path's range, mcuc_ort_requant_int's accumulator bound
(`limit`). A padded channel (the GEMM kernels pad odd channel counts) gets the constants
of scale 1."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.ort_numerics import (
    REQUANT_INTEGER_BOUND, requant_integer_constants, signed_drop, signed_requant_applies, signed_rounding)


@dataclass(frozen=True)
class OrtRequantConstants:
    """Per channel: `mult7` (M << 7) and `shift` (L, or the signed path's pre = L - 1 - d),
    `limit` or None when every channel takes the signed path; for the signed path, per
    layer, `rounding` (mcuc_ort_requant_t's `round`), `frac` k = 21 - d and whether the
    shift is `checked` at run time."""

    mult7: list[int]
    limit: list[int] | None
    shift: list[int]
    rounding: int = 0
    frac: int = 21
    checked: bool = True

    @property
    def mult(self) -> list[int]:
        """mcuc_ort_requant_int's multipliers, M << 8."""
        return [v << 1 for v in self.mult7]


def ort_requant_constants(what: str, scales, channels_padded: int, zero_point: int, lo: int,
                          hi: int, signed_path: bool = True, bounds=None) -> OrtRequantConstants:
    """The constants of `scales` (float32, one per output channel), padded to
    `channels_padded`; `what` names the op in errors. The integer form covers outputs
    within REQUANT_INTEGER_BOUND of the zero point (8-bit types) and scales that are
    finite and not negative. `signed_path` False: mcuc_ort_requant_int's constants
    whatever the scales (kernels that call it directly). `bounds`: per channel the
    largest |accumulator| the kernel can reach; where they let the compiler prove that
    the signed path's shift never overflows (ort_numerics.signed_drop), it is not
    checked at run time."""
    if max(zero_point - lo, hi - zero_point) > REQUANT_INTEGER_BOUND:
        raise MCUCError(f"{what}: onnxruntime requantization to [{lo}, {hi}] around zero point {zero_point} "
                        f"is beyond the integer output stage (8-bit outputs only)")
    scales = np.asarray(scales, np.float32).reshape(-1)
    padded = np.ones(channels_padded, np.float32)
    padded[:scales.size] = scales
    try:
        mult, limit, shift = requant_integer_constants(padded)
    except ValueError as e:
        raise MCUCError(f"{what}: {e}") from None
    mult7 = [int(v) >> 1 for v in mult]
    if not (signed_path and signed_requant_applies(shift, zero_point)):
        return OrtRequantConstants(mult7, [int(v) for v in limit], [int(v) for v in shift])
    drop = None
    if bounds is not None:
        padded_bounds = np.zeros(channels_padded, np.int64)
        padded_bounds[:len(bounds)] = bounds
        drop = signed_drop(shift, padded_bounds)
    d = 0 if drop is None else drop
    return OrtRequantConstants(mult7, None, [int(v) - 1 - d for v in shift], signed_rounding(zero_point, 21 - d),
                               21 - d, drop is None)
