"""Broken and hostile .tflite files (issue 18): each one is refused with one clear line
(exit 2, the problem named, no traceback) where tflite-micro would compute nonsense or
something mcuc does not."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support import hostile_models as hm
from tests.support.hostile_models import refused
from tests.support.paths import shared_model_path
from tests.support.tflite_builder import pack, unpack


def _save(tmp_path, data: bytes, name: str = "m.tflite"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_float32_bias_in_an_int8_layer_is_refused(tmp_path, capsys, kind):
    channels = 4 if kind == "DEPTHWISE_CONV_2D" else 3
    data = hm.tflite_conv(kind, channels=channels, bias_dtype="float32")
    message = refused(capsys, "compile", _save(tmp_path, data), "-o", tmp_path / "out")
    assert f"({kind})" in message and "'b' is float32" in message and "int32 bias" in message


def test_float32_bias_in_a_shared_model_is_refused(tmp_path, capsys):
    model = unpack(shared_model_path("ad01_int8").read_bytes())
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    sg = model.subgraphs[0]
    op = next(o for o in sg.operators if len(o.inputs) > 2 and o.inputs[2] >= 0)
    sg.tensors[op.inputs[2]].type = schema.TensorType.FLOAT32
    assert "int32 bias" in refused(capsys, "inspect", _save(tmp_path, pack(model)))


@pytest.mark.parametrize("multiplier", [0, 1, 3, 1000000])
def test_depth_multiplier_that_disagrees_with_the_weights_is_refused(tmp_path, capsys, multiplier):
    """tflite-micro follows the option (and crashes on 1000000); the weights say 2."""
    data = hm.tflite_conv("DEPTHWISE_CONV_2D", channels=4, out_channels=8, depth_multiplier=multiplier)
    message = refused(capsys, "verify", _save(tmp_path, data))
    assert f"depth_multiplier {multiplier} disagrees" in message and "multiplier of 2" in message


@pytest.mark.parametrize("knob, value", [("x_scale", 1e38), ("y_scale", 1e38), ("w_scale", float("inf")),
                                         ("y_scale", -1.0), ("x_scale", 0.0), ("w_scale", 1e-38)])
def test_quantization_scales_no_model_has_are_refused(tmp_path, capsys, knob, value):
    message = refused(capsys, "inspect", _save(tmp_path, hm.tflite_conv(**{knob: value})))
    assert "quantization scale" in message and "[1e-30, 1e+06]" in message


def test_empty_zero_point_vector_is_refused(tmp_path, capsys):
    model = unpack(hm.tflite_conv())
    model.subgraphs[0].tensors[0].quantization.zeroPoint = []
    assert "no zero point" in refused(capsys, "inspect", _save(tmp_path, pack(model)))


def test_zero_point_error_names_the_bad_value(tmp_path, capsys):
    model = unpack(hm.tflite_conv(out_channels=4))
    q = model.subgraphs[0].tensors[1].quantization  # the weights, per channel
    q.scale, q.zeroPoint, q.quantizedDimension = [0.02] * 4, [0, 0, 0, 999], 0
    message = refused(capsys, "inspect", _save(tmp_path, pack(model)))
    assert "zero point 999 (channel 3) is outside the int8 range" in message


def test_huge_dilation_is_refused(tmp_path, capsys):
    data = hm.tflite_conv(dilation_h_factor=2**31 - 1, dilation_w_factor=2**31 - 1, padding="SAME")
    assert "dilation (2147483647, 2147483647) exceeds 32767" in refused(capsys, "inspect", _save(tmp_path, data))


@pytest.mark.parametrize("kind, options, words", [
    ("MAX_POOL_2D", dict(filter_width=65537, filter_height=3, padding="SAME"), "SAME padding (1, 32768)"),
    ("CONV_2D", dict(stride_w=40000, stride_h=1), "stride (1, 40000)"),
])
def test_values_beyond_tflite_micros_int16_fields_are_refused(tmp_path, capsys, kind, options, words):
    """Found by the fuzz run (seed 23 case 1770): a MAX_POOL_2D whose filter width was
    mutated to 65537. tflite-micro keeps SAME padding in int16_t (32768 wraps to -32768),
    its window came out empty and every output -128, where mcuc took the max of the row:
    mcuc refuses what tflite-micro's 16-bit fields cannot hold."""
    from tests.support.tflite_builder import single_op_model

    data = single_op_model(kind, [(1, 6, 6, 2)], np.random.default_rng(0), **options)
    message = refused(capsys, "inspect", _save(tmp_path, data))
    assert words in message and "exceeds 32767" in message


def test_zero_by_zero_kernel_is_refused(tmp_path, capsys):
    model = unpack(hm.tflite_conv())
    sg = model.subgraphs[0]
    sg.tensors[1].shape = [4, 0, 0, 3]
    model.buffers[sg.tensors[1].buffer].data = []
    message = refused(capsys, "compile", _save(tmp_path, pack(model)), "-o", tmp_path / "out")
    assert "CONV_2D" in message


