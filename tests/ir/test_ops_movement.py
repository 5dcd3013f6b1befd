"""The data movement ops (SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, EXPAND_DIMS,
GATHER, GATHER_ND, SPACE_TO_DEPTH, DEPTH_TO_SPACE): hypothesis draws each op's legal attributes
(negative axes, every STRIDED_SLICE mask, negative strides, -1 sizes, batch_dims, int8
and int16 where tflite-micro runs int16), writes one model with one layer per op side by
side, and compares every output byte with tflite-micro on the reference interpreter,
llvm, the portable C on the host and a Cortex-M4 and a Cortex-M0 under emulation. The copies each op
module states for the backends (ir/ops/movement.py) are held equal to its numpy
`evaluate`; broken copies are caught; illegal attributes are refused naming the op.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir import Op, Tensor
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import op_def
from mcuc.ir.ops import movement
from mcuc.ir.ops.batch_space import BatchSpaceAttrs
from mcuc.ir.ops.broadcast_to import BroadcastToAttrs
from mcuc.ir.ops.expand_dims import ExpandDimsAttrs
from mcuc.ir.ops.gather import GatherAttrs
from mcuc.ir.ops.mirror_pad import MirrorPadAttrs
from mcuc.ir.ops.pack import PackAttrs
from mcuc.ir.ops.reverse import ReverseAttrs
from mcuc.ir.ops.slice import SliceAttrs
from mcuc.ir.ops.space_depth import BlockAttrs
from mcuc.ir.ops.split import SplitAttrs
from mcuc.ir.ops.strided_slice import StridedSliceAttrs

from tests.ir.test_ops_compare import assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder

NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi)")
KINDS = ("SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "EXPAND_DIMS", "GATHER", "GATHER_ND",
         "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "MIRROR_PAD", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "REVERSE_V2",
         "BROADCAST_TO")


@dataclass
class Layer:
    """One op: its activation input shapes, the TFLite input list (("x", k): activation k;
    ("c", values, dtype): a constant), options, the IR attributes (for output shapes),
    the IR's constant inputs after the activations (GATHER's indices) and its output count."""

    kind: str
    dtype: str
    shapes: list[tuple[int, ...]]
    tfl_inputs: list[tuple]
    options: dict
    attrs: object
    outputs: int = 1
    ir_consts: list = field(default_factory=list)

    def ir_op(self) -> Op:
        ins = [Tensor(f"x{k}", s, self.dtype) for k, s in enumerate(self.shapes)]
        ins += [Tensor(f"c{k}", np.shape(v), d, data=np.asarray(v, d)) for k, (v, d) in enumerate(self.ir_consts)]
        outs = [Tensor(f"y{k}", (), self.dtype) for k in range(self.outputs)]
        return Op(self.kind, tuple(ins), tuple(outs), self.attrs)

    def out_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(s) for s in op_def(self.kind).infer_shapes(self.ir_op())]


def dims(draw, rank: int, low: int = 1, high: int = 4) -> tuple[int, ...]:
    return tuple(draw(st.integers(low, high)) for _ in range(rank))


def int_dtype(draw, int16: bool = True) -> str:
    return "int16" if int16 and draw(st.integers(0, 3)) == 0 else "int8"


@st.composite
def slice_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 5)))
    begin = [draw(st.integers(0, d - 1)) for d in shape]
    size = [draw(st.sampled_from([-1, draw(st.integers(1, d - b))])) for b, d in zip(begin, shape)]
    pdtype = draw(st.sampled_from(["int32", "int64"]))
    return Layer("SLICE", int_dtype(draw), [shape], [("x", 0), ("c", begin, pdtype), ("c", size, pdtype)], {},
                 SliceAttrs(tuple(begin), tuple(size)))


@st.composite
def strided_slice_layer(draw) -> Layer:
    """Every axis non-empty: its first element s and a stop past it in the stride's
    direction, each written in one of the forms that resolve to it (as is, counted from
    the back, clamped from beyond the axis, or by the begin/end mask)."""
    shape = dims(draw, draw(st.integers(1, 4)), 1, 5)
    rank = len(shape)
    shrink = draw(st.integers(0, 2**rank - 1)) if draw(st.booleans()) else 0
    begin, end, strides, begin_mask, end_mask = [], [], [], 0, 0
    for i, d in enumerate(shape):
        stride = draw(st.sampled_from([1, 2, 3])) if shrink >> i & 1 else draw(st.sampled_from([-3, -2, -1, 1, 2, 3]))
        first = draw(st.integers(0, d - 1))
        if stride > 0 and first == 0 and draw(st.booleans()):
            begin_mask |= 1 << i
            begin.append(draw(st.integers(-9, 9)))
        elif stride < 0 and first == d - 1 and draw(st.booleans()):
            begin_mask |= 1 << i
            begin.append(draw(st.integers(-9, 9)))
        else:
            begin.append(draw(st.sampled_from([first, first - d])))
        stop = draw(st.integers(first + 1, d)) if stride > 0 else draw(st.integers(-1, first - 1))
        forms = [stop] if 0 <= stop < d else []
        if 0 <= stop < d:
            forms.append(stop - d)
        if stop == d:
            forms += [d, d + draw(st.integers(0, 3))]
        if stop == -1:
            forms.append(-d - 1 - draw(st.integers(0, 3)))
        if (stop == d or stop == -1) and draw(st.booleans()):
            end_mask |= 1 << i
            end.append(draw(st.integers(-9, 9)))
        else:
            end.append(draw(st.sampled_from(forms)))
        strides.append(stride)
    masks = dict(begin_mask=begin_mask, end_mask=end_mask, shrink_axis_mask=shrink)
    # tflite-micro never reads `offset`; the file's shapes follow its reading.
    return Layer("STRIDED_SLICE", int_dtype(draw), [shape],
                 [("x", 0), ("c", begin, "int32"), ("c", end, "int32"), ("c", strides, "int32")],
                 {**masks, "offset": draw(st.booleans())},
                 StridedSliceAttrs(tuple(begin), tuple(end), tuple(strides), **masks))


@st.composite
def split_layer(draw) -> Layer:
    shape = list(dims(draw, draw(st.integers(1, 4))))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = draw(st.integers(1, 3))
    shape[axis] *= n
    attrs = SplitAttrs(axis, (shape[axis] // n,) * n)
    axis_dtype = draw(st.sampled_from(["int32", "int64"]))  # tflite-micro reads the low word of an int64
    return Layer("SPLIT", int_dtype(draw), [tuple(shape)], [("c", [axis], axis_dtype), ("x", 0)], {"num_splits": n},
                 attrs, n)


@st.composite
def split_v_layer(draw) -> Layer:
    shape = list(dims(draw, draw(st.integers(1, 4))))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 4)))]
    shape[axis] = sum(sizes)
    written = list(sizes)
    if draw(st.booleans()):
        written[draw(st.integers(0, len(sizes) - 1))] = -1
    return Layer("SPLIT_V", int_dtype(draw), [tuple(shape)],
                 [("x", 0), ("c", written, "int32"), ("c", [axis], "int32")], {"num_splits": len(sizes)},
                 SplitAttrs(axis, tuple(sizes)), len(sizes))


@st.composite
def pack_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 3)))
    n = draw(st.integers(1, 4))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Layer("PACK", int_dtype(draw), [shape] * n, [("x", k) for k in range(n)],
                 {"values_count": n, "axis": axis}, PackAttrs(axis))


@st.composite
def unpack_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 4)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Layer("UNPACK", int_dtype(draw), [shape], [("x", 0)], {"num": shape[axis], "axis": axis},
                 PackAttrs(axis), shape[axis])


@st.composite
def expand_dims_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 4)))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Layer("EXPAND_DIMS", int_dtype(draw), [shape], [("x", 0), ("c", [axis], "int32")], {},
                 ExpandDimsAttrs(axis))


@st.composite
def gather_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 4)))
    rank = len(shape)
    axis = draw(st.integers(0, rank - 1))
    batch_dims = draw(st.integers(0, axis))
    idx_shape = shape[:batch_dims] + dims(draw, draw(st.integers(0, 2)), 1, 3)
    if not idx_shape:
        idx_shape = (draw(st.integers(1, 3)),)
        batch_dims = 0
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    indices = rng.integers(0, shape[axis], size=idx_shape).astype(np.int32)
    written_axis = axis - rank if draw(st.booleans()) else axis
    written_bd = batch_dims - len(idx_shape) if draw(st.booleans()) else batch_dims
    return Layer("GATHER", "int8", [shape], [("x", 0), ("c", indices, "int32")],
                 {"axis": written_axis, "batch_dims": written_bd}, GatherAttrs(written_axis, written_bd),
                 ir_consts=[(indices, "int32")])


@st.composite
def block_layer(draw, kind: str) -> Layer:
    b = draw(st.integers(1, 3))
    n, h, w, c = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    shape = (n, h * b, w * b, c) if kind == "SPACE_TO_DEPTH" else (n, h, w, c * b * b)
    return Layer(kind, "int8", [shape], [("x", 0)], {"block_size": b}, BlockAttrs(b))


MIRROR_MODES = {"REFLECT": 0, "SYMMETRIC": 1}  # the schema's MirrorPadMode


@st.composite
def mirror_pad_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 4)), 1, 4)
    mode = draw(st.sampled_from(["REFLECT", "SYMMETRIC"]))
    off = 1 if mode == "REFLECT" else 0
    pads = tuple((draw(st.integers(0, n - off)), draw(st.integers(0, n - off))) for n in shape)
    pdtype = draw(st.sampled_from(["int32", "int64"]))
    return Layer("MIRROR_PAD", "int8", [shape], [("x", 0), ("c", np.array(pads), pdtype)],
                 {"mode": MIRROR_MODES[mode]}, MirrorPadAttrs(pads, mode))


@st.composite
def batch_space_layer(draw, kind: str) -> Layer:
    rank = draw(st.integers(3, 4))
    block = tuple(draw(st.integers(1, 3)) for _ in range(rank - 2))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(rank - 2))
    if kind == "SPACE_TO_BATCH_ND":
        shape = (n, *[s * b for s, b in zip(spatial, block)], c)
        pads = tuple((0, 0) for _ in block)
    else:
        shape = (n * int(np.prod(block)), *spatial, c)
        pads = []
        for s, b in zip(spatial, block):
            top = draw(st.integers(0, s * b - 1))
            pads.append((top, draw(st.integers(0, s * b - 1 - top))))
        pads = tuple(pads)
    return Layer(kind, "int8", [shape], [("x", 0), ("c", list(block), "int32"), ("c", np.array(pads), "int32")], {},
                 BatchSpaceAttrs(block, pads))


@st.composite
def reverse_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 4)))
    rank = len(shape)
    first = draw(st.integers(0, rank - 1))
    count = draw(st.integers(1, rank - first))
    axes = [a - rank if draw(st.booleans()) else a for a in range(first, first + count)]
    axes = draw(st.permutations(axes))
    return Layer("REVERSE_V2", int_dtype(draw), [shape], [("x", 0), ("c", axes, "int32")], {},
                 ReverseAttrs(tuple(axes)))


@st.composite
def broadcast_to_layer(draw) -> Layer:
    shape = dims(draw, draw(st.integers(1, 5)), 1, 3)
    rank = len(shape)
    kept = draw(st.integers(0, rank))
    x = tuple(1 if draw(st.booleans()) else d for d in shape[rank - kept:]) or (1,)
    return Layer("BROADCAST_TO", int_dtype(draw), [x], [("x", 0), ("c", list(shape),
                                                                    draw(st.sampled_from(["int32", "int64"])))],
                 {}, BroadcastToAttrs(shape))


@st.composite
def gather_nd_layer(draw) -> Layer:
    """Index tuples of depth 1..rank (each entry inside its axis, or outside it while the
    flat position stays inside the params: tflite-micro reads that position), in index
    arrays of rank 1..3."""
    shape = dims(draw, draw(st.integers(1, 4)))
    depth = draw(st.integers(1, len(shape)))
    idx_shape = dims(draw, draw(st.integers(0, 2)), 1, 3) + (depth,)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    indices = np.stack([rng.integers(0, shape[j], size=idx_shape[:-1]) for j in range(depth)], axis=-1)
    if depth > 1 and shape[depth - 1] > 1 and draw(st.booleans()):
        # an axis overrun that lands on the next row: flat position still inside
        flat = indices.reshape(-1, depth)
        flat[0, depth - 1] += shape[depth - 1] * (flat[0, depth - 2] < shape[depth - 2] - 1)
    indices = indices.astype(np.int32)
    return Layer("GATHER_ND", "int8", [shape], [("x", 0), ("c", indices, "int32")], {}, None,
                 ir_consts=[(indices, "int32")])


LAYERS = {"SLICE": slice_layer(), "GATHER_ND": gather_nd_layer(), "STRIDED_SLICE": strided_slice_layer(), "SPLIT": split_layer(),
          "SPLIT_V": split_v_layer(), "PACK": pack_layer(), "UNPACK": unpack_layer(),
          "EXPAND_DIMS": expand_dims_layer(), "GATHER": gather_layer(),
          "SPACE_TO_DEPTH": block_layer("SPACE_TO_DEPTH"), "DEPTH_TO_SPACE": block_layer("DEPTH_TO_SPACE"),
          "MIRROR_PAD": mirror_pad_layer(), "SPACE_TO_BATCH_ND": batch_space_layer("SPACE_TO_BATCH_ND"),
          "BATCH_TO_SPACE_ND": batch_space_layer("BATCH_TO_SPACE_ND"), "REVERSE_V2": reverse_layer(),
          "BROADCAST_TO": broadcast_to_layer()}


def model_of(layers: list[Layer], seed: int = 0) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    rng = np.random.default_rng(seed)
    ins, outs, values = [], [], []
    for i, layer in enumerate(layers):
        q = (0.05 + 0.01 * i, (i * 7) % 20 - 10) if layer.dtype == "int8" else (0.001, 0)
        acts = []
        for k, shape in enumerate(layer.shapes):
            acts.append(mb.tensor(f"x{i}_{k}", shape, layer.dtype, *q))
            info = np.iinfo(layer.dtype)
            values.append(rng.integers(info.min, info.max + 1, size=shape).astype(layer.dtype))
        ins += acts
        tfl = []
        for j, entry in enumerate(layer.tfl_inputs):
            if entry[0] == "x":
                tfl.append(acts[entry[1]])
            else:
                tfl.append(mb.tensor(f"p{i}_{j}", np.shape(entry[1]), entry[2], data=np.asarray(entry[1], entry[2])))
        ys = [mb.tensor(f"y{i}_{k}_{layer.kind}", s, layer.dtype, *q) for k, s in enumerate(layer.out_shapes())]
        mb.op(layer.kind, tfl, ys, **layer.options)
        outs += ys
    return mb.build(ins, outs), values


@st.composite
def layer_sets(draw, names=KINDS) -> list[Layer]:
    return [draw(LAYERS[k]) for k in names]


# -- against tflite-micro --------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@settings(deadline=None, max_examples=12)
@given(data=st.data())
def test_reference_matches_oracle(kind, data):
    layers = [data.draw(LAYERS[kind]) for _ in range(3)]
    model, inputs = model_of(layers)
    assert_matches_oracle(model, inputs, what=str(layers))


@settings(deadline=None, max_examples=3)
@given(layers=layer_sets())
def test_llvm_and_c_host_match_oracle(layers):
    model, inputs = model_of(layers)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(layers))


def fixed_layers() -> list[Layer]:
    """One layer of each op, with negative axes, masks and strides."""
    return [
        Layer("SLICE", "int8", [(2, 3, 4)], [("x", 0), ("c", [1, 0, 1], "int32"), ("c", [1, -1, 2], "int32")], {},
              SliceAttrs((1, 0, 1), (1, -1, 2))),
        Layer("STRIDED_SLICE", "int16", [(3, 5, 4)],
              [("x", 0), ("c", [2, 0, -1], "int32"), ("c", [0, 5, 0], "int32"), ("c", [-1, 2, -2], "int32")],
              {"end_mask": 1}, StridedSliceAttrs((2, 0, -1), (0, 5, 0), (-1, 2, -2), end_mask=1)),
        Layer("SPLIT_V", "int8", [(2, 6)], [("x", 0), ("c", [1, -1, 2], "int32"), ("c", [-1], "int32")],
              {"num_splits": 3}, SplitAttrs(-1, (1, 3, 2)), 3),
        Layer("PACK", "int8", [(2, 3)] * 2, [("x", 0), ("x", 1)], {"values_count": 2, "axis": 1}, PackAttrs(1)),
        Layer("UNPACK", "int8", [(2, 3)], [("x", 0)], {"num": 3, "axis": -1}, PackAttrs(-1), 3),
        Layer("EXPAND_DIMS", "int8", [(4, 3)], [("x", 0), ("c", [-1], "int32")], {}, ExpandDimsAttrs(-1)),
        Layer("GATHER", "int8", [(3, 5, 2)], [("x", 0), ("c", np.array([[4, 0], [2, 2]], np.int32), "int32")],
              {"axis": 1}, GatherAttrs(1), ir_consts=[(np.array([[4, 0], [2, 2]], np.int32), "int32")]),
        Layer("GATHER_ND", "int8", [(3, 4, 2)], [("x", 0), ("c", np.array([[2, 1], [0, 5]], np.int32), "int32")],
              {}, None, ir_consts=[(np.array([[2, 1], [0, 5]], np.int32), "int32")]),
        Layer("SPACE_TO_DEPTH", "int8", [(1, 4, 6, 3)], [("x", 0)], {"block_size": 2}, BlockAttrs(2)),
        Layer("DEPTH_TO_SPACE", "int8", [(1, 2, 3, 8)], [("x", 0)], {"block_size": 2}, BlockAttrs(2)),
        Layer("MIRROR_PAD", "int8", [(3, 4)], [("x", 0), ("c", np.array([[2, 1], [3, 0]]), "int32")],
              {"mode": MIRROR_MODES["REFLECT"]}, MirrorPadAttrs(((2, 1), (3, 0)), "REFLECT")),
        Layer("SPACE_TO_BATCH_ND", "int8", [(1, 4, 6, 2)], [("x", 0), ("c", [2, 3], "int32"),
                                                           ("c", np.zeros((2, 2)), "int32")], {},
              BatchSpaceAttrs((2, 3), ((0, 0), (0, 0)))),
        Layer("BATCH_TO_SPACE_ND", "int8", [(6, 2, 2, 3)], [("x", 0), ("c", [3, 2], "int32"),
                                                           ("c", np.array([[1, 2], [0, 1]]), "int32")], {},
              BatchSpaceAttrs((3, 2), ((1, 2), (0, 1)))),
        Layer("REVERSE_V2", "int16", [(2, 3, 4)], [("x", 0), ("c", [-1, 1], "int32")], {}, ReverseAttrs((-1, 1))),
        Layer("BROADCAST_TO", "int8", [(3, 1)], [("x", 0), ("c", [2, 3, 4], "int32")], {}, BroadcastToAttrs((2, 3, 4))),
    ]


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    model, inputs = model_of(fixed_layers())
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


# -- the copies the backends run equal each op's evaluate ----------------------------------------

@settings(deadline=None, max_examples=40)
@given(layers=layer_sets(), seed=st.integers(0, 2**31))
def test_moves_equal_evaluate(layers, seed):
    rng = np.random.default_rng(seed)
    for layer in layers:
        op = layer.ir_op()
        op = op.with_(outputs=tuple(Tensor(f"y{k}", s, layer.dtype) for k, s in enumerate(layer.out_shapes())))
        xs = [rng.integers(-128, 128, size=s).astype(layer.dtype) for s in layer.shapes]
        xs += [np.asarray(v, d) for v, d in layer.ir_consts]
        want = op_def(op.kind).evaluate(op, xs)
        got = movement.run_moves(op, xs)
        for w, g in zip(want, got):
            assert w.shape == g.shape and np.array_equal(w, g), layer


def test_a_broken_copy_is_caught(monkeypatch):
    """A STRIDED_SLICE that walks its negative stride the wrong way (same elements,
    reversed order) must differ."""
    from mcuc.ir.ops import strided_slice

    layer = Layer("STRIDED_SLICE", "int8", [(6,)], [("x", 0), ("c", [4], "int32"), ("c", [0], "int32"),
                                                    ("c", [-2], "int32")], {}, StridedSliceAttrs((4,), (0,), (-2,)))
    model, inputs = model_of([layer])
    assert_matches_oracle(model, inputs)
    real = strided_slice.ranges
    monkeypatch.setattr(strided_slice, "ranges",
                        lambda op: [(s + (c - 1) * st_, -st_, c, sh) for s, st_, c, sh in real(op)])
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


# -- refusals -----------------------------------------------------------------------------------

def _load(layer: Layer, out_shapes=None):
    mb = ModelBuilder()
    acts = [mb.tensor(f"x{k}", s, layer.dtype, 0.1, 0) for k, s in enumerate(layer.shapes)]
    tfl = [acts[e[1]] if e[0] == "x" else mb.tensor(f"p{j}", np.shape(e[1]), e[2], data=np.asarray(e[1], e[2]))
           for j, e in enumerate(layer.tfl_inputs)]
    ys = [mb.tensor(f"y{k}", s, layer.dtype, 0.1, 0) for k, s in enumerate(out_shapes)]
    mb.op(layer.kind, tfl, ys, **layer.options)
    return load_tflite(mb.build(acts, ys))


def test_slice_leaving_the_input_is_refused():
    layer = Layer("SLICE", "int8", [(4,)], [("x", 0), ("c", [3], "int32"), ("c", [2], "int32")], {}, None)
    with pytest.raises(MCUCError, match=r"SLICE.*begin 3 and size 2 leave the input's extent 4"):
        _load(layer, [(2,)])


def test_strided_slice_zero_stride_and_rank_5_are_refused():
    zero = Layer("STRIDED_SLICE", "int8", [(4,)], [("x", 0), ("c", [0], "int32"), ("c", [4], "int32"),
                                                   ("c", [0], "int32")], {}, None)
    with pytest.raises(MCUCError, match=r"STRIDED_SLICE.*strides\[0\] is 0"):
        _load(zero, [(4,)])
    five = Layer("STRIDED_SLICE", "int8", [(1, 1, 1, 1, 2)], [("x", 0)] + [("c", v, "int32") for v in
                                                                         ([0] * 5, [1] * 5, [1] * 5)], {}, None)
    with pytest.raises(MCUCError, match=r"STRIDED_SLICE.*rank 5 is not supported"):
        _load(five, [(1, 1, 1, 1, 1)])


def test_strided_slice_int64_parameters_are_refused():
    layer = Layer("STRIDED_SLICE", "int8", [(4,)], [("x", 0), ("c", [0], "int64"), ("c", [4], "int64"),
                                                    ("c", [1], "int64")], {}, None)
    with pytest.raises(MCUCError, match=r"STRIDED_SLICE.*begin input .* is int64; tflite-micro reads it as int32"):
        _load(layer, [(4,)])


def test_strided_slice_shrink_with_negative_stride_is_refused():
    layer = Layer("STRIDED_SLICE", "int8", [(4, 2)], [("x", 0), ("c", [1, 0], "int32"), ("c", [2, 2], "int32"),
                                                      ("c", [-1, 1], "int32")], {"shrink_axis_mask": 1}, None)
    with pytest.raises(MCUCError, match=r"STRIDED_SLICE.*shrink axis 0 has stride -1"):
        _load(layer, [(2,)])


def test_strided_slice_shrink_past_the_end_is_refused():
    layer = Layer("STRIDED_SLICE", "int8", [(4, 2)], [("x", 0), ("c", [4, 0], "int32"), ("c", [5, 2], "int32"),
                                                      ("c", [1, 1], "int32")], {"shrink_axis_mask": 1}, None)
    with pytest.raises(MCUCError, match=r"STRIDED_SLICE.*shrink axis 0: begin 4 is outside"):
        _load(layer, [(2,)])


def test_gather_out_of_range_constant_indices_are_refused():
    bad = Layer("GATHER", "int8", [(4, 2)], [("x", 0), ("c", np.array([1, 4], np.int32), "int32")], {"axis": 0}, None)
    with pytest.raises(MCUCError, match=r"GATHER.*index 4 is outside \[0, 4\)"):
        _load(bad, [(2, 2)])


def run_time_gather(params_shape, indices_shape, axis, batch_dims, constant_params: bool, seed: int = 0):
    """A GATHER whose indices are a graph input (an embedding lookup when params are
    constant): the model and its inputs, indices in range."""
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    table = rng.integers(-128, 128, size=params_shape).astype(np.int8)
    params = mb.tensor("params", params_shape, "int8", 0.05, 3, data=table if constant_params else None)
    idx = mb.tensor("idx", indices_shape, "int32")
    out_shape = params_shape[:axis] + indices_shape[batch_dims:] + params_shape[axis + 1:]
    y = mb.tensor("y", out_shape, "int8", 0.05, 3)
    mb.op("GATHER", [params, idx], [y], axis=axis, batch_dims=batch_dims)
    inputs = [] if constant_params else [table]
    inputs.append(rng.integers(0, params_shape[axis], size=indices_shape).astype(np.int32))
    return mb.build([idx] if constant_params else [params, idx], [y]), inputs


@settings(deadline=None, max_examples=8)
@given(data=st.data())
def test_gather_with_run_time_indices_matches_oracle(data):
    shape = dims(data.draw, data.draw(st.integers(1, 3)))
    axis = data.draw(st.integers(0, len(shape) - 1))
    batch_dims = data.draw(st.integers(0, axis))
    indices_shape = shape[:batch_dims] + dims(data.draw, data.draw(st.integers(1, 2)), 1, 3)
    model, inputs = run_time_gather(shape, indices_shape, axis, batch_dims, data.draw(st.booleans()),
                                    data.draw(st.integers(0, 2**31)))
    assert_matches_oracle(model, inputs)


def test_gather_with_run_time_indices_on_every_backend():
    for constant_params in (True, False):
        model, inputs = run_time_gather((6, 3, 4), (2, 5), 1 if constant_params else 0, 0, constant_params)
        backends = ("llvm", "c-host") + (("cortex-m4",) if shutil.which("arm-none-eabi-gcc") else ())
        assert_matches_oracle(model, inputs, backends)


def test_gather_run_time_indices_out_of_range_are_clamped_alike():
    """tflite-micro reads outside params there (undefined); every mcuc backend clamps the
    index into the axis, so they agree with each other."""
    from tests.ir.test_ops_compare import outputs_on

    model, inputs = run_time_gather((5, 4), (6,), 0, 0, True)
    inputs = [np.array([-7, 0, 4, 5, 99, 2], np.int32)]
    want = outputs_on("reference", model, inputs)[0]
    table = load_tflite(model).ops[0].inputs[0].data
    assert np.array_equal(want, table[[0, 0, 4, 4, 4, 2]])
    for backend in ("llvm", "c-host"):
        assert np.array_equal(outputs_on(backend, model, inputs)[0], want), backend


def test_gather_int16_and_int64_indices_are_refused():
    wide = Layer("GATHER", "int16", [(4, 2)], [("x", 0), ("c", np.array([1], np.int32), "int32")], {"axis": 0}, None)
    with pytest.raises(MCUCError, match=r"GATHER.*int16; supported: int8"):
        _load(wide, [(1, 2)])
    long = Layer("GATHER", "int8", [(4, 2)], [("x", 0), ("c", np.array([1], np.int64), "int64")], {"axis": 0}, None)
    with pytest.raises(MCUCError, match=r"GATHER.*int64; tflite-micro's GATHER takes int32 indices only"):
        _load(long, [(1, 2)])


def test_split_that_does_not_divide_and_bad_axes_are_refused():
    uneven = Layer("SPLIT", "int8", [(5,)], [("c", [0], "int32"), ("x", 0)], {"num_splits": 2}, None)
    with pytest.raises(MCUCError, match=r"SPLIT.*does not split into 2 equal pieces"):
        _load(uneven, [(2,), (3,)])
    axis = Layer("EXPAND_DIMS", "int8", [(5,)], [("x", 0), ("c", [3], "int32")], {}, None)
    with pytest.raises(MCUCError, match=r"EXPAND_DIMS.*axis 3 is out of range"):
        _load(axis, [(5, 1)])


def test_mirror_pad_too_wide_and_space_to_batch_padding_are_refused():
    wide = Layer("MIRROR_PAD", "int8", [(3,)], [("x", 0), ("c", np.array([[3, 0]]), "int32")],
                 {"mode": MIRROR_MODES["REFLECT"]}, None)
    with pytest.raises(MCUCError, match=r"MIRROR_PAD.*paddings \(3, 0\) exceed 2"):
        _load(wide, [(6,)])
    padded = Layer("SPACE_TO_BATCH_ND", "int8", [(1, 3, 4, 1)], [("x", 0), ("c", [2, 2], "int32"),
                                                                 ("c", np.array([[1, 0], [0, 0]]), "int32")], {},
                   None)
    with pytest.raises(MCUCError, match=r"SPACE_TO_BATCH_ND.*not zero: tflite-micro fills padding with a value"):
        _load(padded, [(4, 2, 2, 1)])


def test_reverse_with_axes_not_consecutive_is_refused():
    layer = Layer("REVERSE_V2", "int8", [(2, 3, 4)], [("x", 0), ("c", [0, 2], "int32")], {}, None)
    with pytest.raises(MCUCError, match=r"REVERSE_V2.*axes \[0, 2\] are not consecutive"):
        _load(layer, [(2, 3, 4)])


def test_space_to_depth_indivisible_is_refused():
    layer = Layer("SPACE_TO_DEPTH", "int8", [(1, 3, 4, 1)], [("x", 0)], {"block_size": 2}, None)
    with pytest.raises(MCUCError, match=r"SPACE_TO_DEPTH.*height 3 and width 4 must be multiples of block_size 2"):
        _load(layer, [(1, 1, 2, 4)])


# -- the generated C is warning-free under strict flags ------------------------------------------

STRICT = ("-O2", "-Wall", "-Wextra", "-Wconversion", "-Wshadow", "-Wcast-align", "-Wpedantic", "-std=c99", "-Werror")


@NEEDS_ARM
def test_generated_c_compiles_without_warnings(tmp_path):
    """Every op of this file and of test_ops_compare.py in one project: the portable C
    (cortex-m0, on the host's gcc) and the cortex-m4 C (arm-none-eabi-gcc), -Werror."""
    import subprocess

    import mcuc
    from tests.ir.test_ops_compare import Case, model_and_inputs

    movement_model, _ = model_of(fixed_layers())
    compare_model, _ = model_and_inputs([
        Case("MAXIMUM", (2, 3), (3,), (0.1, 0), (0.1, 0), (0.1, 0), dtype="int16"),
        Case("MINIMUM", (2, 3), (2, 1), (0.1, 0), (0.1, 0), (0.1, 0), const=2),
        Case("SQUARED_DIFFERENCE", (4,), (4,), (0.1, 3), (0.2, 1), (0.05, -3)),
        Case("SQUARED_DIFFERENCE", (2, 4), (4,), (0.01, 0), (0.02, 0), (0.05, 0), dtype="int16")])
    gather_models = [run_time_gather((6, 3, 4), (2, 5), 1, 0, constant)[0] for constant in (True, False)]
    for k, model in enumerate((movement_model, compare_model, *gather_models)):
        for target, compiler in (("cortex-m0", ["gcc"]),
                                 ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb",
                                                "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"])):
            folder = tmp_path / f"{target}_{k}"
            mcuc.compile_to_directory(model, folder, target=target)
            done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                                  capture_output=True, text=True)
            assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])


