"""REDUCE_MAX and REDUCE_MIN (int8), SUM (int8 and int16) and ARG_MAX / ARG_MIN (int8 -> int32): hypothesis draws shapes,
axes (negative and repeated ones, keep_dims) and inputs with many ties (the first index
must win), writes one model with a layer per op side by side and compares every output
byte with tflite-micro on the reference interpreter, llvm, the portable C on the host and
a Cortex-M4 and a Cortex-M0 under emulation. Broken rules are caught; what tflite-micro refuses is
refused naming the op.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError
from mcuc.ir.ops import arg_min_max as arg_op

from tests.ir.test_ops_compare import assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder, pack

NEEDS_ARM = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi)")


@dataclass(frozen=True)
class Layer:
    kind: str
    shape: tuple[int, ...]
    axes: tuple[int, ...]
    keep_dims: bool = False
    spread: int = 128  # inputs drawn from [-spread, spread): small spreads make ties
    seed: int = 0
    qo: tuple[float, int] = (0.1, 0)  # SUM's output quantization
    dtype: str = "int8"  # SUM also runs int16

    def out_shape(self) -> tuple[int, ...]:
        rank = len(self.shape)
        axes = {a % rank for a in self.axes}
        if self.keep_dims:
            return tuple(1 if i in axes else d for i, d in enumerate(self.shape))
        return tuple(d for i, d in enumerate(self.shape) if i not in axes)


def model_of(layers: list[Layer]) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values, reducers = [], [], [], []
    for i, layer in enumerate(layers):
        q = (0.02 + 0.01 * i, i % 5 - 2)
        x = mb.tensor(f"x{i}", layer.shape, layer.dtype, *q)
        axis = mb.tensor(f"a{i}", (len(layer.axes),), "int32", data=np.array(layer.axes, np.int32))
        if layer.kind in ("REDUCE_MAX", "REDUCE_MIN", "SUM"):
            qo = layer.qo if layer.kind == "SUM" else q
            y = mb.tensor(f"y{i}", layer.out_shape(), layer.dtype, *qo)
            mb.op(layer.kind, [x, axis], [y])
            reducers.append((len(mb.operators) - 1, layer.keep_dims))
        else:
            y = mb.tensor(f"y{i}", layer.out_shape(), "int32")
            mb.op(layer.kind, [x, axis], [y], output_type=schema.TensorType.INT32)
        ins.append(x)
        outs.append(y)
        rng = np.random.default_rng(layer.seed)
        spread = layer.spread * (256 if layer.dtype == "int16" and layer.spread == 128 else 1)
        values.append(rng.integers(-spread, spread, size=layer.shape).astype(layer.dtype))
    model = mb.build_model(ins, outs)
    for index, keep in reducers:  # the builder has no table for REDUCE_MAX's ReducerOptions
        options = schema.ReducerOptionsT()
        options.keepDims = keep
        model.subgraphs[0].operators[index].builtinOptionsType = schema.BuiltinOptions.ReducerOptions
        model.subgraphs[0].operators[index].builtinOptions = options
    return pack(model), values


@st.composite
def layers(draw, kind: str) -> Layer:
    shape = tuple(draw(st.integers(1, 5)) for _ in range(draw(st.integers(1, 4))))
    rank = len(shape)
    spread = draw(st.sampled_from([1, 2, 3, 128]))
    seed = draw(st.integers(0, 2**31))
    if kind in ("REDUCE_MAX", "REDUCE_MIN", "SUM"):
        axes = tuple(draw(st.integers(-rank, rank - 1)) for _ in range(draw(st.integers(1, rank + 1))))
        qo = (float(np.float32(2.0 ** draw(st.floats(-7.0, 3.0)))), draw(st.integers(-128, 127)))
        dtype = "int16" if kind == "SUM" and draw(st.integers(0, 2)) == 0 else "int8"
        return Layer(kind, shape, axes, draw(st.booleans()), spread, seed, qo, dtype)
    return Layer(kind, shape, (draw(st.integers(-rank, rank - 1)),), False, spread, seed)


KINDS = ("REDUCE_MAX", "REDUCE_MIN", "SUM", "ARG_MAX", "ARG_MIN")


@pytest.mark.parametrize("kind", KINDS)
@settings(deadline=None, max_examples=15)
@given(data=st.data())
def test_reference_matches_oracle(kind, data):
    case = [data.draw(layers(kind)) for _ in range(3)]
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, what=str(case))


@settings(deadline=None, max_examples=3)
@given(data=st.data())
def test_llvm_and_c_host_match_oracle(data):
    case = [data.draw(layers(kind)) for kind in KINDS]
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(case))


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    case = [Layer("REDUCE_MAX", (2, 3, 4, 5), (1, -1), True, 3), Layer("REDUCE_MAX", (4, 6), (0,), False, 128, 1),
            Layer("ARG_MAX", (2, 7, 3), (1,), False, 2, 2), Layer("ARG_MIN", (5, 4), (-1,), False, 2, 3),
            Layer("SUM", (2, 3, 4, 5), (1, 2, -2), True, 128, 4, (0.07, 9)), Layer("SUM", (6, 5), (0,), False, 128, 5,
                                                                                    (0.002, -100)),
            Layer("SUM", (3, 4), (1,), False, 128, 6, (0.3, 0), "int16"),
            Layer("REDUCE_MIN", (3, 4, 5), (-1, 0), True, 3, 7)]
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


def test_last_index_on_ties_is_caught(monkeypatch):
    """Ties must go to the first index; numpy's argmax over the reversed axis picks the last."""
    def last(x, axis):
        n = x.shape[axis]
        return n - 1 - np.argmax(np.flip(x, axis=axis), axis=axis)

    case = [Layer("ARG_MAX", (4, 9), (1,), False, 1, 5)]
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs)
    monkeypatch.setattr(arg_op, "pick", lambda op: last)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_sum_without_the_zero_point_correction_is_caught(monkeypatch):
    from mcuc.ir.ops import sum as sum_op

    case = [Layer("SUM", (3, 4), (1,), False, 128, 6, (0.2, 7))]
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs)
    real = sum_op.sum_params
    monkeypatch.setattr(sum_op, "sum_params", lambda op: real(op).__class__(
        real(op).count, 0, real(op).multiplier, real(op).shift, real(op).output_zero_point))
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_reduce_max_with_other_output_quantization_is_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 3), "int8", 0.1, 0)
    a = mb.tensor("a", (1,), "int32", data=np.array([1], np.int32))
    y = mb.tensor("y", (2,), "int8", 0.2, 0)
    mb.op("REDUCE_MAX", [x, a], [y])
    with pytest.raises(MCUCError, match=r"REDUCE_MAX.*requires them equal"):
        load_tflite(mb.build([x], [y]))


