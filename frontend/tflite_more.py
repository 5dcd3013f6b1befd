"""TFLite builtins added after the first set: their converters, merged into
frontend/tflite.py's table (builtin name -> (options table class, converter)).

A converter gets tflite.py's _OpContext (the op's inputs, outputs and options table) and
returns (IR kind, IR inputs, attributes); shape and quantization rules live in the op
modules (mcuc.ir.ops), which refuse what tflite-micro refuses.
"""
from __future__ import annotations

import numpy as np
import tflite

from mcuc.ir.ops import kinds
from mcuc.ir.ops.arg_min_max import ArgMinMaxAttrs
from mcuc.ir.ops.batch_matmul import BatchMatMulAttrs
from mcuc.ir.ops.batch_space import BatchSpaceAttrs
from mcuc.ir.ops.broadcast_to import BroadcastToAttrs
from mcuc.ir.ops.cumsum import CumsumAttrs
from mcuc.ir.ops.div import DivAttrs
from mcuc.ir.ops.expand_dims import ExpandDimsAttrs
from mcuc.ir.ops.fill import FillAttrs
from mcuc.ir.ops.gather import GatherAttrs
from mcuc.ir.ops.l2_normalization import L2NormAttrs
from mcuc.ir.ops.log_softmax import LogSoftmaxAttrs
from mcuc.ir.ops.lstm import LstmAttrs
from mcuc.ir.ops.maximum_minimum import MaximumMinimumAttrs
from mcuc.ir.ops.mirror_pad import REFLECT, SYMMETRIC, MirrorPadAttrs
from mcuc.ir.ops.pack import PackAttrs
from mcuc.ir.ops.prelu import PreluAttrs
from mcuc.ir.ops.reduce_max import ReduceMaxAttrs
from mcuc.ir.ops.resize_bilinear import ResizeBilinearAttrs
from mcuc.ir.ops.reverse import ReverseAttrs
from mcuc.ir.ops.slice import SliceAttrs
from mcuc.ir.ops.space_depth import BlockAttrs
from mcuc.ir.ops.split import SplitAttrs
from mcuc.ir.ops.squared_difference import SquaredDifferenceAttrs
from mcuc.ir.ops.strided_slice import StridedSliceAttrs
from mcuc.ir.ops.sum import SumAttrs
from mcuc.ir.ops.svdf import SvdfAttrs
from mcuc.ir.ops.transpose_conv import TransposeConvAttrs, tflm_padding

from .tflite_limits import check_int16


def _two_inputs(kind: str, attrs_cls):
    def convert(ctx):
        ctx.need_inputs(2)
        return kind, ctx.inputs, attrs_cls()
    return convert


CONVERTERS = {
    "MAXIMUM": (None, _two_inputs(kinds.MAXIMUM, MaximumMinimumAttrs)),
    "MINIMUM": (None, _two_inputs(kinds.MINIMUM, MaximumMinimumAttrs)),
    "SQUARED_DIFFERENCE": (None, _two_inputs(kinds.SQUARED_DIFFERENCE, SquaredDifferenceAttrs)),
}


# -- data movement ---------------------------------------------------------------------------

def _int32_parameter(ctx, position: int, what: str):
    """A constant parameter input that tflite-micro reads as int32 (an int64 tensor would
    be misread there, so it is refused)."""
    values = ctx.parameter(position, what)
    t = ctx.inputs[position]
    if t.dtype != "int32":
        raise ctx.fail(f"the {what} input {t.name!r} is {t.dtype}; tflite-micro reads it as int32")
    return [int(v) for v in values.ravel()]


def _slice(ctx):
    ctx.need_inputs(3)
    begin = ctx.parameter(1, "begin")
    size = ctx.parameter(2, "size")
    if ctx.inputs[1].dtype != ctx.inputs[2].dtype:
        raise ctx.fail(f"begin is {ctx.inputs[1].dtype} but size is {ctx.inputs[2].dtype}; tflite-micro requires "
                       "one type")
    return kinds.SLICE, ctx.inputs[:1], SliceAttrs(tuple(int(v) for v in begin.ravel()),
                                                   tuple(int(v) for v in size.ravel()))