def fill_model(constant_value: bool) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    dims_t = mb.tensor("dims", (3,), "int32", data=np.array([2, 3, 4], np.int32))
    if constant_value:
        value = mb.tensor("value", (), "int8", 0.1, 2, data=np.array(-77, np.int8))
    else:  # a scalar computed at run time (the oracle feeds inputs of rank 1 and more)
        given = mb.tensor("given", (1,), "int8", 0.1, 2)
        value = mb.tensor("value", (), "int8", 0.1, 2)
        mb.op("RESHAPE", [given, mb.const("scalar", np.zeros(0, np.int32))], [value])
    y = mb.tensor("y", (2, 3, 4), "int8", 0.1, 2)
    mb.op("FILL", [dims_t, value], [y])
    if constant_value:
        x = mb.tensor("x", (2, 3, 4), "int8", 0.1, 2)
        z = mb.tensor("z", (2, 3, 4), "int8", 0.1, 2)
        mb.op("MAXIMUM", [x, y], [z])
        return mb.build([x], [z]), [np.random.default_rng(1).integers(-128, 128, (2, 3, 4)).astype(np.int8)]
    return mb.build([given], [y]), [np.array([53], np.int8)]


@pytest.mark.parametrize("constant_value", [True, False])
def test_fill_matches_oracle_on_every_backend(constant_value):
    model, inputs = fill_model(constant_value)
    backends = ("reference", "llvm", "c-host") + (("cortex-m4",) if shutil.which("arm-none-eabi-gcc") else ())
    assert_matches_oracle(model, inputs, backends)


