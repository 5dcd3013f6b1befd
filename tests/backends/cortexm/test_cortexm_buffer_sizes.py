"""The scratch the Cortex-M backend asks the planner for (kernels.scratch_requests, in
Python, before any C exists) equals what each kernel states it needs in C, its
<kernel>_get_buffer_size in runtime_c/. The C functions are called through ctypes with
the same mcuc_dims_t / mcuc_window_t structs the generated code passes, so the struct
layouts are checked too."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from mcuc.backends.cortexm import get_target
from mcuc.backends.cortexm.kernels import scratch_requests
from mcuc.ir import Op, Quantization, Tensor
from mcuc.ir.ops import op_def
from mcuc.ir.ops.common import Padding2D
from mcuc.ir.ops.conv2d import Conv2DAttrs
from mcuc.ir.ops.depthwise_conv2d import DepthwiseConv2DAttrs
from mcuc.ir.ops.fully_connected import FullyConnectedAttrs

from tests.support.c_library import host_library

_WRAPPERS = r"""
#include "mcuc_depthwise.h"
int w_conv_1x1(const mcuc_dims_t *in_dims) { return mcuc_conv_1x1_get_buffer_size(in_dims); }
int w_conv_im2col(const mcuc_dims_t *in_dims, const mcuc_window_t *win) {
    return mcuc_conv_im2col_get_buffer_size(in_dims, win);
}
int w_depthwise_in_place(const mcuc_dims_t *out_dims, const mcuc_window_t *win) {
    return mcuc_depthwise_in_place_get_buffer_size(out_dims, win);
}
int w_fully_connected_w16(int depth, int units) { return mcuc_fully_connected_w16_get_buffer_size(depth, units); }
"""


class Dims(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("n", "h", "w", "c")]


class Window(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in
                ("kh", "kw", "stride_h", "stride_w", "dil_h", "dil_w", "pad_top", "pad_left")]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    library = host_library(tmp_path_factory, "buffer_sizes", _WRAPPERS, "c11")
    library.w_conv_1x1.argtypes = [ctypes.POINTER(Dims)]
    library.w_conv_im2col.argtypes = [ctypes.POINTER(Dims), ctypes.POINTER(Window)]
    library.w_depthwise_in_place.argtypes = [ctypes.POINTER(Dims), ctypes.POINTER(Window)]
    library.w_fully_connected_w16.argtypes = [ctypes.c_int, ctypes.c_int]
    for f in (library.w_conv_1x1, library.w_conv_im2col, library.w_depthwise_in_place,
              library.w_fully_connected_w16):
        f.restype = ctypes.c_int
    return library


def _activation(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name, shape, "int8", Quantization(np.float32(0.05), 3))


def _weights(shape: tuple[int, ...], channels: int, axis: int, rng: np.random.Generator) -> Tensor:
    return Tensor("w", shape, "int8", Quantization(np.full(channels, 0.02, np.float32), np.zeros(channels, np.int64),
                                                   axis=axis),
                  rng.integers(-127, 128, shape).astype(np.int8))


def _op(kind: str, inputs: tuple[Tensor, ...], attrs) -> Op:
    probe = Op(kind, inputs, (_activation("probe", (1,)),), attrs)
    (shape,) = op_def(kind).infer_shapes(probe)
    return Op(kind, inputs, (_activation("y", shape),), attrs, name="layer")


def _dims(t: Tensor) -> Dims:
    return Dims(*t.shape)


def _window(w: Tensor, a) -> Window:
    return Window(w.shape[1], w.shape[2], a.stride[0], a.stride[1], a.dilation[0], a.dilation[1],
                  a.padding.top, a.padding.left)


def _requested(op: Op, in_place: bool, target: str = "cortex-m4") -> int:
    (request,) = scratch_requests(op, in_place, get_target(target))
    return request.size


def test_pointwise_conv_rows(lib):
    rng = np.random.default_rng(1)
    for _ in range(40):
        cin, cout = 4 * int(rng.integers(1, 64)), int(rng.integers(1, 40))
        h, w = (int(v) for v in rng.integers(1, 20, 2))
        x = _activation("x", (1, h, w, cin))
        op = _op("CONV_2D", (x, _weights((cout, 1, 1, cin), cout, 0, rng)), Conv2DAttrs())
        assert _requested(op, False) == lib.w_conv_1x1(_dims(x)), (x.shape, cout)


def test_im2col_conv_rows(lib):
    rng = np.random.default_rng(2)
    for _ in range(60):
        cin, cout = int(rng.integers(1, 40)), int(rng.integers(1, 24))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        pad = [int(v) for v in rng.integers(0, 3, 4)]
        if (kh, kw, stride) == (1, 1, (1, 1)) and pad == [0, 0, 0, 0]:
            stride = (2, 1)  # a pointwise conv with cin % 4 == 0 runs the 1x1 kernel instead
        x = _activation("x", (1, int(rng.integers(kh * dilation[0], 24)), int(rng.integers(kw * dilation[1], 24)), cin))
        attrs = Conv2DAttrs(stride=stride, dilation=dilation, padding=Padding2D(*pad))
        w = _weights((cout, kh, kw, cin), cout, 0, rng)
        op = _op("CONV_2D", (x, w), attrs)
        assert _requested(op, False) == lib.w_conv_im2col(_dims(x), _window(w, attrs)), (x.shape, attrs)


def test_in_place_depthwise_plane(lib):
    rng = np.random.default_rng(3)
    for _ in range(60):
        ch = int(rng.integers(1, 33))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
        pad = [int(v) for v in rng.integers(0, 3, 4)]
        x = _activation("x", (1, int(rng.integers(kh * dilation[0], 30)), int(rng.integers(kw * dilation[1], 30)), ch))
        attrs = DepthwiseConv2DAttrs(stride=stride, dilation=dilation, padding=Padding2D(*pad))
        w = _weights((1, kh, kw, ch), ch, 3, rng)
        op = _op("DEPTHWISE_CONV_2D", (x, w), attrs)
        assert _requested(op, True) == lib.w_depthwise_in_place(_dims(op.output), _window(w, attrs)), \
            (x.shape, attrs)


@pytest.mark.parametrize("depth", [1, 3, 4, 5, 63, 64, 250, 252, 253, 256, 257, 260, 1000, 4000])
def test_fully_connected_w16_rows(lib, depth):
    rng = np.random.default_rng(depth)
    for units in (1, 3, 4, 10, 129):
        x = _activation("x", (2, depth))
        op = _op("FULLY_CONNECTED", (x, _weights((units, depth), units, 0, rng)), FullyConnectedAttrs())
        # cortex-m4 widens fully connected weights to int16 and runs mcuc_fully_connected_w16
        assert _requested(op, False) == lib.w_fully_connected_w16(depth, units), (depth, units)