def test_int32_bias_that_can_overflow_is_refused(tmp_path, capsys):
    data = hm.tflite_conv(bias=[2**31 - 1, -2**31, 0, 5])
    message = refused(capsys, "inspect", _save(tmp_path, data))
    assert "bias 2147483647 of output channel 0" in message and "beyond int32" in message


def test_huge_input_is_refused_before_allocating(tmp_path, capsys):
    model = unpack(hm.tflite_conv(size=5))
    sg = model.subgraphs[0]
    sg.tensors[0].shape, sg.tensors[3].shape = [1, 5000, 5000, 3], [1, 4998, 4998, 4]
    message = refused(capsys, "compile", _save(tmp_path, pack(model)), "-o", tmp_path / "out")
    assert "tensor 'x'" in message and "--max-tensor-bytes" in message
    assert "64 MiB" in message


def test_no_graph_outputs_is_refused(tmp_path, capsys):
    model = unpack(hm.tflite_conv())
    model.subgraphs[0].outputs = []
    assert "no graph outputs" in refused(capsys, "inspect", _save(tmp_path, pack(model)))


def test_long_tensor_names_are_cut_in_messages(tmp_path, capsys):
    model = unpack(hm.tflite_conv())
    long = "w" * 5000
    model.subgraphs[0].tensors[1].name = long
    model.subgraphs[0].tensors[1].shape = [4, 3, 3, 2]  # inconsistent with the input: an error naming it
    model.buffers[model.subgraphs[0].tensors[1].buffer].data = np.zeros(72, np.uint8)
    message = refused(capsys, "inspect", _save(tmp_path, pack(model)))
    assert long not in message and len(message) < 300


def test_shared_models_pass_every_check():
    """The validation refuses nonsense only: every shared model still loads."""
    from mcuc.model import load_model
    from tests.support.paths import shared_model_names

    for name in shared_model_names():
        assert load_model(shared_model_path(name)).graph.ops


def test_unquantized_int8_operand_of_a_conv_is_refused(tmp_path, capsys):
    """An int8 input without scale and zero point (its quantization table emptied): no
    backend may guess one."""
    model = unpack(hm.tflite_conv())
    q = model.subgraphs[0].tensors[0].quantization
    q.scale, q.zeroPoint = [], []
    message = refused(capsys, "verify", _save(tmp_path, pack(model)), "--backends", "reference,llvm")
    assert "int8 input 'x' has no quantization" in message


# -- found by the fuzz run (tests/fuzz, scripts/fuzz.py) -----------------------------------

@pytest.mark.parametrize("out_scale, ok", [(1e-30, False), (1e-12, False), (1e-8, True)])
def test_mean_that_rescales_by_2_to_the_30_or_more_is_refused(tmp_path, capsys, out_scale, ok):
    """An output scale of 1e-30 gave reference and llvm answers that differed from
    tflite-micro's; below a ratio of 2^30 all three agree."""
    from tests.support.tflite_builder import single_op_model

    data = single_op_model("MEAN", [(1, 5, 5, 4)], np.random.default_rng(1), axes=[1, 2], keep_dims=True,
                           input_quants=[(0.06, 3)], output_quant=(out_scale, -64))
    path = _save(tmp_path, data)
    if ok:
        code, _out, err = hm.run_cli(capsys, "verify", path, "--backends", "reference,llvm", "--samples", "3")
        assert code == 0, err
    else:
        assert "input scale / output scale" in refused(capsys, "verify", path)


# Input scale 0.5 over 2^-31: a ratio of exactly 2^30; one float32 step above 2^-31 (1 +
# 2^-20) puts the ratio just below it.
_AT_2_TO_THE_30 = 2.0**-31
_JUST_BELOW_2_TO_THE_30 = float(np.float32(2.0**-31 * (1 + 2.0**-20)))


@pytest.mark.parametrize("input_dtype, output_dtype", [("int8", "int8"), ("int8", "int16"), ("int16", "int8")])
@pytest.mark.parametrize("out_scale", [_AT_2_TO_THE_30, 1e-30])
def test_integer_quantize_that_rescales_by_2_to_the_30_or_more_is_refused(tmp_path, capsys, input_dtype,
                                                                          output_dtype, out_scale):
    """An integer QUANTIZE (a requantization) scales by input scale / output scale like
    MEAN: at 2^30 or more it is refused naming the op, as the MEAN above."""
    from tests.support.tflite_builder import single_op_model

    data = single_op_model("QUANTIZE", [(1, 4, 4, 3)], np.random.default_rng(0), input_dtype=input_dtype,
                           output_dtype=output_dtype, input_quants=[(0.5, 0)], output_quant=(out_scale, 0))
    message = refused(capsys, "inspect", _save(tmp_path, data))
    assert message.startswith("QUANTIZE 'output': input scale / output scale = ") and "not below 2^30" in message