def test_arg_max_int64_output_and_axis_out_of_range_are_refused():
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 3), "int8", 0.1, 0)
    a = mb.tensor("a", (1,), "int32", data=np.array([1], np.int32))
    y = mb.tensor("y", (2,), "int64")
    mb.op("ARG_MAX", [x, a], [y], output_type=schema.TensorType.INT64)
    with pytest.raises(MCUCError, match=r"ARG_MAX.*int64; tflite-micro writes int32 indices only"):
        load_tflite(mb.build([x], [y]))
    mb = ModelBuilder()
    x = mb.tensor("x", (2, 3), "int8", 0.1, 0)
    a = mb.tensor("a", (1,), "int32", data=np.array([2], np.int32))
    y = mb.tensor("y", (2,), "int32")
    mb.op("ARG_MIN", [x, a], [y], output_type=schema.TensorType.INT32)
    with pytest.raises(MCUCError, match=r"axis 2 is out of range"):
        load_tflite(mb.build([x], [y]))


@NEEDS_ARM
def test_generated_c_compiles_without_warnings(tmp_path):
    import subprocess

    import mcuc
    from tests.ir.test_ops_movement import STRICT

    model, _ = model_of([Layer("REDUCE_MAX", (2, 3, 4), (0, 2), True), Layer("REDUCE_MAX", (3,), (0,)),
                         Layer("ARG_MAX", (2, 5), (1,)), Layer("ARG_MIN", (4,), (0,)),
                         Layer("SUM", (2, 3, 4), (1,), False, 128, 0, (0.01, 3)),
                         Layer("SUM", (2, 3), (0,), True, 128, 0, (0.5, 0), "int16"),
                         Layer("REDUCE_MIN", (2, 3, 4), (1,), False)])
    for target, compiler in (("cortex-m0", ["gcc"]),
                             ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                            "-mfpu=fpv4-sp-d16"])):
        folder = tmp_path / target
        mcuc.compile_to_directory(model, folder, target=target)
        done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])
