"""Pieces several op modules share: padding, sliding windows, output stages, shape checks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MCUCError
from ..fixedpoint import quantize_multiplier
from ..op import Op
from ..region import Region
from ..tensor import Tensor, cut_name


@dataclass(frozen=True)
class Padding2D:
    """Explicit padding of a 2-D window op (SAME/VALID are resolved by frontends)."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


def require(cond: bool, op: Op, what: str) -> None:
    """Raise the project's error, naming the op (its name cut: ir.tensor.cut_name), unless
    `cond` holds."""
    if not cond:
        raise MCUCError(f"{short_label(op)}: {what}")


def short_label(op: Op) -> str:
    """`op.label` with the op's name cut for a message."""
    return f"{op.kind}({cut_name(op.name)})" if op.name else op.kind


# Window geometry the C kernels index with int32 arithmetic.
_INT32_EXTENT = 2**31 - 1


def require_window(op: Op, kernel: tuple[int, int], stride, dilation, padding: "Padding2D") -> None:
    """The checks every sliding-window op shares: a kernel of at least 1x1, positive
    strides and dilations, padding that is not negative, and an extent ((kernel - 1) x
    dilation + 1, each padding) that int32 index arithmetic holds."""
    require(min(kernel) >= 1, op, f"kernel {kernel[0]}x{kernel[1]} must be at least 1x1")
    require(min(stride) >= 1, op, f"stride {tuple(stride)} must be positive")
    require(min(dilation) >= 1, op, f"dilation {tuple(dilation)} must be positive")
    p = padding
    require(min(p.top, p.bottom, p.left, p.right) >= 0, op, f"negative padding {p}")
    extent = max((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    require(extent <= _INT32_EXTENT and max(p.top, p.bottom, p.left, p.right) <= _INT32_EXTENT, op,
            f"kernel {kernel[0]}x{kernel[1]} with dilation {tuple(dilation)} spans {extent} pixels and padding "
            f"{(p.top, p.bottom, p.left, p.right)} (top, bottom, left, right): beyond int32")


def window_output_size(in_size: int, kernel: int, stride: int, dilation: int,
                       pad_before: int, pad_after: int) -> int:
    effective = (kernel - 1) * dilation + 1
    return (in_size + pad_before + pad_after - effective) // stride + 1


def windows(x: np.ndarray, kh: int, kw: int, oh: int, ow: int,
            stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """Gather sliding windows of an (already padded) NHWC array: [N, OH, OW, KH, KW, C]."""
    sh, sw = stride
    dh, dw = dilation
    taps = [[x[:, ky * dh: ky * dh + (oh - 1) * sh + 1: sh, kx * dw: kx * dw + (ow - 1) * sw + 1: sw, :]
             for kx in range(kw)] for ky in range(kh)]
    return np.stack([np.stack(row, axis=3) for row in taps], axis=3)


def pad_spatial(x: np.ndarray, padding: Padding2D, value: int = 0) -> np.ndarray:
    return np.pad(x, ((0, 0), (padding.top, padding.bottom), (padding.left, padding.right), (0, 0)),
                  constant_values=value)


def groups(op: Op) -> int:
    """The group count of a CONV_2D: input channels over the weights' input channels."""
    return op.inputs[0].shape[3] // op.inputs[1].shape[3]


def channel_requant_params(op: Op, input: Tensor, weights: Tensor, output: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) of conv/depthwise/FC, computed as the
    reference kernels do: double(input_scale) * double(weight_scale[c]) / double(output_scale).

    A per-tensor weight scale is broadcast to every output channel.
    """
    require(input.quant is not None and weights.quant is not None and output.quant is not None,
            op, "input, weights and output must all be quantized")
    channels = output.shape[-1]
    scales = weights.quant.scale.astype(np.float64)
    if scales.size == 1:
        scales = np.repeat(scales, channels)
    require(scales.size == channels, op,
            f"weights have {scales.size} scales but the output has {channels} channels")
    in_scale = float(np.float64(input.quant.scale[0]))
    out_scale = float(np.float64(output.quant.scale[0]))
    reals = [in_scale * float(s) / out_scale for s in scales]
    # A multiplier of 2^30 or more scales the accumulator up by 30+ bits before the high
    # multiply: beyond what int32 kernels (and the oracle's) compute the same way.
    require(np.all(np.isfinite(reals)) and max(reals) < 2.0**30, op,
            f"input scale x weight scale / output scale = {max(reals):g} is not below 2^30: the "
            "quantization scales are inconsistent")
    pairs = [quantize_multiplier(r) for r in reals]
    return (np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64))


def dtype_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def require_int8_per_tensor_unary(op: Op, dtypes: tuple[str, ...] = ("int8",)) -> None:
    """The checks TFLM's int8 LOGISTIC and HARD_SWISH share: one int8 input and output
    (or of one of `dtypes`, the same on both sides), both quantized per tensor."""
    x, y = op.input, op.output
    require(x.dtype == y.dtype and x.dtype in dtypes, op,
            f"input {x.dtype} and output {y.dtype} are not supported ({' or '.join(dtypes)}, the same on both sides)"
            if len(dtypes) > 1 else f"input {x.dtype} and output {y.dtype} are not supported (int8 only)")
    require(x.quant is not None and y.quant is not None, op, "input and output must be quantized")
    require(not x.quant.per_channel and not y.quant.per_channel, op, "quantization must be per-tensor")


def int8_unary_shapes(op: Op, dtypes: tuple[str, ...] = ("int8",)) -> list[tuple[int, ...]]:
    """infer_shapes of a per-element int8 op (or of `dtypes`): one input, one output of
    its shape and type, quantized per tensor."""
    require(len(op.inputs) == 1 and op.inputs[0] is not None and len(op.outputs) == 1, op,
            "takes exactly one input and one output")
    require_int8_per_tensor_unary(op, dtypes)
    return [op.input.shape]


def no_macs(op: Op) -> int:
    """MACs of an op that multiplies nothing (the project counts conv, depthwise, FC)."""
    return 0


def same_region(op: Op, out: Region) -> list[Region | None]:
    """Input region of a one-input elementwise op: the output region itself."""
    return [out]
