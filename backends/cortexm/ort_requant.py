"""The per-channel constants of onnxruntime's requantization in integer arithmetic
(runtime_c/mcuc_ort.h's mcuc_ort_requant_int, stated in numpy by
mcuc.ir.ort_numerics.requantize_output_integer): for each float32 scale its significand
(`mult`), the fast path's accumulator bound (`limit`) and shift (`shift`). A padded
channel (the GEMM kernels pad odd channel counts) gets the constants of scale 1."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.ort_numerics import REQUANT_INTEGER_BOUND, requant_integer_constants


@dataclass(frozen=True)
class OrtRequantConstants:
    """C initializers, one per channel: `mult` and `limit` uint32_t (with a u suffix),
    `shift` int32_t."""

    mult: list[str]
    limit: list[str]
    shift: list[str]


def ort_requant_constants(what: str, scales, channels_padded: int, zero_point: int, lo: int,
                          hi: int) -> OrtRequantConstants:
    """The constants of `scales` (float32, one per output channel), padded to
    `channels_padded`; `what` names the op in errors. The integer form covers outputs
    within REQUANT_INTEGER_BOUND of the zero point (8-bit types) and scales that are
    finite and not negative."""
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
    return OrtRequantConstants([f"{int(v)}u" for v in mult], [f"{int(v)}u" for v in limit],
                               [str(int(v)) for v in shift])