def test_fill_int16_and_dims_unlike_the_output_are_refused():
    mb = ModelBuilder()
    dims_t = mb.tensor("dims", (2,), "int32", data=np.array([2, 3], np.int32))
    value = mb.tensor("value", (), "int16", 0.1, 0, data=np.array(5, np.int16))
    y = mb.tensor("y", (2, 3), "int16", 0.1, 0)
    mb.op("FILL", [dims_t, value], [y])
    with pytest.raises(MCUCError, match=r"FILL.*int16; supported: int8"):
        load_tflite(mb.build([], [y]))
    mb = ModelBuilder()
    dims_t = mb.tensor("dims", (2,), "int32", data=np.array([2, 4], np.int32))
    value = mb.tensor("value", (), "int8", 0.1, 0, data=np.array(5, np.int8))
    y = mb.tensor("y", (2, 3), "int8", 0.1, 0)
    mb.op("FILL", [dims_t, value], [y])
    with pytest.raises(MCUCError, match=r"FILL.*dims \[2, 4\] differ from the output shape \[2, 3\]"):
        load_tflite(mb.build([], [y]))


def test_gather_nd_outside_the_params_and_run_time_indices_are_refused():
    bad = Layer("GATHER_ND", "int8", [(2, 3)], [("x", 0), ("c", np.array([[1, 3]], np.int32), "int32")], {}, None)
    with pytest.raises(MCUCError, match=r"GATHER_ND.*index \[1, 3\] lies outside params of shape \[2, 3\]"):
        _load(bad, [(1,)])
    mb = ModelBuilder()
    params = mb.tensor("params", (4, 3), "int8", np.float32(0.1), 0)
    idx = mb.tensor("idx", (2, 1), "int32")
    y = mb.tensor("y", (2, 3), "int8", np.float32(0.1), 0)
    mb.op("GATHER_ND", [params, idx], [y])
    with pytest.raises(MCUCError, match="GATHER_ND.*computed at run time"):
        load_tflite(mb.build([params, idx], [y]))


@pytest.mark.parametrize("constant_ids", [True, False])
def test_embedding_lookup_is_a_gather_of_rows(constant_ids):
    """EMBEDDING_LOOKUP (ids first, then the int8 table) as GATHER along axis 0, against
    tflite-micro on the reference, llvm and c-host."""
    mb = ModelBuilder()
    ids_values = np.array([3, 0, 3, 5], np.int32)
    table = mb.tensor("table", (6, 2, 3), "int8", np.float32(0.05), 3)
    ids = mb.tensor("ids", (4,), "int32", data=ids_values if constant_ids else None)
    y = mb.tensor("y", (4, 2, 3), "int8", np.float32(0.05), 3)
    mb.op("EMBEDDING_LOOKUP", [ids, table], [y])
    inputs = [table] if constant_ids else [ids, table]
    values = [np.random.default_rng(2).integers(-128, 128, (6, 2, 3)).astype(np.int8)]
    if not constant_ids:
        values = [ids_values] + values
    assert_matches_oracle(mb.build(inputs, [y]), values, ("reference", "llvm", "c-host"))
