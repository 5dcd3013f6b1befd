"""Limits of tflite-micro's parameter structs that a model's values must respect."""
from __future__ import annotations

from mcuc.ir import MCUCError

INT16_MAX = 32767


def check_int16(where: str, what: str, values: tuple[int, int], why: str = "") -> None:
    """tflite-micro keeps padding (and a convolution's strides and dilations) in int16_t
    fields (tflite::PaddingValues, ConvParams, DepthwiseParams): larger values wrap and it
    computes another window than the model states, so mcuc refuses them."""
    if max(values) > INT16_MAX:
        raise MCUCError(f"{where}: {what} {tuple(values)}{' ' + why if why else ''} exceeds {INT16_MAX}, the "
                        f"largest tflite-micro's 16-bit fields hold (it would wrap and compute another window)")
