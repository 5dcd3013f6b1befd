"""Per-step C for the Cortex-M backend: one specialized static function per layer.

`emit_step` picks the kernel for a step (pointwise GEMM, im2col conv, 4-channel SIMD
depthwise, ...), folds and reorders its constants (constants.py) and renders a jinja2
template under templates/kernels/ into a static function whose every shape, stride,
padding and channel count is a literal. The kernels in runtime_c/ are always-inline
bodies, so the C compiler specializes them per layer: loops unroll, impossible branches
vanish. `scratch_requests` tells the memory planner which temporaries those kernels
need.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np

from mcuc.ir.errors import MCUCError
from mcuc.ir.op import Op
from mcuc.ir.ops import kinds, supported_kinds
from mcuc.ir.ops.common import channel_requant_params, dtype_range
from mcuc.ir.ops.int16_stage import grouped_conv, is_16x8
from mcuc.ir.numerics import (ONNXRUNTIME, ORT_GLOBAL_AVERAGE_POOL, ORT_REDUCE_MEAN, OrtFloat, OrtInteger, TFLiteQ31,
                               in_float, numerics_type, rule_of, u8s8_pairs, uint8_offset)
from mcuc.ir.ops.mean import resolved_axes
from mcuc.ir.program import Alias, InPlace, Program, ScratchRequest, Step
from mcuc.ir.tensor import Tensor

from . import constants as K
from . import (kernels_binary, kernels_matmul, kernels_movement, kernels_norm, kernels_recurrent, kernels_reduce,
               kernels_resize, kernels_transpose_conv)
from .c_syntax import c_comment, c_float, c_struct
from .target import Target

TEMPLATES = Path(__file__).parent / "templates"

FIXEDPOINT_H = "mcuc_fixedpoint.h"
CONV_H = "mcuc_conv.h"
DEPTHWISE_H = "mcuc_depthwise.h"
ELEMENTWISE_H = "mcuc_elementwise.h"
SOFTMAX_H = "mcuc_softmax.h"
CONV_S16_H = "mcuc_conv_s16.h"


@dataclass
class StepCode:
    """The C of one step: file-scope declarations, the statement(s) that run it inside
    `<name>_invoke` (where `arena` is the uint8_t * arena), the runtime_c files used."""

    decls: str
    call: str
    runtime: tuple[str, ...]


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


@dataclass(frozen=True)
class Site:
    """How one call of a kernel is named in C. `fn` prefixes the op's constants (weights,
    requantization tables: the same for every call of the op); `name` is this call's
    function and prefixes its per-call arrays (those that depend on the call's shapes);
    `first` is False when an earlier call of the same op (another patch of a stage)
    already emitted the op's constants, so only per-call arrays are written."""

    fn: str
    name: str
    first: bool = True

    @staticmethod
    def of(fn: str) -> "Site":
        return Site(fn, fn)


def _render(template: str, site: Site, **context) -> str:
    context.update(fn=site.fn, name=site.name, shared=site.first)
    if "comment" in context:  # op names come from the model file
        context["comment"] = c_comment(context["comment"])
    if not site.first and "arrays" in context:
        context["arrays"] = [a for a in context["arrays"] if a.per_call]
    return _environment().get_template(f"kernels/{template}").render(**context)


@dataclass(frozen=True)
class CArray:
    """A const array in flash. `per_call` arrays depend on the call's shapes (patches of
    one op each need their own); the others are the op's constants."""

    ctype: str
    name: str
    values: list[str]
    per_call: bool = False


def _ints(ctype: str, name: str, values) -> CArray:
    return CArray(ctype, name, [str(int(v)) for v in np.asarray(values).reshape(-1)])


def _uints(name: str, values) -> CArray:
    """A uint32_t array (values below 2^32, written with a u suffix)."""
    return CArray("uint32_t", name, [f"{int(v)}u" for v in np.asarray(values, np.int64).reshape(-1)])


# -- scratch ------------------------------------------------------------------------------
#
# The planner needs each kernel's scratch before any C exists, so the sizes are computed
# here; each kernel states the same size in C as <kernel>_get_buffer_size beside it
# (runtime_c/), and tests/backends/cortexm/test_cortexm_buffer_sizes.py holds the two equal.

def _conv_layout(op: Op) -> str:
    """Which conv kernel runs the op: "1x1" (GEMM straight over the input), "im2col"
    (general KxK through two im2col rows) or "grouped" (direct loop)."""
    x, w = op.inputs[0], op.inputs[1]
    a = op.attrs
    if x.shape[3] != w.shape[3]:
        return "grouped"
    p = a.padding
    if (w.shape[1], w.shape[2]) == (1, 1) and tuple(a.stride) == (1, 1) and (p.top, p.bottom, p.left, p.right) == (0, 0, 0, 0) \
            and x.shape[3] % 4 == 0:
        return "1x1"
    return "im2col"


def _conv_scratch_bytes(op: Op) -> int:
    """The GEMM kernels' scratch: two sign-extended int16 rows (1x1,
    mcuc_conv_1x1_get_buffer_size), plus, for im2col (mcuc_conv_im2col_get_buffer_size),
    one input pixel of zero points when the input channels are a multiple of 4 (the
    receptive fields are gathered straight into the rows), else two int8 im2col rows
    before extension; none for the grouped direct loop."""
    layout = _conv_layout(op)
    in_ch = op.inputs[0].shape[3]
    if layout == "1x1":
        return 4 * in_ch
    if layout == "im2col":
        return 4 * _conv_depth4(op) + in_ch if in_ch % 4 == 0 else 6 * _conv_depth4(op)
    return 0


# Inputs the DSP fully connected kernel sign-extends at a time (MCUC_FC_CHUNK in
# mcuc_conv.h): bounds its scratch (2 bytes per input) on deep layers such as
# micro_speech's 4000-input one.
_FC_CHUNK = 256


def _fc_scratch_bytes(op: Op) -> int:
    """The DSP fully connected kernel's scratch (mcuc_fully_connected_w16_get_buffer_size):
    the chunk of inputs it extends at a time, then, when the depth spans several chunks,
    the int32 per-unit sums carried between them."""
    units, depth = op.inputs[1].shape
    depth4 = K.round_up(depth, 4)
    chunk = min(depth4, _FC_CHUNK)
    return 2 * chunk + (4 * K.round_up(units, 4) if depth4 > chunk else 0)


def _conv_depth4(op: Op) -> int:
    w = op.inputs[1]
    return K.round_up(w.shape[1] * w.shape[2] * w.shape[3], 4)


def scratch_requests(op: Op, in_place: bool, target: Target) -> list[ScratchRequest]:
    """The temporaries the kernel for `op` needs: two im2col rows for a general conv, one
    input channel plane for an in-place depthwise conv; nothing otherwise."""
    if op.kind in (kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.FULLY_CONNECTED) and is_16x8(op):
        return []  # mcuc_conv_s16x8 needs none
    if op.kind == kinds.CONV_2D:
        size = _conv_scratch_bytes(op)
        if size:
            return [ScratchRequest(f"{op.name or 'conv'}.rows", size, 4)]
    if op.kind == kinds.TRANSPOSE_CONV and target.has_dsp:
        view = kernels_transpose_conv.as_dilated_conv(op)
        if view is not None:
            image = view.inputs[0]
            return scratch_requests(view, False, target) + [
                ScratchRequest(f"{op.name or 'transpose_conv'}.dilated", image.size, 4)]
    if op.kind in (kinds.SVDF, kinds.UNIDIRECTIONAL_SEQUENCE_LSTM):
        return kernels_recurrent.scratch_requests(op)
    if op.kind == kinds.BATCH_MATMUL:
        op = kernels_matmul.as_fully_connected(op) or op
    if op.kind == kinds.FULLY_CONNECTED and target.fc_weights_int16:
        return [ScratchRequest(f"{op.name or 'fc'}.row", _fc_scratch_bytes(op), 4)]
    if op.kind == kinds.DEPTHWISE_CONV_2D and (in_place or _plane_speeds_up(op, target)):
        # out of place the plane is optional: where the arena has room for it, the plane
        # kernel's assembly runs instead of the c4 kernel (about half the instructions)
        plane_h, pitch = _depthwise_plane(op)
        return [ScratchRequest(f"{op.name or 'depthwise'}.plane", plane_h * pitch, 4, optional=not in_place)]
    return []


def _plane_speeds_up(op: Op, target: Target) -> bool:
    """Whether the channel-plane kernel beats the out-of-place kernels for this depthwise
    conv: its 3x3 assembly (dilation 1, horizontal stride 1 or 2, multiplier 1) on a DSP
    core, with rows of at least 8 outputs (shorter rows spend more on the setup)."""
    a = op.attrs
    return (target.has_dsp and a.depth_multiplier == 1 and tuple(op.inputs[1].shape[1:3]) == (3, 3)
            and tuple(a.dilation) == (1, 1) and a.stride[1] in (1, 2) and op.output.shape[2] >= 8)


# Bytes after each padded plane row that the SIMD depthwise loads may read
# (MCUC_PLANE_SLACK in mcuc_depthwise.h).
_PLANE_SLACK = 8


def _depthwise_plane(op: Op) -> tuple[int, int]:
    """(rows, pitch) of the in-place depthwise kernel's padded channel plane: every row
    and column a window touches, padding included, plus slack for the SIMD loads
    (mcuc_depthwise_plane_rows / _pitch; mcuc_depthwise_in_place_get_buffer_size is their
    product)."""
    w, y = op.inputs[1], op.output
    a = op.attrs
    rows = (y.shape[1] - 1) * a.stride[0] + (w.shape[1] - 1) * a.dilation[0] + 1
    cols = (y.shape[2] - 1) * a.stride[1] + (w.shape[2] - 1) * a.dilation[1] + 1
    return rows, K.round_up(cols + _PLANE_SLACK, 4)


# -- helpers ------------------------------------------------------------------------------

def _offset(program: Program, tensor: Tensor, op: Op) -> int:
    try:
        return program.offsets[tensor]
    except KeyError:
        raise MCUCError(f"{op.label}: tensor {tensor.name!r} has no place in the arena; "
                        "the program's memory plan is incomplete (plan the graph with mcuc.passes.plan)") from None


def _require(cond: bool, op: Op, what: str) -> None:
    if not cond:
        raise MCUCError(f"{op.label}: {what}")


def _zp(t: Tensor) -> int:
    return t.quant.scalar_zero_point if t.quant is not None else 0


def _tflite_requant(fn: str, r: K.Requant, out_zp: int, act_min: int, act_max: int,
                    channels_padded: int) -> tuple[list[CArray], str]:
    """TFLite's output stage: the per-channel arrays and the mcuc_requant_t `{fn}_rq`."""
    arrays = [_ints("int32_t", f"{fn}_mult", K.padded_channels(r.multiplier, channels_padded)),
              _ints("int32_t", f"{fn}_shift", K.padded_channels(r.shift, channels_padded))]
    round_ = slow = "0"  # read only by the fast stage; per channel
    if r.fast:
        arrays.append(_ints("int32_t", f"{fn}_round", K.padded_channels(r.rounding, channels_padded)))
        round_ = f"{fn}_round"
    if r.slow is not None:
        arrays.append(_ints("uint8_t", f"{fn}_slow", K.padded_channels(r.slow.astype(np.int64), channels_padded)))
        slow = f"{fn}_slow"
    return arrays, c_struct("mcuc_requant_t", f"{fn}_rq", dict(
        mult=f"{fn}_mult", shift=f"{fn}_shift", round=round_, slow=slow, out_zp=out_zp, act_min=act_min,
        act_max=act_max, fast=r.mode, zp_folded=int(r.zp_folded)))


def _ort_stream_constants(op: Op, channels_padded: int, weights_per_channel: np.ndarray):
    """onnxruntime's output stage of a GEMM op (ort_requant.OrtRequantConstants) when the
    pair stream can run it: the bounded signed form on every channel (the compiler proved
    the shifts hold) and one clamp to int8's whole range. Else None."""
    from mcuc.ir.ort_numerics import channel_scales

    from .ort_requant import ort_requant_constants

    x, w, y = op.inputs[0], op.inputs[1], op.output
    lo, hi = dtype_range(y.dtype)
    if tuple(min(max(v, op.attrs.act_min), op.attrs.act_max) for v in (lo, hi)) != (-128, 127):
        return None
    scales = channel_scales(x.quant.scale[0], w.quant.scale, y.quant.scale[0], y.shape[-1])
    c = ort_requant_constants(op.label, scales, channels_padded, _zp(y), lo, hi,
                              bounds=K.channel_bounds(weights_per_channel, _bias(op)))
    return None if c.limit is not None or c.checked else c


def _ort_requant(fn: str, op: Op, scales: np.ndarray, channels_padded: int, act_min: int,
                 act_max: int, bounds: np.ndarray | None = None) -> tuple[list[CArray], str]:
    """onnxruntime's output stage (MlasRequantizeOutput) in integers: the constants of each
    channel's float32 scale (ort_requant.py) and the mcuc_ort_requant_t `{fn}_ort`;
    `bounds`, per channel the largest |accumulator| the kernel can reach (None: unknown)."""
    from .ort_requant import ort_requant_constants

    y = op.output
    lo, hi = dtype_range(y.dtype)
    c = ort_requant_constants(op.label, scales, channels_padded, _zp(y), lo, hi, bounds=bounds)
    arrays = [_ints("int32_t", f"{fn}_ort_mult7", c.mult7), _ints("int32_t", f"{fn}_ort_shift", c.shift)]
    if c.limit is not None:
        arrays.append(_uints(f"{fn}_ort_limit", c.limit))
    # [lo, hi] then the activation's range, as one clamp (the same function for any ranges)
    low, high = (min(max(v, act_min), act_max) for v in (lo, hi))
    return arrays, c_struct("mcuc_ort_requant_t", f"{fn}_ort", dict(
        mult7=f"{fn}_ort_mult7", limit="0" if c.limit is None else f"{fn}_ort_limit", shift=f"{fn}_ort_shift",
        round=c.rounding, frac=c.frac, checked=int(c.checked), out_zp=_zp(y), lo=lo, hi=hi, low=low, high=high))


def _tflite_stage(op: Op, multiplier, shift, weights_per_channel: np.ndarray, bias: np.ndarray | None,
                  start: np.ndarray) -> K.Requant | None:
    """TFLite's output stage of an integer GEMM kernel, chosen per channel from each
    channel's accumulator bound (its weights and model bias), a channel without weights
    a constant (its accumulator is `start`, the value the kernel begins from); None under
    onnxruntime's rule."""
    if _is_ort(op):
        return None
    return K.requant_constants(multiplier, shift, K.channel_bounds(weights_per_channel, bias), _zp(op.output),
                               known=K.constant_channels(weights_per_channel, start),
                               act_range=(op.attrs.act_min, op.attrs.act_max))


def _gemm_quant(fn: str, op: Op, r: K.Requant | None, start: np.ndarray, channels_padded: int,
                weights_per_channel: np.ndarray) -> tuple[list[CArray], str]:
    """The constants of an integer GEMM kernel's mcuc_quant_t `{fn}_q`: the values its
    accumulators start from (`start`, 0 on the channels `r` made constants) and the
    output stage under the op's rule (TFLite's, `r` from _tflite_stage, or onnxruntime's
    float32 scales on the same exact accumulators, which `weights_per_channel` [out,
    depth] and the model's bias bound). Returns the arrays and the C of the structs."""
    from mcuc.ir.ort_numerics import channel_scales

    x, w, y = op.inputs[0], op.inputs[1], op.output
    if r is not None:
        start = r.start(start)
    arrays = [_ints("int32_t", f"{fn}_bias", K.padded_channels(start, channels_padded))]
    if r is None:
        scales = channel_scales(x.quant.scale[0], w.quant.scale, y.quant.scale[0], y.shape[-1])
        bounds = K.channel_bounds(weights_per_channel, _bias(op))
        extra, rule = _ort_requant(fn, op, scales, channels_padded, op.attrs.act_min, op.attrs.act_max, bounds)
        pointers = dict(tflite="0", ort=f"&{fn}_ort")
    else:
        extra, rule = _tflite_requant(fn, r, _zp(y), op.attrs.act_min, op.attrs.act_max, channels_padded)
        pointers = dict(tflite=f"&{fn}_rq", ort="0")
    quant = c_struct("mcuc_quant_t", f"{fn}_q", dict(in_zp=_zp(x), bias=f"{fn}_bias", **pointers))
    return arrays + extra, f"{rule}\n{quant}"


def _dims(name: str, shape: tuple[int, ...]) -> str:
    """The mcuc_dims_t of a 4-D NHWC shape, a static local of the step's function."""
    n, h, w, c = shape
    return c_struct("mcuc_dims_t", name, dict(n=n, h=h, w=w, c=c), indent="    ")


def _window(kernel: tuple[int, int], stride, dilation, pad: tuple[int, int]) -> str:
    """The mcuc_window_t `window` of a window op (`pad`: top, left), a static local of the
    step's function."""
    return c_struct("mcuc_window_t", "window", dict(
        kh=kernel[0], kw=kernel[1], stride_h=stride[0], stride_w=stride[1], dil_h=dilation[0],
        dil_w=dilation[1], pad_top=pad[0], pad_left=pad[1]), indent="    ")


def _geometry(x: Tensor, y: Tensor, kernel: tuple[int, int], stride, dilation, padding) -> list[str]:
    """The input and output dims and the window of a window op's call, in that order."""
    return [_dims("in_dims", x.shape), _dims("out_dims", y.shape),
            _window(kernel, stride, dilation, (padding.top, padding.left))]


def _bias(op: Op) -> np.ndarray | None:
    b = op.inputs[2] if len(op.inputs) > 2 else None
    return None if b is None else b.data.astype(np.int64)


def _call(site: Site) -> str:
    return f"{site.name}(arena);"


# -- emitters -----------------------------------------------------------------------------

# The longest GEMM row (inputs per output, padded to 4) that takes the wide stream layout:
# its steps are unrolled, 10 instructions each (mcuc_gemm_pairs_wide_asm), and its int16
# weights double the layer's weight bytes, so only short rows, where a pair's fixed costs
# (start values, stage constants, loop) are a large share, take it.
WIDE_STREAM_MAX_DEPTH = 64


def _emit_16x8(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int16 activations and int8
    weights (16x8): every layer a grouped convolution over OHWI weights (mcuc_conv_s16.h),
    the sum and output stage by the bias's type (mcuc.ir.ops.int16_stage). On DSP cores
    (for speed, input zero point 0) its weights are sign-extended to int16 for two
    products per SMLALD/SMLAD (mcuc_tap16), or for a depthwise conv with multiplier 1,
    two channels per pass (mcuc_depthwise_s16x8)."""
    fn, op = site.fn, step.op
    x, y = op.inputs[0], op.output
    g = grouped_conv(op)
    structs = _geometry(Tensor("x", g.x_shape, x.dtype), Tensor("y", g.y_shape, y.dtype), g.weights.shape[1:3],
                        g.stride, g.dilation, g.padding)
    bias_t = op.inputs[2] if len(op.inputs) > 2 else None
    dsp = target.has_dsp and target.int16_weights and _zp(x) == 0
    w = op.inputs[1]
    # depth multiplier 1: channel pairs on HWC int16 weights (mcuc_depthwise_s16x8), its
    # int32 window sum exact up to 511 taps
    pairs = dsp and op.kind == kinds.DEPTHWISE_CONV_2D and op.attrs.depth_multiplier == 1 and not g.q31 \
        and w.shape[1] * w.shape[2] <= 511
    weights = w.data.reshape(w.shape[1:]) if pairs else g.weights
    arrays = [_ints("int16_t" if dsp else "int8_t", f"{fn}_w", weights),
              _ints("int32_t", f"{fn}_mult", g.multiplier), _ints("int32_t", f"{fn}_shift", g.shift)]
    if bias_t is not None:
        arrays.append(CArray("int32_t" if g.q31 else "int64_t", f"{fn}_bias",
                             [f"{int(v)}" if g.q31 else f"INT64_C({int(v)})" for v in bias_t.data.reshape(-1)]))
    bias = "0" if bias_t is None else f"{fn}_bias"
    quant = c_struct("mcuc_quant16_t", f"{fn}_q", dict(
        bias64=bias if not g.q31 else "0", bias32=bias if g.q31 else "0", mult=f"{fn}_mult", shift=f"{fn}_shift",
        in_zp=_zp(x), out_zp=_zp(y), act_min=op.attrs.act_min, act_max=op.attrs.act_max))
    decls = _render("conv16.j2", site, comment=f"{op.label}: 16x8", arrays=arrays, quant=quant, structs=structs,
                    in_offset=_offset(program, x, op), out_offset=_offset(program, y, op), in_per_group=g.in_per_group,
                    w16=int(dsp), pairs=pairs)
    return StepCode(decls, _call(site), (CONV_S16_H,))


def _emit_conv(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    op = step.op
    x, w, y = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    if is_16x8(op):
        return _emit_16x8(site, step, program, target)
    _require(x.dtype == "int8" and y.dtype == "int8" and w.dtype == "int8", op,
             "the Cortex-M backend supports int8 activations and weights only")
    _require(x.shape[0] == 1, op, f"batch {x.shape[0]} is not supported (batch 1 only)")
    out_ch, kh, kw, cin_g = w.shape
    w2 = w.data.reshape(out_ch, -1)
    bias = _bias(op)
    mult, shift = channel_requant_params(op, x, w, y)
    layout = _conv_layout(op)
    geometry = _geometry(x, y, (kh, kw), a.stride, a.dilation, a.padding)
    ctx = dict(comment=f"{op.label}: {layout} kernel", kernel=layout,
               in_offset=_offset(program, x, op), out_offset=_offset(program, y, op),
               structs=geometry[:2] if layout == "1x1" else geometry, groups=x.shape[3] // cin_g)
    folded = K.folded_bias(bias, w2, _zp(x))
    r = _tflite_stage(op, mult, shift, w2, bias, folded)
    ctx.update(streams=False, in_zp=_zp(x))
    if layout == "grouped":
        weights = _ints("int8_t", f"{fn}_w", w.data)
        padded = out_ch
    else:
        padded = K.round_up(out_ch, 2)
        _require(len(step.scratch) == 1 and step.scratch[0].size >= _conv_scratch_bytes(op), op,
                 "the GEMM row scratch buffer is missing; plan with the Cortex-M backend's scratch_requests")
        ctx["scratch_offset"] = step.scratch[0].offset
        stream = None
        # short rows take the wide layout (int16 weights, twice the bytes; see
        # mcuc_gemm_pairs_wide_asm)
        wide = target.wide_gemm_streams and _conv_depth4(op) <= WIDE_STREAM_MAX_DEPTH
        if target.has_dsp and r is not None and r.mode == 1 and r.zp_folded and (a.act_min, a.act_max) == (-128, 127):
            # TFLite's fast stage on every channel, SSAT's range
            stream = (K.pair_streams(w2, r.start(folded), r.multiplier, r.rounding, r.shift, wide=wide), 0, 0)
        elif target.has_dsp and r is None:
            ort = _ort_stream_constants(op, padded, w2)
            if ort is not None:  # onnxruntime's bounded signed stage on every channel, SSAT's range
                # the constants of the real channels (pair_streams pads an odd count itself)
                stream = (K.pair_streams(w2, folded, ort.mult7[:out_ch], [ort.rounding] * out_ch, ort.shift[:out_ch],
                                         wide=wide),
                          ort.frac, _zp(y))
        if stream is not None:
            # each channel pair's start values, weights and stage constants in one stream
            # (mcuc_gemm_rows2_streams)
            words, frac, zp = stream
            ctx["streams"] = True
            decls = _render("conv.j2", site, arrays=[_uints(f"{fn}_w", words)],
                            quant=c_struct("mcuc_pair_stream_t", f"{fn}_ps",
                                           dict(words=f"{fn}_w", frac=frac, zp=zp, wide=int(wide))),
                            **ctx)
            return StepCode(decls, _call(site), (CONV_H,))
        weights = _ints("int8_t", f"{fn}_w", K.channel_pair_weights(w2))
    arrays, quant = _gemm_quant(fn, op, r, folded, padded, w2)
    decls = _render("conv.j2", site, arrays=[weights] + arrays, quant=quant, **ctx)
    return StepCode(decls, _call(site), (CONV_H,))


def _emit_depthwise(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    op = step.op
    if is_16x8(op):
        return _emit_16x8(site, step, program, target)
    x, w, y = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    _require(x.dtype == "int8" and y.dtype == "int8", op, "the Cortex-M backend supports int8 only")
    _require(x.shape[0] == 1, op, f"batch {x.shape[0]} is not supported (batch 1 only)")
    _, kh, kw, out_ch = w.shape
    wk = w.data.reshape(kh, kw, out_ch)
    bias = _bias(op)
    mult, shift = channel_requant_params(op, x, w, y)
    per_channel = wk.reshape(-1, out_ch).T
    b = np.zeros(out_ch, np.int64) if bias is None else bias
    extra_arrays: list[CArray] = []
    ctx = dict(in_offset=_offset(program, x, op), out_offset=_offset(program, y, op),
               structs=_geometry(x, y, (kh, kw), a.stride, a.dilation, a.padding))
    # The plane kernel copies each input channel plane aside before writing that channel,
    # so it runs in place, or out of place when it is given the plane anyway (a patch
    # stage's region calls: scratch_requests with in_place, see passes/patch.py; or an
    # optional plane the arena had room for).
    planes = [b for b in step.scratch if b.name.endswith(".plane")]
    if isinstance(step.placement, InPlace) or (planes and a.depth_multiplier == 1):
        _require(a.depth_multiplier == 1, op, "an in-place depthwise conv needs depth multiplier 1; "
                 "plan it out of place")
        if isinstance(step.placement, InPlace):
            # InPlace.shift: the output may start whole pixels away from the input;
            # mcuc_depthwise_in_place takes both pointers (see mcuc_depthwise.h).
            moved = step.placement.shift
            _require(ctx["out_offset"] - ctx["in_offset"] == moved and moved % x.shape[3] == 0, op,
                     f"the plan puts the in-place output {ctx['out_offset'] - ctx['in_offset']} bytes from its "
                     f"input but declares shift {moved}; re-run mcuc.passes.plan")
        plane_h, pitch = _depthwise_plane(op)
        _require(len(step.scratch) == 1 and step.scratch[0].size >= plane_h * pitch, op,
                 "the in-place channel plane scratch is missing; plan with the Cortex-M backend's scratch_requests")
        kernel, weights = "in_place", _ints("int8_t", f"{fn}_w", wk)
        ctx.update(scratch_offset=step.scratch[0].offset, taps3=None)
        # The padded plane holds the zero point at padding: fold the input offset.
        b = K.folded_bias(bias, per_channel, _zp(x))
    elif a.depth_multiplier == 1 and out_ch % 4 == 0:
        kernel, weights = "c4", _ints("int16_t", f"{fn}_w", K.depthwise_c4_weights(wk))
    else:
        kernel, weights = "generic", _ints("int8_t", f"{fn}_w", wk)
    r = _tflite_stage(op, mult, shift, per_channel, bias, b)
    if kernel == "in_place" and (kh, kw) == (3, 3) and tuple(a.dilation) == (1, 1) and a.stride[1] in (1, 2):
        # doubled taps on the fast stage's channels save it a shift (the kernel doubles
        # exactly those, mcuc_channel_fast)
        doubled = np.zeros(out_ch, bool) if r is None or not r.fast else \
            (np.ones(out_ch, bool) if r.slow is None else ~r.slow)
        ctx["taps3"] = f"{fn}_taps3"
        extra_arrays.append(_ints("int32_t", f"{fn}_taps3", K.depthwise_row_taps3(wk, doubled=doubled)))
    arrays, quant = _gemm_quant(fn, op, r, b, out_ch, per_channel)
    decls = _render("depthwise.j2", site, arrays=[weights] + extra_arrays + arrays, quant=quant, kernel=kernel,
                    comment=f"{op.label}: {kernel} kernel", **ctx)
    return StepCode(decls, _call(site), (DEPTHWISE_H,))


def _emit_fully_connected(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    from mcuc.ir.ops.fully_connected import requant_params

    op = step.op
    if is_16x8(op):
        return _emit_16x8(site, step, program, target)
    x, w, y = op.inputs[0], op.inputs[1], op.output
    _require(x.dtype == "int8" and y.dtype == "int8" and w.dtype == "int8", op,
             "the Cortex-M backend supports int8 fully connected layers only")
    units, depth = w.shape
    rows = x.size // depth
    bias = _bias(op)
    mult, shift = requant_params(op)
    folded = K.folded_bias(bias, w.data, _zp(x))
    scratch_offset = None
    if target.fc_weights_int16:
        # int16 weights: twice the flash, no weight sign extension in the inner loop
        weights = _ints("int16_t", f"{fn}_w", K.unit_quad_lane_weights16(w.data))
        _require(len(step.scratch) == 1 and step.scratch[0].size >= _fc_scratch_bytes(op), op,
                 "the input row scratch is missing; plan with the Cortex-M backend's scratch_requests")
        scratch_offset = step.scratch[0].offset
    else:
        weights = _ints("int8_t", f"{fn}_w", K.unit_quad_weights(w.data))
    r = _tflite_stage(op, mult, shift, w.data, bias, folded)
    context = dict(comment=f"{op.label}: {rows}x{depth} -> {units}", in_offset=_offset(program, x, op),
                   out_offset=_offset(program, y, op), rows=rows, depth=depth, units=units,
                   scratch_offset=scratch_offset, streams=False)
    if scratch_offset is not None and K.round_up(depth, 4) <= _FC_CHUNK and r is not None and r.mode == 1 \
            and r.zp_folded and (op.attrs.act_min, op.attrs.act_max) == (-128, 127):
        # one chunk of inputs, TFLite's fast stage on every unit, SSAT's range: each group
        # of four units' start values, weights and stage constants in one stream
        # (mcuc_fully_connected_w16_streams)
        words = K.quad_streams16(w.data, r.start(folded), r)
        context["streams"] = True
        decls = _render("fully_connected.j2", site, arrays=[CArray("uint32_t", f"{fn}_w", [f"{int(v)}u" for v in words])],
                        quant="", **context)
        return StepCode(decls, _call(site), (CONV_H,))
    arrays, quant = _gemm_quant(fn, op, r, folded, K.round_up(units, 4), w.data)
    decls = _render("fully_connected.j2", site, arrays=[weights] + arrays, quant=quant, **context)
    return StepCode(decls, _call(site), (CONV_H,))


_LUT_CTYPES = {1: "int8_t", 2: "int16_t", 4: "uint32_t"}


def _emit_lut(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """Every per-element op with an int8 or uint8 input (a uint8 graph input or output
    moves onto int8 by an exact QUANTIZE): a 256-entry table of the op's own reference
    semantics, indexed by the input's bits."""
    fn = site.fn
    op = step.op
    x, y = op.input, op.output
    if x.dtype == "int16" and op.kind in (kinds.RELU, kinds.RELU6, kinds.LEAKY_RELU, kinds.QUANTIZE, kinds.DEQUANTIZE):
        return _emit_map16(site, step, program)
    if x.dtype == "int16" and op.kind in (kinds.LOGISTIC, kinds.TANH):
        return _emit_sigmoid16(site, step, program)
    _require(x.dtype in ("int8", "uint8"), op,
             f"input dtype {x.dtype} is not supported by the Cortex-M backend (int8, uint8)")
    table = K.per_element_table(op)
    itemsize = table.dtype.itemsize
    if table.dtype == np.float32:
        table = table.view(np.uint32)
    elif table.dtype == np.uint8:  # the same bits in the kernel's int8_t table
        table = table.view(np.int8)
    _require(itemsize in _LUT_CTYPES, op, f"output dtype {y.dtype} is not supported by the Cortex-M backend")
    suffix = "u" if itemsize == 4 else ""
    values = [f"{int(v)}{suffix}" for v in table.reshape(-1)]
    decls = _render("lut.j2", site, comment=f"{op.label}: 256-entry table of the reference op",
                    arrays=[CArray(_LUT_CTYPES[itemsize], f"{fn}_table", values)],
                    in_offset=_offset(program, x, op), out_offset=_offset(program, y, op),
                    n=x.size, out_bits=itemsize * 8)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_add_n(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """int8 ADD_N (mcuc.ir.ops.add_n): the inputs' arena addresses and mcuc_add_n_s8."""
    from mcuc.ir.ops.add_n import add_n_params

    op = step.op
    p = add_n_params(op)
    inputs = ", ".join(f"(const int8_t *)(arena + {_offset(program, t, op)})" for t in op.inputs)
    body = (f"    const int8_t *const in[] = {{{inputs}}};\n"
            f"    mcuc_add_n_s8(in, {len(op.inputs)}, (int8_t *)(arena + {_offset(program, op.output, op)}), "
            f"{op.output.size}, {p.input_offset}, {p.input_multiplier}, {p.input_shift}, {p.output_multiplier}, "
            f"{p.output_shift}, {p.output_offset});\n")
    decls = _render("body.j2", site, comment=f"{op.label}: {len(op.inputs)} inputs", arrays=[], params="",
                    body=body)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_cumsum(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """int8 CUMSUM (mcuc.ir.ops.cumsum): mcuc_cumsum_s8 over the lines along the axis."""
    from mcuc.ir.ops.cumsum import cumsum_params

    op = step.op
    p = cumsum_params(op)
    x, a = op.input, op.attrs
    axis = a.axis % len(x.shape)
    pre, post = int(np.prod(x.shape[:axis], dtype=np.int64)), int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    body = (f"    mcuc_cumsum_s8((const int8_t *)(arena + {_offset(program, x, op)}), "
            f"(int8_t *)(arena + {_offset(program, op.output, op)}), {pre}, {x.shape[axis]}, {post}, "
            f"{int(a.exclusive)}, {int(a.reverse)}, {p.input_offset}, {p.input_multiplier}, {p.input_shift}, "
            f"{p.output_multiplier}, {p.output_shift}, {p.output_offset});\n")
    decls = _render("body.j2", site, comment=f"{op.label}: along axis {axis}", arrays=[], params="", body=body)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_sigmoid16(site: Site, step: Step, program: Program) -> StepCode:
    """int16 LOGISTIC and TANH: tflite-micro's interpolated sigmoid table
    (mcuc.ir.ops.sigmoid_int16) and mcuc_sigmoid_s16."""
    from mcuc.ir.ops.sigmoid_int16 import sigmoid16_params, sigmoid_table

    fn, op = site.fn, step.op
    x, y = op.input, op.output
    p = sigmoid16_params(op)
    body = (f"    mcuc_sigmoid_s16((const int16_t *)(const void *)(arena + {_offset(program, x, op)}), "
            f"(int16_t *)(void *)(arena + {_offset(program, y, op)}), {x.size}, {p.multiplier}, {p.shift}, "
            f"{int(op.kind == kinds.TANH)}, {fn}_table);\n")
    decls = _render("body.j2", site, comment=f"{op.label}: int16, interpolated sigmoid table",
                    arrays=[CArray("uint16_t", f"{fn}_table", [f"{v}u" for v in sigmoid_table()])], params="",
                    body=body)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_map16(site: Site, step: Step, program: Program) -> StepCode:
    """RELU, RELU6, LEAKY_RELU, QUANTIZE and DEQUANTIZE of int16 values, per element in C:
    the op's own constants (relu_params, relu6_params, leaky_relu_params,
    requantize_params)."""
    from mcuc.ir.ops.leaky_relu import leaky_relu_params
    from mcuc.ir.ops.quantize import requantize_params
    from mcuc.ir.ops.relu import relu6_params, relu_params

    fn, op = site.fn, step.op
    x, y = op.input, op.output
    common = dict(comment=f"{op.label}: {x.dtype} -> {y.dtype}, per element", in_offset=_offset(program, x, op),
                  out_offset=_offset(program, y, op), n=x.size)
    if op.kind == kinds.DEQUANTIZE:
        return StepCode(_render("map16.j2", site, params=None, dequantize=True, zero_point=_zp(x),
                                scale=_c_f(x.quant.scalar_scale), **common), _call(site), (ELEMENTWISE_H,))
    _require(y.dtype in ("int8", "int16"), op,
             f"{op.kind} of int16 into {y.dtype} is not supported by the Cortex-M backend (int8, int16)")
    if op.kind == kinds.RELU6:
        p = relu6_params(op)
        fields = dict(in_zp=0, out_zp=0, mult=0, shift=0, mult_neg=0, shift_neg=0, lo=p.zero, hi=p.six, rescale=0)
    elif op.kind == kinds.LEAKY_RELU:
        p = leaky_relu_params(op)
        lo, hi = dtype_range(y.dtype)
        fields = dict(in_zp=p.input_zero_point, out_zp=p.output_zero_point, mult=p.multiplier_identity,
                      shift=p.shift_identity, mult_neg=p.multiplier_alpha, shift_neg=p.shift_alpha, lo=lo, hi=hi,
                      rescale=1)
    else:
        p = relu_params(op) if op.kind == kinds.RELU else requantize_params(op)
        lo, hi = (p.act_min, p.act_max) if op.kind == kinds.RELU else dtype_range(y.dtype)
        fields = dict(in_zp=p.input_zero_point, out_zp=p.output_zero_point, mult=p.multiplier, shift=p.shift,
                      mult_neg=p.multiplier, shift_neg=p.shift, lo=lo, hi=hi, rescale=1)
    params = c_struct("mcuc_map16_params_t", f"{fn}_p", fields)
    return StepCode(_render("map16.j2", site, params=params, dequantize=False, wide=int(y.dtype == "int16"),
                            **common), _call(site), (ELEMENTWISE_H,))


def _emit_quantize(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    return _emit_float_quantize(site, step, program, target, "mcuc_quantize_float", ELEMENTWISE_H, "")


def _emit_float_quantize(site: Site, step: Step, program: Program, target: Target, function: str, runtime: str,
                         rule: str) -> StepCode:
    """QUANTIZE of a float32 input through the runtime's `function` (TFLite's rounding or
    onnxruntime's QuantizeLinear, per `rule`); an integer input is a 256-entry table."""
    op = step.op
    x, y = op.input, op.output
    if x.dtype != "float32":
        return _emit_lut(site, step, program, target)
    _require(y.dtype in ("int8", "int16"), op, f"output dtype {y.dtype} is not supported (int8, int16)")
    lo, hi = dtype_range(y.dtype)
    decls = _render("quantize_float.j2", site, comment=f"{op.label}: float32 -> {y.dtype}{rule}",
                    in_offset=_offset(program, x, op), out_offset=_offset(program, y, op), n=x.size,
                    out_ctype=f"{y.dtype}_t", function=function, scale=_c_f(y.quant.scalar_scale),
                    zero_point=_zp(y), lo=lo, hi=hi)
    return StepCode(decls, _call(site), (runtime,))


def _broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of `shape` read along the 6-D padded `out_shape` (0 where broadcast)."""
    padded = (1,) * (6 - len(shape)) + tuple(shape)
    strides, step = [0] * 6, 1
    for axis in range(5, -1, -1):
        strides[axis] = step if padded[axis] != 1 else 0
        step *= padded[axis]
    return strides


def _emit_binary(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    op = step.op
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    _require(x1.dtype == x2.dtype == y.dtype and y.dtype in ("int8", "int16"), op,
             f"{op.kind} of {x1.dtype} and {x2.dtype} into {y.dtype} is not supported by the Cortex-M backend "
             "(int8 or int16 alike)")
    _require(len(y.shape) <= 6, op, f"rank {len(y.shape)} is beyond the supported 6")
    ctype = "int16_t" if y.dtype == "int16" else "int8_t"
    arrays: list[CArray] = []
    # A constant operand (a folded bias or scale) is read from flash; in a patch stage it
    # is the patch's slice, so it is a per-call array.
    consts = [None, None]
    for k, t in enumerate((x1, x2)):
        if t.is_constant:
            consts[k] = f"{site.name}_c{k + 1}"
            arrays.append(CArray(ctype, consts[k], [str(int(v)) for v in t.data.reshape(-1)], per_call=True))
    wide = y.dtype == "int16"
    if op.kind in (kinds.ADD, kinds.SUB):
        from mcuc.ir.ops.add import add_params
        p = add_params(op)
        if wide:  # TFLM's formula per element (left shift 15; 65536-entry tables would not pay)
            params = c_struct("mcuc_add_params_t", f"{fn}_p", dict(
                offset1=p.input1_offset, mult1=p.input1_multiplier, shift1=p.input1_shift,
                offset2=p.input2_offset, mult2=p.input2_multiplier, shift2=p.input2_shift,
                subtract=int(op.kind == kinds.SUB), left_shift=p.left_shift, out_offset=p.output_offset,
                out_mult=p.output_multiplier, out_shift=p.output_shift, act_min=op.attrs.act_min,
                act_max=op.attrs.act_max))
        else:
            t1, t2 = K.add_input_tables(p)
            if op.kind == kinds.SUB:  # TFLM's SUB subtracts the rescaled second input: add its negation
                t2 = -t2
            bound = int(np.abs(t1).max() + np.abs(t2).max())
            r = K.requant_constants([p.output_multiplier], [p.output_shift], bound, p.output_offset)
            requant, params = _tflite_requant(fn, r, p.output_offset, op.attrs.act_min, op.attrs.act_max, 1)
            arrays += [_ints("int32_t", f"{fn}_t1", t1), _ints("int32_t", f"{fn}_t2", t2), *requant]
    else:
        from mcuc.ir.ops.mul import mul_params
        p = mul_params(op)
        params = c_struct("mcuc_mul_params_t", f"{fn}_p", dict(
            offset1=p.input1_offset, offset2=p.input2_offset, out_offset=p.output_offset,
            out_mult=p.output_multiplier, out_shift=p.output_shift, act_min=op.attrs.act_min,
            act_max=op.attrs.act_max))
    flat = op.kind in (kinds.ADD, kinds.SUB) and x1.shape == x2.shape == y.shape and not wide
    extents = list((1,) * (6 - len(y.shape)) + tuple(y.shape))
    decls = _render("binary.j2", site, comment=f"{op.label}", kind=op.kind, flat=flat, arrays=arrays, ctype=ctype,
                    params=params, extents=extents,
                    s1=_broadcast_strides(x1.shape, y.shape), s2=_broadcast_strides(x2.shape, y.shape),
                    in1_offset=None if consts[0] else _offset(program, x1, op),
                    in2_offset=None if consts[1] else _offset(program, x2, op), consts=consts,
                    out_offset=_offset(program, y, op), n=y.size)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


@dataclass(frozen=True)
class _Copy:
    dst_offset: int
    src_offset: int
    extents: list[int]
    dst_strides: list[int]
    src_strides: list[int]
    run: int


def _contiguous_strides(shape: tuple[int, ...], itemsize: int) -> list[int]:
    strides, step = [], itemsize
    for d in reversed(shape):
        strides.insert(0, step)
        step *= d
    return strides


def _block_copy(op: Op, dst: int, src: int, shape, dst_strides, src_strides, itemsize: int) -> _Copy:
    """A copy of `shape` elements, the trailing run merged into one memcpy where both
    sides are contiguous, padded to the kernel's six loops."""
    from mcuc.ir.patch_lowering import merged_runs

    shape, dst_strides, src_strides, run = merged_runs(shape, dst_strides, src_strides, itemsize)
    _require(len(shape) <= 6, op, f"a copy over {len(shape)} non-contiguous axes is beyond the supported 6")
    pad = 6 - len(shape)
    return _Copy(dst, src, [1] * pad + shape, [0] * pad + dst_strides, [0] * pad + src_strides, run)


def _emit_copy(site: Site, op: Op, program: Program, copies: list[_Copy], fill: int | None,
               move: bool = False) -> StepCode:
    """Copies as one step function; `move`: each copy is one run whose source and
    destination may overlap (a line band's shift), so it is a memmove."""
    y = op.output
    if move:
        _require(all(e == 1 for c in copies for e in c.extents), op, "a shift copy must be one contiguous run")
    decls = _render("copy.j2", site, comment=op.label, copies=copies, fill=fill, move=move,
                    out_offset=_offset(program, y, op) if fill is not None else 0, out_bytes=y.nbytes)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_reshape(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    op = step.op
    x, y = op.input, op.output
    src, dst = _offset(program, x, op), _offset(program, y, op)
    if isinstance(step.placement, Alias) or src == dst:
        return StepCode("", f"/* {c_comment(op.label)}: shares its input's bytes */", ())
    return _emit_copy(site, op, program, [_Copy(dst, src, [1] * 6, [0] * 6, [0] * 6, y.nbytes)], None)


def _emit_transpose(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    op = step.op
    x, y = op.input, op.output
    perm = op.attrs.perm
    item = x.itemsize
    in_strides = _contiguous_strides(x.shape, item)
    copy = _block_copy(op, _offset(program, y, op), _offset(program, x, op), y.shape,
                       _contiguous_strides(y.shape, item), [in_strides[p] for p in perm], item)
    return _emit_copy(site, op, program, [copy], None)


def _emit_concatenation(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    from mcuc.ir.ops.concatenation import positive_axis

    op = step.op
    y = op.output
    if isinstance(step.placement, Alias):
        return StepCode("", f"/* {c_comment(op.label)}: producers wrote into the output's slices */", ())
    axis = positive_axis(op)
    item = y.itemsize
    out_strides = _contiguous_strides(y.shape, item)
    copies, start = [], 0
    for t in op.inputs:
        dst = _offset(program, y, op) + start * out_strides[axis]
        if not t.is_constant:
            src = _offset(program, t, op)
            if not (src == dst and t.nbytes == y.nbytes):
                copies.append(_block_copy(op, dst, src, t.shape, out_strides, _contiguous_strides(t.shape, item), item))
        else:
            raise MCUCError(f"{op.label}: constant input {t.name!r} is not supported by the Cortex-M backend")
        start += t.shape[axis]
    return _emit_copy(site, op, program, copies, None)


def _emit_pad(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    from mcuc.ir.ops.pad import pad_value

    op = step.op
    x, y = op.input, op.output
    item = y.itemsize
    value = int(pad_value(op)) & (1 << 8 * item) - 1
    fill = value & 0xFF
    # the copy kernel fills bytes: an int16 value whose two bytes are equal (0, -1)
    _require(value.to_bytes(item, "little") == bytes([fill]) * item, op,
             f"PAD of {y.dtype} with the value {int(pad_value(op))} is not supported by the Cortex-M backend "
             "(int8 values; int16 values 0 and -1)")
    out_strides = _contiguous_strides(y.shape, item)
    dst = _offset(program, y, op) + sum(before * s for (before, _), s in zip(op.attrs.pads, out_strides))
    copy = _block_copy(op, dst, _offset(program, x, op), x.shape, out_strides, _contiguous_strides(x.shape, item),
                       item)
    return _emit_copy(site, op, program, [copy], fill)


def _resize_table(name: str, values) -> CArray:
    return CArray("int16_t", name, [str(int(v)) for v in np.asarray(values).reshape(-1)], per_call=True)


def _emit_resize(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """RESIZE_NEAREST_NEIGHBOR through the op's source row and column tables (the op's own
    map: from its sizes, or explicit on a patch's region)."""
    from mcuc.ir.ops.resize_nearest import source_map

    op = step.op
    x, y = op.input, op.output
    rows, cols = source_map(op)
    decls = _render("resize.j2", site, comment=op.label,
                    arrays=[_resize_table(f"{site.name}_rows", rows), _resize_table(f"{site.name}_cols", cols)],
                    in_offset=_offset(program, x, op), out_offset=_offset(program, y, op),
                    batches=x.shape[0], in_h=x.shape[1], in_w=x.shape[2], out_h=y.shape[1], out_w=y.shape[2],
                    pixel_bytes=x.shape[3] * x.itemsize)
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_pool(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    op = step.op
    x, y = op.input, op.output
    a = op.attrs
    _require(x.dtype in ("int8", "int16"), op,
             f"pooling of {x.dtype} is not supported by the Cortex-M backend (int8, int16)")
    decls = _render("pool.j2", site, comment=op.label, in_offset=_offset(program, x, op),
                    out_offset=_offset(program, y, op),
                    structs=_geometry(x, y, tuple(a.filter), a.stride, (1, 1), a.padding),
                    is_max=int(op.kind == kinds.MAX_POOL_2D), act_min=a.act_min, act_max=a.act_max,
                    wide=int(x.dtype == "int16"))
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _emit_mean(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    from mcuc.ir.ops.mean import mean_requant_params

    op = step.op
    x, y = op.input, op.output
    _require(x.dtype == y.dtype and x.dtype in ("int8", "int16") and not (x.dtype == "int16" and _is_ort(op)), op,
             f"MEAN of {x.dtype} into {y.dtype} is not supported by the Cortex-M backend (int8; int16 under TFLite's rule)")
    axes = set(resolved_axes(op))
    strides = _contiguous_strides(x.shape, 1)
    outer = [(d, s) for i, (d, s) in enumerate(zip(x.shape, strides)) if i not in axes and d != 1]
    inner = [(d, s) for i, (d, s) in enumerate(zip(x.shape, strides)) if i in axes and d != 1]
    _require(len(outer) <= 4 and len(inner) <= 4, op, "MEAN over more than 4 non-unit axes is not supported")
    outer = [(1, 0)] * (4 - len(outer)) + outer
    inner = [(1, 0)] * (4 - len(inner)) + inner
    count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    _require(count > 0, op, "MEAN over an empty axis is not supported")
    lo, hi = dtype_range(y.dtype)
    # The output stage clamps to the output type's range (MEAN fuses no activation).
    if _is_ort(op):
        # QLinearGlobalAveragePool: in_scale / (out_scale * count) in float32
        scale = np.float32(x.quant.scale[0]) / (np.float32(y.quant.scale[0]) * np.float32(count))
        arrays, rule = _ort_requant(fn, op, np.array([scale], np.float32), 1, lo, hi)
        pointers = dict(tflite="0", ort=f"&{fn}_ort")
    else:
        mult, shift = mean_requant_params(op, count)
        r = K.Requant(np.array([mult], np.int64), np.array([shift], np.int64), np.zeros(1, np.int64), False)
        arrays, rule = _tflite_requant(fn, r, _zp(y), lo, hi, 1)
        pointers = dict(tflite=f"&{fn}_rq", ort="0")
    quant = c_struct("mcuc_quant_t", f"{fn}_q", dict(in_zp=_zp(x), bias="0", **pointers))
    loops = c_struct("mcuc_reduce_t", "loops", {
        "outer": _c_ints(d for d, _ in outer), "outer_strides": _c_ints(s for _, s in outer),
        "inner": _c_ints(d for d, _ in inner), "inner_strides": _c_ints(s for _, s in inner)}, indent="    ")
    decls = _render("mean.j2", site, comment=op.label, in_offset=_offset(program, x, op),
                    out_offset=_offset(program, y, op), arrays=arrays, quant=f"{rule}\n{quant}", structs=[loops],
                    wide=int(x.dtype == "int16"))
    return StepCode(decls, _call(site), (ELEMENTWISE_H,))


def _c_ints(values) -> str:
    """A brace-enclosed list of integers (an array field's initializer)."""
    return "{ " + ", ".join(str(int(v)) for v in values) + " }"


def _emit_softmax(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    from mcuc.ir.ops.softmax import ACCUMULATION_INTEGER_BITS, exps_of_row_differences, softmax_params
    from mcuc.ir.fixedpoint_exp import rescale

    op = step.op
    x, y = op.input, op.output
    if x.dtype == "int16":
        return _emit_softmax_int16(site, step, program)
    p = softmax_params(op)
    diffs = -np.arange(256, dtype=np.int64)
    in_range = diffs >= p.diff_min
    exps = np.where(in_range, exps_of_row_differences(np.where(in_range, diffs, 0), p), 0)
    exps_q12 = rescale(exps, 0, ACCUMULATION_INTEGER_BITS)
    depth = x.shape[-1]
    decls = _render("softmax.j2", site, comment=op.label,
                    arrays=[_ints("int32_t", f"{fn}_exps", exps), _ints("int32_t", f"{fn}_exps_q12", exps_q12)],
                    in_offset=_offset(program, x, op), out_offset=_offset(program, y, op),
                    rows=x.size // depth, depth=depth, out_bits=p.output_bits)
    return StepCode(decls, _call(site), (SOFTMAX_H,))




def _emit_softmax_int16(site: Site, step: Step, program: Program) -> StepCode:
    """tflite-micro's int16 SOFTMAX: its two fixed tables (emitted once per step) and
    mcuc_softmax_s16."""
    from mcuc.ir.ops.softmax_int16 import exp_lut, int16_params, one_over_one_plus_x_lut

    fn, op = site.fn, step.op
    x, y = op.input, op.output
    p = int16_params(op)
    depth = x.shape[-1]
    arrays = [_ints("int16_t", f"{fn}_exp", np.array(exp_lut())),
              _ints("int16_t", f"{fn}_recip", np.array(one_over_one_plus_x_lut()))]
    body = (f"    mcuc_softmax_s16((const int16_t *)(const void *)(arena + {_offset(program, x, op)}), "
            f"(int16_t *)(void *)(arena + {_offset(program, y, op)}), {x.size // depth}, {depth}, "
            f"{p.input_multiplier}, {p.input_shift}, {fn}_exp, {fn}_recip);\n")
    decls = _render("body.j2", site, comment=f"{op.label}: int16", arrays=arrays, params="", body=body)
    return StepCode(decls, _call(site), (SOFTMAX_H,))


# -- patch-based stages ----------------------------------------------------------------------

def _emit_patch_stage(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """A PatchLoop: its lowered calls (mcuc.ir.patch_lowering) as they are. The copies of
    one call become one copy function (its gathers, or its scatter); a region call is its
    op's ordinary specialized kernel at the call's offsets, whose constants every patch of
    the op shares."""
    from mcuc.ir.patch_lowering import BoxCopy
    from mcuc.ir.program import PatchLoop

    op = step.op
    stage = op.attrs
    _require(isinstance(step, PatchLoop) and (step.calls or not stage.patches), op,
             "the patch stage is not lowered; schedule it with mcuc.passes.patch.plan_patched")
    decls: list[str] = []
    body: list[str] = []
    runtime: dict[str, None] = {}
    emitted_ops: set[int] = set()
    emitted: dict[str, str] = {}  # a function's text with its name blanked -> the name it has

    def add(code: StepCode, name: str) -> None:
        """The call, and the function unless an identical one (another patch of the same
        shape at the same offsets: the middle patches of a grid, a line band's shifts) is
        already there. GCC folds identical functions itself, so flash is the same; model.c
        is shorter to read and to compile (vww_96 24x1@4+cache: 191 -> 84 functions)."""
        key = code.decls.replace(name, "\0")
        runtime.update(dict.fromkeys(code.runtime))
        if key in emitted:
            body.append(code.call.replace(name, emitted[key]))
            return
        emitted[key] = name
        decls.append(code.decls)
        body.append(code.call)

    # Consecutive copies of one call (its gathers, or its scatter) share a function; each
    # region call stands alone.
    def group_key(call) -> tuple:
        return (call.patch, call.op_index, call.role) if isinstance(call, BoxCopy) else (id(call),)

    for _, group in groupby(step.calls, key=group_key):
        group = list(group)
        first = group[0]
        base = f"{site.fn}_op{first.op_index}"
        name = f"{base}_p{first.patch}"
        if isinstance(first, BoxCopy):
            copies = [_block_copy(op, c.dst, c.src, c.shape, c.dst_strides, c.src_strides, c.itemsize)
                      for c in group if c.nbytes]
            if copies:
                add(_emit_copy(Site.of(f"{name}_{first.role}"), stage.ops[first.op_index], program, copies, None,
                               move=first.role == "shift"), f"{name}_{first.role}")
            continue
        emitter = _emitter_for(first.op, f"{op.label}: ")
        proxy_program = Program(program.graph, (), dict(first.offsets), program.arena_bytes)
        add(emitter(Site(base, name, first=first.op_index not in emitted_ops),
                    Step(first.op, scratch=first.scratch), proxy_program, target), name)
        emitted_ops.add(first.op_index)
    decls.append(_render("patch_stage.j2", site, comment=f"{op.label}: {len(stage.ops)} ops, "
                         f"{stage.grid[0]}x{stage.grid[1]} patches", calls=body))
    return StepCode("\n".join(d for d in decls if d), _call(site), tuple(runtime) or (ELEMENTWISE_H,))


# -- onnxruntime's rule (mcuc_ort.h) --------------------------------------------------------

ORT_H = "mcuc_ort.h"


def _is_ort(op: Op) -> bool:
    return rule_of(op.attrs) == ONNXRUNTIME


def _floats(name: str, values, per_call: bool = False) -> CArray:
    return CArray("float", name, [f"{c_float(v)}f" for v in np.asarray(values, np.float32).reshape(-1)], per_call)


def _c_f(value) -> str:
    return f"{c_float(value)}f"


def _dequantize_table(t: Tensor) -> np.ndarray:
    """DequantizeLinear of every int8 value (index value + 128), float32 as onnxruntime."""
    from mcuc.ir.ort_numerics import int_to_f32

    return int_to_f32(np.arange(-128, 128) - t.quant.scalar_zero_point) * np.float32(t.quant.scale[0])


@dataclass(frozen=True)
class _Gemm:
    """A conv-like op as mcuc_ort_conv_*'s grouped NHWC convolution."""

    in_h: int
    in_w: int
    in_ch: int
    out_h: int
    out_w: int
    out_ch: int
    kh: int
    kw: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]
    groups: int
    weights: np.ndarray   # [oc, kh, kw, cin_g] int8
    scales: np.ndarray    # per output channel weight scale (float32)
    zero_points: np.ndarray


def _gemm_of(op: Op) -> _Gemm:
    x, w, y = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    oc = y.shape[-1]
    scales = np.broadcast_to(w.quant.scale.astype(np.float32), (oc,))
    zps = np.broadcast_to(w.quant.zero_point.astype(np.int64), (oc,))
    if op.kind == kinds.FULLY_CONNECTED:
        units, depth = w.shape
        rows = x.size // depth
        return _Gemm(1, rows, depth, 1, rows, units, 1, 1, (1, 1), (1, 1), (0, 0), 1,
                     w.data.reshape(units, 1, 1, depth), scales, zps)
    if op.kind == kinds.DEPTHWISE_CONV_2D:
        _, kh, kw, _ = w.shape
        weights = np.moveaxis(w.data[0], -1, 0)[..., None]  # [oc, kh, kw, 1]
        groups = x.shape[3]
    else:
        _, kh, kw, cin_g = w.shape
        weights = w.data
        groups = x.shape[3] // cin_g
    return _Gemm(x.shape[1], x.shape[2], x.shape[3], y.shape[1], y.shape[2], oc, kh, kw, tuple(a.stride),
                 tuple(a.dilation), (a.padding.top, a.padding.left), groups, weights, scales, zps)


def _emit_ort_gemm(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED under onnxruntime's rule where its
    kernel is not an exact int32 GEMM: saturating u8 x s8 pairs (OrtInteger.u8s8_pairs) or
    the float group (OrtFloat)."""
    fn = site.fn
    from mcuc.ir.ort_numerics import channel_scales, int_to_f32

    op = step.op
    x, w, y = op.inputs[0], op.inputs[1], op.output
    _require(x.dtype == "int8" and y.dtype == "int8" and w.dtype == "int8", op,
             "the Cortex-M backend supports int8 activations and weights only")
    _require(x.shape[0] == 1 or op.kind == kinds.FULLY_CONNECTED, op, f"batch {x.shape[0]} is not supported (batch 1 only)")
    g = _gemm_of(op)
    oc = g.out_ch
    bias = _bias(op)
    lo, hi = dtype_range(y.dtype)
    arrays: list[CArray] = []
    fields = dict(bias="0", mult="0", limit="0", shift="0", fbias="0", xdeq="0", out_scale=_c_f(y.quant.scale[0]))
    schedule = ""
    if in_float(op.attrs) is not None:
        from mcuc.ir.ops.ort_float import conv_k_blocks, sgemm_k_block

        kernel = "mcuc_ort_conv_float"
        deq = int_to_f32(g.weights.astype(np.int64) - g.zero_points[:, None, None, None]) * g.scales[:, None, None, None]
        arrays.append(_floats(f"{fn}_w", np.ascontiguousarray(deq.transpose(0, 3, 1, 2))))  # [oc][cin_g][kh][kw]
        # which of MLAS's SGEMM kernels sums each output (the reference's own choice)
        if op.kind == kinds.FULLY_CONNECTED:
            kernel = "mcuc_ort_fc_float"
            schedule = (f"{int(op.attrs.numerics.gemm_transposed_b)}, "
                        f"{sgemm_k_block(oc, g.in_ch)}, ")
        elif op.kind == kinds.DEPTHWISE_CONV_2D or oc // g.groups == 1:
            schedule = f"(const uint16_t *)0, {sgemm_k_block(g.out_h * g.out_w, g.kh * g.kw)}, "
        else:
            blocks = conv_k_blocks(op).reshape(-1)
            if np.all(blocks == blocks[0]):
                schedule = f"(const uint16_t *)0, {int(blocks[0])}, "
            else:
                # per call: a patch's columns have their own blocks
                name = f"{site.name}_blocks"
                arrays.append(CArray("uint16_t", name, [str(int(b)) for b in blocks], per_call=True))
                schedule = f"{name}, 0, "
        arrays.append(_floats(f"{fn}_xdeq", _dequantize_table(x)))
        fields["xdeq"] = f"{fn}_xdeq"
        if bias is not None:
            b_t = op.inputs[2]
            fb = int_to_f32(bias) * np.broadcast_to(b_t.quant.scale.astype(np.float32), (oc,))
            arrays.append(_floats(f"{fn}_fbias", fb))
            fields["fbias"] = f"{fn}_fbias"
    else:
        kernel = "mcuc_ort_conv_pairs"
        arrays.append(_ints("int8_t", f"{fn}_w", g.weights))
        zero_point = _zp(x) + 128
        folded = (np.zeros(oc, np.int64) if bias is None else bias) \
            - zero_point * g.weights.reshape(oc, -1).astype(np.int64).sum(axis=1)
        arrays.append(_ints("int32_t", f"{fn}_bias", folded))
        from .ort_requant import ort_requant_constants

        c = ort_requant_constants(op.label, channel_scales(x.quant.scale[0], w.quant.scale, y.quant.scale[0], oc),
                                  oc, _zp(y), lo, hi, signed_path=False)
        arrays += [_uints(f"{fn}_mult", c.mult), _uints(f"{fn}_limit", c.limit), _ints("int32_t", f"{fn}_shift", c.shift)]
        fields.update(bias=f"{fn}_bias", mult=f"{fn}_mult", limit=f"{fn}_limit", shift=f"{fn}_shift")
    params = c_struct("mcuc_ort_conv_t", f"{fn}_p", dict(
        **fields, in_zp=_zp(x), out_zp=_zp(y), lo=lo, hi=hi, act_min=op.attrs.act_min, act_max=op.attrs.act_max))
    pointers = f"(const int8_t *)(arena + {_offset(program, x, op)}), (int8_t *)(arena + {_offset(program, y, op)})"
    if kernel == "mcuc_ort_fc_float":
        body = f"    {kernel}({pointers}, {g.in_w}, {g.in_ch}, {oc}, {schedule}{fn}_w, &{fn}_p);"
    else:
        structs = [_dims("in_dims", (1, g.in_h, g.in_w, g.in_ch)), _dims("out_dims", (1, g.out_h, g.out_w, oc)),
                   _window((g.kh, g.kw), g.stride, g.dilation, g.pad)]
        body = "\n".join(structs + [f"    {kernel}({pointers}, &in_dims, &out_dims, &window, {g.groups},\n"
                                     f"        {schedule}{fn}_w, &{fn}_p);"])
    rule = "float group" if in_float(op.attrs) is not None else "u8 x s8 int16 pairs"
    decls = _render("body.j2", site, comment=f"{op.label}: onnxruntime {rule}", arrays=arrays, params=params,
                    body=body)
    return StepCode(decls, _call(site), (ORT_H,))


def _emit_ort_binary(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """ADD (QLinearAdd) and MUL (QLinearMul) under onnxruntime's rule, and their float
    groups (OrtFloat): per element through the broadcasting six loops."""
    fn = site.fn
    op = step.op
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    a = op.attrs
    _require(x1.dtype == x2.dtype == y.dtype == "int8", op, "the Cortex-M backend supports int8 only")
    _require(len(y.shape) <= 6, op, f"rank {len(y.shape)} is beyond the supported 6")
    lo, hi = dtype_range(y.dtype)
    arrays: list[CArray] = []
    consts = [None, None]
    for k, t in enumerate((x1, x2)):
        if t.is_constant:
            consts[k] = f"{site.name}_c{k + 1}"
            arrays.append(CArray("int8_t", consts[k], [str(int(v)) for v in t.data.reshape(-1)], per_call=True))
    if in_float(a) is not None:
        arrays += [_floats(f"{fn}_deq1", _dequantize_table(x1)), _floats(f"{fn}_deq2", _dequantize_table(x2))]
        ctype, one = "mcuc_ort_float_binary_t", "mcuc_ort_float_binary_one"
        params = dict(deq1=f"{fn}_deq1", deq2=f"{fn}_deq2", out_scale=_c_f(y.quant.scale[0]), out_zp=_zp(y), lo=lo,
                      hi=hi, act_min=a.act_min, act_max=a.act_max, is_mul=int(op.kind == kinds.MUL))
    elif op.kind == kinds.ADD:
        from .ort_binary import ort_add

        f = ort_add(op)
        ctype, one = "mcuc_ort_add_t", "mcuc_ort_add_one"
        params = dict(ra=_c_f(f.ra), rb=_c_f(f.rb), fixed=_c_f(f.fixed), offset=f.offset, lo=lo, hi=hi,
                      act_min=a.act_min, act_max=a.act_max, swap=int(f.swap))
        if f.t1 is not None:
            arrays += [_ints("int32_t", f"{fn}_t1", f.t1), _ints("int32_t", f"{fn}_t2", f.t2)]
            params.update(t1=f"{fn}_t1", t2=f"{fn}_t2", frac=f.frac, exact=int(f.exact))
    else:
        from .ort_binary import ort_mul

        f = ort_mul(op)
        ctype, one = "mcuc_ort_mul_t", "mcuc_ort_mul_one"
        params = dict(za=f.za, zb=f.zb, ratio=_c_f(f.ratio), zc=_c_f(f.zc), offset=f.offset, lo=lo, hi=hi,
                      act_min=a.act_min, act_max=a.act_max)
        if f.thresholds is not None:
            arrays.append(_ints("int32_t", f"{fn}_thresholds", f.thresholds))
            params.update(thresholds=f"{fn}_thresholds", mult=f.mult, shift=f.shift, add=f.add, frac=f.frac)
    extents = [int(e) for e in (1,) * (6 - len(y.shape)) + tuple(y.shape)]
    s1, s2 = _broadcast_strides(x1.shape, y.shape), _broadcast_strides(x2.shape, y.shape)
    in1 = consts[0] or f"(const int8_t *)(arena + {_offset(program, x1, op)})"
    in2 = consts[1] or f"(const int8_t *)(arena + {_offset(program, x2, op)})"
    body = (f"    static const int extents[6] = {{ {', '.join(map(str, extents))} }};\n"
            f"    static const int s1[6] = {{ {', '.join(map(str, s1))} }};\n"
            f"    static const int s2[6] = {{ {', '.join(map(str, s2))} }};\n"
            f"    const int8_t *in1 = {in1};\n    const int8_t *in2 = {in2};\n"
            f"    int8_t *out = (int8_t *)(arena + {_offset(program, y, op)});\n"
            f"    MCUC_FOR6(extents, {{ out[o] = {one}(in1[MCUC_IDX(s1)], in2[MCUC_IDX(s2)], &{fn}_p); }});")
    decls = _render("body.j2", site, comment=f"{op.label}: onnxruntime rule", arrays=arrays,
                    params=c_struct(ctype, f"{fn}_p", params), body=body)
    return StepCode(decls, _call(site), (ORT_H, ELEMENTWISE_H))


def _emit_ort_avg_pool(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    fn = site.fn
    op = step.op
    x, y = op.input, op.output
    a = op.attrs
    _require(x.dtype == y.dtype == "int8", op, "the Cortex-M backend supports int8 pooling only")
    lo, hi = dtype_range(y.dtype)
    float_group = in_float(a) is not None
    if not float_group:
        lo, hi = max(lo, a.act_min), min(hi, a.act_max)
    params = c_struct("mcuc_ort_pool_t", f"{fn}_p", dict(
        xdeq=f"{fn}_xdeq", out_scale=_c_f(y.quant.scale[0]),
        out_zp=_c_f(np.float32(y.quant.scalar_zero_point + uint8_offset(a))), offset=uint8_offset(a), lo=lo, hi=hi,
        count_include_pad=int(a.count_include_pad), float_group=int(float_group), act_min=a.act_min,
        act_max=a.act_max))
    structs = _geometry(x, y, tuple(a.filter), a.stride, (1, 1), a.padding)
    body = "\n".join(structs + [f"    mcuc_ort_avg_pool((const int8_t *)(arena + {_offset(program, x, op)}), "
                                 f"(int8_t *)(arena + {_offset(program, y, op)}),\n"
                                 f"        &in_dims, &out_dims, &window, &{fn}_p);"])
    decls = _render("body.j2", site, comment=f"{op.label}: onnxruntime QLinearAveragePool",
                    arrays=[_floats(f"{fn}_xdeq", _dequantize_table(x))], params=params, body=body)
    return StepCode(decls, _call(site), (ORT_H,))


def _emit_ort_softmax(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """QLinearSoftmax: the float exp table of ort_numerics.qlinear_softmax, built here the
    same way."""
    fn = site.fn
    import math

    op = step.op
    x, y = op.input, op.output
    depth = x.shape[-1]
    x_scale = float(np.float32(x.quant.scale[0]))
    shift = max(0.0, math.log(float(np.finfo(np.float32).max) / depth) - 5.0) / x_scale
    table = np.exp((np.arange(256, dtype=np.float64) - 255 + shift) * x_scale).astype(np.float32)
    floor_inv = np.float32(np.floor(np.float32(1.0) / np.float32(y.quant.scale[0])))
    offset = op.attrs.numerics.offset
    lo, hi = (0, 255) if op.attrs.numerics.uint8 else (-128, 127)
    body = (f"    mcuc_ort_softmax((const int8_t *)(arena + {_offset(program, x, op)}), "
            f"(int8_t *)(arena + {_offset(program, y, op)}), {x.size // depth}, {depth}, {fn}_table,\n"
            f"        {_c_f(floor_inv)}, {_c_f(np.float32(y.quant.scalar_zero_point + offset))}, {offset}, {lo}, {hi});")
    decls = _render("body.j2", site, comment=f"{op.label}: onnxruntime QLinearSoftmax",
                    arrays=[_floats(f"{fn}_table", table)], params="", body=body)
    return StepCode(decls, _call(site), (ORT_H,))


def _emit_ort_quantize(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    return _emit_float_quantize(site, step, program, target, "mcuc_ort_quantize_linear", ORT_H,
                                " (onnxruntime QuantizeLinear)")


# The C function of each float MEAN kernel onnxruntime may run, and what it is.
_ORT_FLOAT_MEANS = {ORT_GLOBAL_AVERAGE_POOL: ("mcuc_ort_global_avg_float", "float GlobalAveragePool"),
                    ORT_REDUCE_MEAN: ("mcuc_ort_reduce_mean_float", "float ReduceMean (Eigen sum)")}


def _emit_ort_mean_float(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """MEAN over H and W left in float by onnxruntime: its GlobalAveragePool (MLAS) or
    its ReduceMean (Eigen) kernel, which add the same values in different orders."""
    fn = site.fn
    op = step.op
    x, y = op.input, op.output
    _require(len(x.shape) == 4 and resolved_axes(op) == (1, 2) and x.dtype == y.dtype == "int8", op,
             "a MEAN left in float by onnxruntime must reduce H and W of a 4-D int8 tensor")
    function, what = _ORT_FLOAT_MEANS[op.attrs.numerics.mean_kernel]
    lo, hi = dtype_range(y.dtype)
    body = (f"    {function}((const int8_t *)(arena + {_offset(program, x, op)}), "
            f"(int8_t *)(arena + {_offset(program, y, op)}), {x.shape[0]}, {x.shape[1] * x.shape[2]}, {x.shape[3]}, "
            f"{fn}_xdeq, {_c_f(y.quant.scale[0])}, {_zp(y)}, {lo}, {hi});")
    decls = _render("body.j2", site, comment=f"{op.label}: onnxruntime {what}",
                    arrays=[_floats(f"{fn}_xdeq", _dequantize_table(x))], params="", body=body)
    return StepCode(decls, _call(site), (ORT_H,))


Emitter = Callable[[Site, Step, Program, Target], StepCode]


def _emit_ort_integer_gemm(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """onnxruntime's integer kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED:
    exact int32 sums (the TFLite kernels, with onnxruntime's output stage) or, with
    OrtInteger.u8s8_pairs, saturating u8 x s8 int16 pairs."""
    if u8s8_pairs(step.op.attrs):
        return _emit_ort_gemm(site, step, program, target)
    exact = {kinds.CONV_2D: _emit_conv, kinds.DEPTHWISE_CONV_2D: _emit_depthwise,
             kinds.FULLY_CONNECTED: _emit_fully_connected}[step.op.kind]
    return exact(site, step, program, target)


def _emit_compare_square(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, PRELU (kernels_binary.py)."""
    return StepCode(*kernels_binary.emit(site, step, program))


def _emit_moves(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """The data movement ops as their copies (kernels_movement.py)."""
    return StepCode(*kernels_movement.emit(site, step, program))


def _emit_reduce(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """REDUCE_MAX, REDUCE_MIN, SUM, ARG_MAX, ARG_MIN (kernels_reduce.py)."""
    return StepCode(*kernels_reduce.emit(site, step, program))


def _emit_matmul(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """BATCH_MATMUL (kernels_matmul.py); a product by a constant matrix as the fully
    connected layer it is (kernels_matmul.as_fully_connected)."""
    view = kernels_matmul.as_fully_connected(step.op)
    if view is not None:
        return _emit_fully_connected(site, Step(view, step.scratch, step.placement), program, target)
    return StepCode(*kernels_matmul.emit(site, step, program))


def _emit_transpose_conv(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """TRANSPOSE_CONV (kernels_transpose_conv.py): on DSP cores the dilated image, then the
    flipped-kernel convolution with the GEMM kernels; the gather loop elsewhere."""
    from dataclasses import replace

    view = kernels_transpose_conv.as_dilated_conv(step.op) if target.has_dsp else None
    if view is None:
        return StepCode(*kernels_transpose_conv.emit(site, step, program))
    _require(len(step.scratch) >= 1, step.op, "the dilated image scratch is missing; plan with the Cortex-M "
                                              "backend's scratch_requests")
    image = step.scratch[-1].offset
    conv = _emit_conv(site, Step(view, step.scratch[:-1], step.placement),
                      replace(program, offsets={**program.offsets, view.inputs[0]: image}), target)
    decl, call = kernels_transpose_conv.emit_dilation(f"{site.name}_dilate", step.op, image, program)
    return StepCode(decl + conv.decls, f"{call}\n    {conv.call}", conv.runtime)


def _emit_norm(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """LOG_SOFTMAX, L2_NORMALIZATION (kernels_norm.py)."""
    return StepCode(*kernels_norm.emit(site, step, program))


def _emit_recurrent(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """SVDF, UNIDIRECTIONAL_SEQUENCE_LSTM (kernels_recurrent.py)."""
    return StepCode(*kernels_recurrent.emit(site, step, program))


def _emit_resize_bilinear(site: Site, step: Step, program: Program, target: Target) -> StepCode:
    """RESIZE_BILINEAR (kernels_resize.py)."""
    return StepCode(*kernels_resize.emit(site, step, program))


# One emitter per (op kind, numerics type of mcuc.ir.numerics); None serves every rule (ops
# that move bytes, or tabulate the op's own evaluate, and MAX_POOL_2D, which rounds
# nothing). TFLite's rule and onnxruntime's integer kernels share the integer kernels,
# whose output stage follows the op's rule (_gemm_quant).
_INTEGER = (TFLiteQ31, OrtInteger)
_ONNXRUNTIME = (OrtInteger, OrtFloat)
_TABLE: list[tuple[tuple[str, ...], tuple[type | None, ...], Emitter]] = [
    ((kinds.CONV_2D,), (TFLiteQ31,), _emit_conv),
    ((kinds.DEPTHWISE_CONV_2D,), (TFLiteQ31,), _emit_depthwise),
    ((kinds.FULLY_CONNECTED,), (TFLiteQ31,), _emit_fully_connected),
    ((kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.FULLY_CONNECTED), (OrtInteger,), _emit_ort_integer_gemm),
    ((kinds.CONV_2D, kinds.DEPTHWISE_CONV_2D, kinds.FULLY_CONNECTED), (OrtFloat,), _emit_ort_gemm),
    ((kinds.MEAN,), _INTEGER, _emit_mean),
    ((kinds.MEAN,), (OrtFloat,), _emit_ort_mean_float),
    ((kinds.ADD, kinds.SUB, kinds.MUL), (TFLiteQ31,), _emit_binary),
    ((kinds.ADD, kinds.MUL), _ONNXRUNTIME, _emit_ort_binary),
    ((kinds.AVERAGE_POOL_2D,), (TFLiteQ31,), _emit_pool),
    ((kinds.AVERAGE_POOL_2D,), _ONNXRUNTIME, _emit_ort_avg_pool),
    ((kinds.MAX_POOL_2D,), (None,), _emit_pool),
    ((kinds.SOFTMAX,), (TFLiteQ31,), _emit_softmax),
    ((kinds.SOFTMAX,), (OrtInteger,), _emit_ort_softmax),
    ((kinds.QUANTIZE,), (TFLiteQ31,), _emit_quantize),
    ((kinds.QUANTIZE,), (OrtInteger,), _emit_ort_quantize),
    ((kinds.LOGISTIC, kinds.HARD_SWISH, kinds.RELU, kinds.RELU6, kinds.LOOKUP_TABLE, kinds.DEQUANTIZE,
      kinds.ABS, kinds.LEAKY_RELU, kinds.TANH, kinds.ELU, kinds.RSQRT), (None,),
     _emit_lut),
    ((kinds.RESHAPE, kinds.SQUEEZE, kinds.EXPAND_DIMS), (None,), _emit_reshape),
    ((kinds.TRANSPOSE,), (None,), _emit_transpose),
    ((kinds.CONCATENATION,), (None,), _emit_concatenation),
    ((kinds.PAD,), (None,), _emit_pad),
    ((kinds.RESIZE_NEAREST_NEIGHBOR,), (None,), _emit_resize),
    ((kinds.PATCH_STAGE,), (None,), _emit_patch_stage),
    ((kinds.MAXIMUM, kinds.MINIMUM, kinds.SQUARED_DIFFERENCE, kinds.DIV), (None,), _emit_compare_square),
    ((kinds.PRELU,), (TFLiteQ31,), _emit_compare_square),
    ((kinds.ADD_N,), (None,), _emit_add_n),
    ((kinds.CUMSUM,), (None,), _emit_cumsum),
    ((kinds.SLICE, kinds.STRIDED_SLICE, kinds.SPLIT, kinds.SPLIT_V, kinds.PACK, kinds.UNPACK, kinds.GATHER,
      kinds.GATHER_ND, kinds.SPACE_TO_DEPTH, kinds.DEPTH_TO_SPACE, kinds.MIRROR_PAD, kinds.SPACE_TO_BATCH_ND,
      kinds.BATCH_TO_SPACE_ND, kinds.REVERSE_V2, kinds.BROADCAST_TO, kinds.FILL, kinds.DYNAMIC_UPDATE_SLICE), (None,),
     _emit_moves),
    ((kinds.REDUCE_MAX, kinds.REDUCE_MIN, kinds.SUM, kinds.ARG_MAX, kinds.ARG_MIN), (None,), _emit_reduce),
    ((kinds.BATCH_MATMUL,), (TFLiteQ31,), _emit_matmul),
    ((kinds.TRANSPOSE_CONV,), (TFLiteQ31,), _emit_transpose_conv),
    ((kinds.LOG_SOFTMAX, kinds.L2_NORMALIZATION), (TFLiteQ31,), _emit_norm),
    ((kinds.RESIZE_BILINEAR,), (None,), _emit_resize_bilinear),
    ((kinds.SVDF, kinds.UNIDIRECTIONAL_SEQUENCE_LSTM), (None,), _emit_recurrent),
]
_EMITTERS: dict[tuple[str, type | None], Emitter] = {
    (kind, rule): emitter for op_kinds, rules, emitter in _TABLE for kind in op_kinds for rule in rules}


def _emitter_for(op: Op, where: str) -> Emitter:
    """The emitter of `op` under its numerics (MCUCError naming `where` and the op when
    the backend has none)."""
    rule = numerics_type(op.attrs)
    emitter = _EMITTERS.get((op.kind, rule)) or _EMITTERS.get((op.kind, None))
    if emitter is not None:
        return emitter
    rules = sorted(r.__name__ for k, r in _EMITTERS if k == op.kind and r is not None)
    if rules:
        raise MCUCError(f"{where}{op.label}: the Cortex-M backend has no {op.kind} kernel under {rule.__name__} "
                        f"numerics (it has {', '.join(rules)})")
    raise MCUCError(f"{where}{op.label}: op kind {op.kind} has no Cortex-M kernel "
                    f"(supported: {', '.join(sorted({k for k, _ in _EMITTERS}))})")


def emit_step(index: int, step: Step, program: Program, target: Target) -> StepCode:
    """The C for step `index` of `program` on `target` (MCUCError for what the backend
    cannot compile, naming the op)."""
    code = _emitter_for(step.op, f"step {index} ")(Site.of(f"mcuc_step{index}"), step, program, target)
    return StepCode(code.decls, code.call, tuple(dict.fromkeys((FIXEDPOINT_H,) + code.runtime)))



def unsupported_kinds() -> list[str]:
    """IR op kinds without an emitter (empty when every kind is covered; a test holds it so)."""
    have = {k for k, _ in _EMITTERS}
    return [k for k in supported_kinds() if k not in have]
