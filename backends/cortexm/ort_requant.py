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
    REQUANT_INTEGER_BOUND, requant_integer_constants, signed_requant_applies, signed_rounding)


@dataclass(frozen=True)
class OrtRequantConstants:
    """C initializers, one per channel: `mult7` and `shift` int32_t (L, or L - 1 for the
    signed path), `limit` uint32_t (with a u suffix) or None when every channel takes the
    signed path; `rounding`, the signed path's constant (mcuc_ort_requant_t's `round`)."""

    mult7: list[str]
    limit: list[str] | None
    shift: list[str]
    rounding: int

    @property
    def mult(self) -> list[str]:
        """mcuc_ort_requant_int's multipliers, M << 8 (uint32_t)."""
        return [f"{int(v) << 1}u" for v in self.mult7]


def ort_requant_constants(what: str, scales, channels_padded: int, zero_point: int, lo: int,
                          hi: int, signed_path: bool = True) -> OrtRequantConstants:
    """The constants of `scales` (float32, one per output channel), padded to
    `channels_padded`; `what` names the op in errors. The integer form covers outputs
    within REQUANT_INTEGER_BOUND of the zero point (8-bit types) and scales that are
    finite and not negative. `signed_path` False: mcuc_ort_requant_int's constants
    whatever the scales (kernels that call it directly)."""
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
    signed = signed_path and signed_requant_applies(shift, zero_point)
    return OrtRequantConstants([str(int(v) >> 1) for v in mult], None if signed else [f"{int(v)}u" for v in limit],
                               [str(int(v) - signed) for v in shift], signed_rounding(zero_point) if signed else 0)