@pytest.mark.parametrize("output_dtype", ["int8", "int16"])
def test_integer_quantize_just_below_2_to_the_30_loads_and_matches_tflite_micro(tmp_path, capsys, output_dtype):
    """The near miss of the test above: a ratio one float32 step below 2^30 loads, and
    reference and llvm compute what tflite-micro does."""
    from tests.support.tflite_builder import single_op_model

    assert 0.5 / _JUST_BELOW_2_TO_THE_30 < 2.0**30 <= 0.5 / _AT_2_TO_THE_30
    data = single_op_model("QUANTIZE", [(1, 4, 4, 3)], np.random.default_rng(0), output_dtype=output_dtype,
                           input_quants=[(0.5, 0)], output_quant=(_JUST_BELOW_2_TO_THE_30, 0))
    code, _out, err = hm.run_cli(capsys, "verify", _save(tmp_path, data), "--backends", "reference,llvm",
                                 "--samples", "3")
    assert code == 0, err


def _transpose_conv_with_kernel(kh: int, kw: int) -> bytes:
    """A 1x1 -> 1x1 int8 TRANSPOSE_CONV, stride 1, SAME, with a kh x kw kernel of ones:
    tflite-micro's padding is (k - 1) // 2 on each axis."""
    from tests.support.tflite_builder import ModelBuilder

    mb = ModelBuilder()
    x = mb.tensor("x", (1, 1, 1, 1), "int8", 0.1, 0)
    w = mb.tensor("w", (1, kh, kw, 1), "int8", [0.01], [0], data=np.ones((1, kh, kw, 1)))
    y = mb.tensor("y", (1, 1, 1, 1), "int8", 0.1, 0)
    mb.op("TRANSPOSE_CONV", [mb.const("s", [1, 1, 1, 1]), w, x], [y], padding="SAME", stride_h=1, stride_w=1)
    return mb.build([x], [y])


@pytest.mark.parametrize("kernel, words", [((1, 65537), "padding (0, 32768)"), ((65537, 1), "padding (32768, 0)")])
def test_transpose_conv_same_padding_beyond_int16_is_refused(tmp_path, capsys, kernel, words):
    """Like the pools and convolutions above (fuzz seed 23 case 1770): tflite-micro keeps a
    TRANSPOSE_CONV's padding in int16_t fields too, where 32768 wraps."""
    message = refused(capsys, "inspect", _save(tmp_path, _transpose_conv_with_kernel(*kernel)))
    assert "(TRANSPOSE_CONV)" in message and words in message and "exceeds 32767" in message


def test_transpose_conv_same_padding_of_32767_loads():
    """The near miss: a 65536-wide kernel pads by 32767, the largest int16."""
    from mcuc.model import load_model

    op = load_model(_transpose_conv_with_kernel(1, 65536), format="tflite").graph.ops[0]
    assert op.kind == "TRANSPOSE_CONV" and op.attrs.pad == (0, 32767)


@pytest.mark.parametrize("kind, shapes, options", [
    ("CONV_2D", [(1, 5, 5, 3)], dict(out_channels=4)), ("FULLY_CONNECTED", [(1, 8)], dict(units=3)),
    ("MAX_POOL_2D", [(1, 4, 4, 2)], dict(filter_width=2, filter_height=2)), ("RESHAPE", [(1, 2, 3)], dict(new_shape=[1, 6])),
    ("SOFTMAX", [(1, 10)], {})])
def test_an_op_on_a_constant_input_is_refused_without_internal_advice(tmp_path, capsys, kind, shapes, options):
    """Was "the program's memory plan is incomplete (plan the graph with mcuc.passes.plan)"
    from the Cortex-M backend: advice about mcuc's internals for a model problem."""
    from tests.support.tflite_builder import single_op_model

    data = single_op_model(kind, shapes, np.random.default_rng(0), constant_inputs=[0], **options)
    message = refused(capsys, "compile", _save(tmp_path, data), "-o", tmp_path / "out")
    assert "'input_0' is a constant" in message and "mcuc.passes" not in message


def test_an_elementwise_op_on_a_constant_operand_still_compiles(tmp_path, capsys):
    from tests.support.tflite_builder import single_op_model

    data = single_op_model("ADD", [(1, 4, 4, 3), (1, 4, 4, 3)], np.random.default_rng(0), constant_inputs=[1])
    code, _out, err = hm.run_cli(capsys, "compile", _save(tmp_path, data), "-o", tmp_path / "out")
    assert code == 0, err


@pytest.mark.parametrize("kind, options", [("MAX_POOL_2D", dict(filter_width=3, filter_height=3, padding="SAME")),
                                           ("AVERAGE_POOL_2D", dict(filter_width=2, filter_height=2))])
def test_an_op_that_cannot_convert_types_with_an_output_of_another_type_is_refused(tmp_path, capsys, kind, options):
    """Found by the fuzz run: an int8 MAX_POOL_2D whose output says UINT8; tflite-micro
    writes int8 bytes into it, mcuc's answers were up to 255 apart."""
    from tests.support.tflite_builder import schema, single_op_model

    model = unpack(single_op_model(kind, [(1, 6, 6, 2)], np.random.default_rng(0), **options))
    sg = model.subgraphs[0]
    sg.tensors[sg.outputs[0]].type = schema.TensorType.UINT8
    message = refused(capsys, "verify", _save(tmp_path, pack(model)))
    assert "is uint8 but its input 'input_0' is int8" in message