def _strided_slice(ctx):
    ctx.need_inputs(4)
    o = ctx.options
    begin, end, strides = (_int32_parameter(ctx, k, what) for k, what in ((1, "begin"), (2, "end"), (3, "strides")))
    # tflite-micro sets ellipsis_mask and new_axis_mask to 0 and never reads `offset`.
    return kinds.STRIDED_SLICE, ctx.inputs[:1], StridedSliceAttrs(
        tuple(begin), tuple(end), tuple(strides), int(o.BeginMask()), int(o.EndMask()), int(o.ShrinkAxisMask()))


def _single_axis(ctx, position: int, rank: int, extra: int = 0, wide: bool = False) -> int:
    """The one value of a constant axis input. `wide`: an int64 tensor is accepted too
    (SPLIT and SPLIT_V read the first int32 word, which is the value on little-endian
    targets for any axis)."""
    values = ([int(v) for v in ctx.parameter(position, "axis").ravel()] if wide
              else _int32_parameter(ctx, position, "axis"))
    if len(values) != 1:
        raise ctx.fail(f"the axis input holds {len(values)} values, expected one")
    return ctx.axis(values[0], rank + extra, "axis")


def _split(ctx):
    ctx.need_inputs(2)
    x = ctx.inputs[1]
    axis = _single_axis(ctx, 0, len(x.shape), wide=True)
    n = len(ctx.outputs)
    if ctx.options.NumSplits() != n:
        raise ctx.fail(f"num_splits {ctx.options.NumSplits()} differs from the {n} outputs")
    if x.shape[axis] % n:
        raise ctx.fail(f"axis {axis} of extent {x.shape[axis]} does not split into {n} equal pieces")
    return kinds.SPLIT, [x], SplitAttrs(axis, (x.shape[axis] // n,) * n)


def _split_v(ctx):
    ctx.need_inputs(3)
    x = ctx.inputs[0]
    axis = _single_axis(ctx, 2, len(x.shape), wide=True)
    sizes = [int(v) for v in ctx.parameter(1, "size_splits").ravel()]
    if len(sizes) != len(ctx.outputs):
        raise ctx.fail(f"size_splits has {len(sizes)} entries for {len(ctx.outputs)} outputs")
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        raise ctx.fail(f"size_splits {sizes} may hold at most one -1 and no other negative size")
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
    return kinds.SPLIT_V, [x], SplitAttrs(axis, tuple(sizes))


def _pack(ctx):
    if not ctx.inputs:
        raise ctx.fail("has no inputs")
    ctx.need_inputs(len(ctx.inputs))
    o = ctx.options
    if o.ValuesCount() != len(ctx.inputs):
        raise ctx.fail(f"values_count {o.ValuesCount()} differs from the {len(ctx.inputs)} inputs")
    axis = ctx.axis(int(o.Axis()), len(ctx.inputs[0].shape) + 1, "axis")
    return kinds.PACK, ctx.inputs, PackAttrs(axis)


def _unpack(ctx):
    ctx.need_inputs(1)
    o = ctx.options
    if o.Num() != len(ctx.outputs):
        raise ctx.fail(f"num {o.Num()} differs from the {len(ctx.outputs)} outputs")
    axis = ctx.axis(int(o.Axis()), len(ctx.inputs[0].shape), "axis")
    return kinds.UNPACK, ctx.inputs, PackAttrs(axis)


def _expand_dims(ctx):
    ctx.need_inputs(2)
    axis = _single_axis(ctx, 1, len(ctx.inputs[0].shape), extra=1)
    return kinds.EXPAND_DIMS, ctx.inputs[:1], ExpandDimsAttrs(axis)


def _gather(ctx):
    ctx.need_inputs(2)
    o = ctx.options
    return kinds.GATHER, ctx.inputs, GatherAttrs(int(o.Axis()), int(o.BatchDims()))


def _cumsum(ctx):
    ctx.need_inputs(2)
    x = ctx.inputs[0]
    axis = _single_axis(ctx, 1, len(x.shape))
    o = ctx.options
    return kinds.CUMSUM, ctx.inputs[:1], CumsumAttrs(axis, bool(o.Exclusive()), bool(o.Reverse()))


def _div(ctx):
    ctx.need_inputs(2)
    return kinds.DIV, ctx.inputs, DivAttrs(*ctx.activation())


def _svdf(ctx):
    """Inputs (input, weights_feature, weights_time, bias, state): the state a variable
    tensor the op rewrites (mcuc.ir.ops.svdf). tflite-micro's integer SVDF applies no
    fused activation, and neither does mcuc; a float SVDF is refused by the op's types."""
    if len(ctx.inputs) != 5 or not ctx.outputs:
        raise ctx.fail(f"has {len(ctx.inputs)} inputs and {len(ctx.outputs)} outputs, expected 5 and 1")
    rank = int(ctx.options.Rank())
    return kinds.SVDF, ctx.inputs, SvdfAttrs(rank)


def _lstm(ctx):
    """tflite-micro's 24 inputs as they are (mcuc.ir.ops.lstm): the hidden and cell states
    are variable tensors the op rewrites. The fused activation is the cell gate's: TANH,
    the only one the file format can give that tflite-micro's LSTM computes; projection
    clip and asymmetric inputs belong to parts its integer LSTM does not have."""
    if len(ctx.inputs) != 24 or len(ctx.outputs) != 1:
        raise ctx.fail(f"has {len(ctx.inputs)} inputs and {len(ctx.outputs)} outputs, expected 24 and 1")
    o = ctx.options
    activation = int(o.FusedActivationFunction())
    if activation != tflite.ActivationFunctionType.TANH:
        raise ctx.fail(f"fused_activation_function {_ACTIVATIONS.get(activation, activation)} is not TANH, the "
                       "cell gate activation tflite-micro's LSTM computes")
    if o.DiagonalRecurrentTensors():
        raise ctx.fail("diagonal_recurrent_tensors is set; tflite-micro's LSTM takes full recurrent weights")
    cell_clip = float(o.CellClip())
    if not np.isfinite(cell_clip):
        raise ctx.fail(f"cell_clip {cell_clip} is not finite")
    return kinds.UNIDIRECTIONAL_SEQUENCE_LSTM, ctx.inputs, LstmAttrs(cell_clip, bool(o.TimeMajor()))


_ACTIVATIONS = {v: k for k, v in vars(tflite.ActivationFunctionType).items() if not k.startswith("_")}


def _dynamic_update_slice(ctx):
    ctx.need_inputs(3)
    return kinds.DYNAMIC_UPDATE_SLICE, ctx.inputs, None


def _add_n(ctx):
    ctx.need_inputs(2, len(ctx.inputs))
    return kinds.ADD_N, ctx.inputs, None


def _embedding_lookup(ctx):
    """Rows of `value` (input 1) at the int32 ids of `lookup` (input 0, 1-D): GATHER along
    axis 0 (tflite-micro's int8 -> int8 path copies the rows; an id outside the rows,
    which fails its invocation, is refused when constant and clamped when computed, as
    GATHER's)."""
    ctx.need_inputs(2)
    lookup, value = ctx.inputs
    if len(lookup.shape) != 1 or len(value.shape) < 2:
        raise ctx.fail(f"lookup {list(lookup.shape)} must be 1-D and value {list(value.shape)} at least 2-D "
                       "(tflite-micro's Prepare)")
    return kinds.GATHER, [value, lookup], GatherAttrs(0, 0)


def _gather_nd(ctx):
    ctx.need_inputs(2)
    return kinds.GATHER_ND, ctx.inputs, None


def _block(kind: str):
    def convert(ctx):
        ctx.need_inputs(1)
        return kind, ctx.inputs, BlockAttrs(int(ctx.options.BlockSize()))
    return convert


def _pad_rows(ctx, position: int, what: str, rank: int) -> tuple[tuple[int, int], ...]:
    rows = ctx.parameter(position, what)
    if rows.shape != (rank, 2):
        raise ctx.fail(f"{what} shape {list(rows.shape)} must be ({rank}, 2)")
    return tuple((int(a), int(b)) for a, b in rows)


def _mirror_pad(ctx):
    ctx.need_inputs(2)
    mode = {tflite.MirrorPadMode.REFLECT: REFLECT, tflite.MirrorPadMode.SYMMETRIC: SYMMETRIC}.get(ctx.options.Mode())
    if mode is None:
        raise ctx.fail(f"mode {ctx.options.Mode()} is not REFLECT (0) or SYMMETRIC (1)")
    return kinds.MIRROR_PAD, ctx.inputs[:1], MirrorPadAttrs(_pad_rows(ctx, 1, "paddings", len(ctx.inputs[0].shape)),
                                                            mode)


def _batch_space(kind: str, what: str):
    def convert(ctx):
        ctx.need_inputs(3)
        spatial = len(ctx.inputs[0].shape) - 2
        if spatial not in (1, 2):
            raise ctx.fail(f"input rank {len(ctx.inputs[0].shape)} is not supported (3 or 4, as tflite-micro)")
        block = _int32_parameter(ctx, 1, "block_shape")
        _int32_parameter(ctx, 2, what)
        return kind, ctx.inputs[:1], BatchSpaceAttrs(tuple(block), _pad_rows(ctx, 2, what, spatial))
    return convert


def _reduce_extreme(kind: str):
    def convert(ctx):
        ctx.need_inputs(2)
        axes = _int32_parameter(ctx, 1, "axis")
        return kind, ctx.inputs[:1], ReduceMaxAttrs(tuple(axes), bool(ctx.options.KeepDims()))
    return convert


def _reverse(ctx):
    ctx.need_inputs(2)
    return kinds.REVERSE_V2, ctx.inputs[:1], ReverseAttrs(tuple(_int32_parameter(ctx, 1, "axis")))


def _broadcast_to(ctx):
    ctx.need_inputs(2)
    shape = tuple(int(d) for d in ctx.parameter(1, "shape").ravel())
    return kinds.BROADCAST_TO, ctx.inputs[:1], BroadcastToAttrs(shape)


def _fill(ctx):
    ctx.need_inputs(2)
    dims = ctx.inputs[0]
    if dims is None or not dims.is_constant:
        raise ctx.fail("the dims input must be a constant tensor, as tflite-micro requires")
    shape = tuple(int(d) for d in dims.data.ravel())
    if shape != tuple(ctx.outputs[0].shape):
        raise ctx.fail(f"dims {list(shape)} differ from the output shape {list(ctx.outputs[0].shape)}")
    return kinds.FILL, ctx.inputs[1:], FillAttrs(shape)


def _sum(ctx):
    ctx.need_inputs(2)
    axes = _int32_parameter(ctx, 1, "axis")
    return kinds.SUM, ctx.inputs[:1], SumAttrs(tuple(axes), bool(ctx.options.KeepDims()))


def _arg(kind: str):
    def convert(ctx):
        ctx.need_inputs(2)
        axis = _int32_parameter(ctx, 1, "axis")
        if len(axis) != 1:
            raise ctx.fail(f"the axis input holds {len(axis)} values, expected one")
        return kind, ctx.inputs[:1], ArgMinMaxAttrs(axis[0])
    return convert


CONVERTERS.update({
    "REDUCE_MAX": (tflite.ReducerOptions, _reduce_extreme(kinds.REDUCE_MAX)),
    "REDUCE_MIN": (tflite.ReducerOptions, _reduce_extreme(kinds.REDUCE_MIN)),
    "SUM": (tflite.ReducerOptions, _sum),
    "REVERSE_V2": (None, _reverse),
    "BROADCAST_TO": (None, _broadcast_to),
    "FILL": (None, _fill),
    "ARG_MAX": (tflite.ArgMaxOptions, _arg(kinds.ARG_MAX)),
    "ARG_MIN": (tflite.ArgMinOptions, _arg(kinds.ARG_MIN)),
    "MIRROR_PAD": (tflite.MirrorPadOptions, _mirror_pad),
    "SPACE_TO_BATCH_ND": (None, _batch_space(kinds.SPACE_TO_BATCH_ND, "paddings")),
    "BATCH_TO_SPACE_ND": (None, _batch_space(kinds.BATCH_TO_SPACE_ND, "crops")),
    "SLICE": (None, _slice),
    "STRIDED_SLICE": (tflite.StridedSliceOptions, _strided_slice),
    "SPLIT": (tflite.SplitOptions, _split),
    "SPLIT_V": (tflite.SplitVOptions, _split_v),
    "PACK": (tflite.PackOptions, _pack),
    "UNPACK": (tflite.UnpackOptions, _unpack),
    "EXPAND_DIMS": (None, _expand_dims),
    "GATHER": (tflite.GatherOptions, _gather),
    "GATHER_ND": (None, _gather_nd),
    "EMBEDDING_LOOKUP": (None, _embedding_lookup),
    "ADD_N": (None, _add_n),
    "DYNAMIC_UPDATE_SLICE": (None, _dynamic_update_slice),
    "SVDF": (tflite.SVDFOptions, _svdf),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (tflite.UnidirectionalSequenceLSTMOptions, _lstm),
    "DIV": (tflite.DivOptions, _div),
    "CUMSUM": (tflite.CumsumOptions, _cumsum),
    "SPACE_TO_DEPTH": (tflite.SpaceToDepthOptions, _block(kinds.SPACE_TO_DEPTH)),
    "DEPTH_TO_SPACE": (tflite.DepthToSpaceOptions, _block(kinds.DEPTH_TO_SPACE)),
})


# -- matrix products ---------------------------------------------------------------------------

def _batch_matmul(ctx):
    ctx.need_inputs(2)
    o = ctx.options
    return kinds.BATCH_MATMUL, ctx.inputs, BatchMatMulAttrs(bool(o.AdjX()), bool(o.AdjY()))


def _transpose_conv(ctx):
    """Inputs (output_shape, weights, input, bias): tflite-micro never reads output_shape
    (the output tensor's shape rules), so neither does mcuc; the padding comes from the
    output size (mcuc.ir.ops.transpose_conv.tflm_padding)."""
    ctx.need_inputs(3, 4)
    o = ctx.options
    w, x = ctx.inputs[1], ctx.inputs[2]
    bias = ctx.inputs[3] if len(ctx.inputs) > 3 else None
    if w is None or x is None:
        raise ctx.fail("the weights (input 1) and the input (input 2) are required")
    y = ctx.outputs[0]
    if len(y.shape) != 4 or len(w.shape) != 4:
        raise ctx.fail(f"output {list(y.shape)} and weights {list(w.shape)} must be 4-D")
    stride = (int(o.StrideH()), int(o.StrideW()))
    if min(stride) < 1:
        raise ctx.fail(f"stride {stride} must be positive (stride_h, stride_w)")
    if o.Padding() not in (tflite.Padding.SAME, tflite.Padding.VALID):
        raise ctx.fail(f"padding value {o.Padding()} is not SAME (0) or VALID (1)")
    same = o.Padding() == tflite.Padding.SAME
    pad = tuple(tflm_padding(same, y.shape[1 + k], w.shape[1 + k], stride[k]) for k in range(2))
    check_int16(ctx.where, "stride", stride)
    check_int16(ctx.where, "padding", pad)
    act_min, act_max = ctx.activation()
    inputs = [x, w] + ([bias] if bias is not None else [])
    return kinds.TRANSPOSE_CONV, inputs, TransposeConvAttrs((y.shape[1], y.shape[2]), stride, pad, act_min, act_max)


CONVERTERS.update({
    "BATCH_MATMUL": (tflite.BatchMatMulOptions, _batch_matmul),
    "TRANSPOSE_CONV": (tflite.TransposeConvOptions, _transpose_conv),
})


# -- normalizations ----------------------------------------------------------------------------

def _one_input(kind: str, attrs_cls):
    def convert(ctx):
        ctx.need_inputs(1)
        return kind, ctx.inputs, attrs_cls()
    return convert


def _l2_normalization(ctx):
    ctx.need_inputs(1)
    if ctx.options.FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
        raise ctx.fail(f"fused_activation_function {ctx.options.FusedActivationFunction()} is not NONE; "
                       "tflite-micro's Prepare requires NONE")
    return kinds.L2_NORMALIZATION, ctx.inputs, L2NormAttrs()


CONVERTERS.update({
    "LOG_SOFTMAX": (None, _one_input(kinds.LOG_SOFTMAX, LogSoftmaxAttrs)),
    "PRELU": (None, _two_inputs(kinds.PRELU, PreluAttrs)),
    "L2_NORMALIZATION": (tflite.L2NormOptions, _l2_normalization),
})


def _resize_bilinear(ctx):
    """The size input must be a constant int32 vector of two values (Prepare) equal to the
    output's height and width (tflite-micro loops over the size, addresses by the output)."""
    ctx.need_inputs(2)
    size = _int32_parameter(ctx, 1, "size")
    if len(ctx.inputs[1].shape) != 1 or len(size) != 2:
        raise ctx.fail(f"size input has shape {list(ctx.inputs[1].shape)}; tflite-micro takes a 1-D (height, width)")
    y = ctx.outputs[0]
    if len(y.shape) != 4 or tuple(size) != tuple(y.shape[1:3]):
        raise ctx.fail(f"size {size} differs from the output's height and width {list(y.shape[1:3])}")
    o = ctx.options
    return kinds.RESIZE_BILINEAR, ctx.inputs[:1], ResizeBilinearAttrs((size[0], size[1]), bool(o.AlignCorners()),
                                                                      bool(o.HalfPixelCenters()))


CONVERTERS.update({
    "RESIZE_BILINEAR": (tflite.ResizeBilinearOptions, _resize_bilinear),
})
