"""`mcuc validate`: each metric against a numpy computation on the same data, for a TFLite
int8 model with its float original and for a float ONNX model quantized with --calibrate;
a wrong float reference is caught by the metrics; inputs from .npy, .npz and a folder of
images; user errors are one line (exit 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import mcuc
from mcuc.cli import main
from tests.support.tflite_builder import ModelBuilder

SHAPE = (1, 8, 8, 3)


# -- a float TFLite model and its int8 counterpart, quantized here by hand ------------------

def _conv_same(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    _, h, wd, _ = x.shape
    out = np.zeros((x.shape[0], h, wd, w.shape[0]))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nhwc,oc->nhwo", p[:, i:i + h, j:j + wd, :], w[:, i, j, :])
    return out + b


def _weights(seed: int):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32), rng.normal(0, 0.1, 4).astype(np.float32),
            rng.normal(0, 0.1, (10, 256)).astype(np.float32), rng.normal(0, 0.1, 10).astype(np.float32))


def float_tflite(seed: int = 0) -> bytes:
    """input [1,8,8,3] -> CONV_2D 3x3 SAME + RELU ("conv") -> RESHAPE ("flat") -> FULLY_CONNECTED ("logits")."""
    w1, b1, w2, b2 = _weights(seed)
    mb = ModelBuilder()
    x = mb.tensor("input", SHAPE, "float32")
    w, b = mb.tensor("w1", w1.shape, "float32", data=w1), mb.tensor("b1", (4,), "float32", data=b1)
    y = mb.tensor("conv", (1, 8, 8, 4), "float32")  # tensor 3, as in int8_tflite
    mb.op("CONV_2D", [x, w, b], [y], padding="SAME", fused_activation_function="RELU")
    r = mb.tensor("flat", (1, 256), "float32")
    mb.op("RESHAPE", [y, mb.const("shape", [1, 256])], [r])
    z = mb.tensor("logits", (1, 10), "float32")
    mb.op("FULLY_CONNECTED", [r, mb.tensor("w2", w2.shape, "float32", data=w2),
                              mb.tensor("b2", (10,), "float32", data=b2)], [z])
    return mb.build([x], [z])


def int8_tflite(calibration: np.ndarray, seed: int = 0) -> bytes:
    """The same network in int8 (int8 input and output), with tensor names kept."""
    w1, b1, w2, b2 = (a.astype(np.float64) for a in _weights(seed))
    s_in, zp_in = 1 / 127, 0
    conv = np.maximum(_conv_same(calibration.reshape(-1, *SHAPE[1:]).astype(np.float64), w1, b1), 0)
    s_c, zp_c = conv.max() / 255, -128
    logits = conv.reshape(len(conv), -1) @ w2.T + b2
    s_o = (logits.max() - logits.min()) / 255
    zp_o = int(np.clip(np.round(-128 - logits.min() / s_o), -128, 127))
    s_w1 = np.abs(w1).reshape(4, -1).max(axis=1) / 127
    s_w2 = np.abs(w2).max() / 127
    mb = ModelBuilder()
    x = mb.tensor("input", SHAPE, "int8", s_in, zp_in)
    w = mb.tensor("w1", w1.shape, "int8", s_w1, [0] * 4, data=np.round(w1 / s_w1[:, None, None, None]))
    b = mb.tensor("b1", (4,), "int32", s_in * s_w1, [0] * 4, data=np.round(b1 / (s_in * s_w1)))
    y = mb.tensor("conv", (1, 8, 8, 4), "int8", s_c, zp_c)
    mb.op("CONV_2D", [x, w, b], [y], padding="SAME", fused_activation_function="RELU")
    r = mb.tensor("flat", (1, 256), "int8", s_c, zp_c)
    mb.op("RESHAPE", [y, mb.const("shape", [1, 256])], [r])
    w = mb.tensor("w2", w2.shape, "int8", s_w2, 0, data=np.round(w2 / s_w2))
    b = mb.tensor("b2", (10,), "int32", s_c * s_w2, 0, data=np.round(b2 / (s_c * s_w2)))
    z = mb.tensor("logits", (1, 10), "int8", s_o, zp_o)
    mb.op("FULLY_CONNECTED", [r, w, b], [z])
    return mb.build([x], [z])


def _tflm(model: bytes, inputs: list[np.ndarray], tensors: tuple[int, ...] = ()):
    """tflite-micro in this process, for the test's own expectations: outputs and chosen tensors."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model, arena_size=1 << 20,
                                        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    outputs, values = [], []
    for x in inputs:
        it.set_input(x, 0)
        it.invoke()
        outputs.append(np.array(it.get_output(0)))
        values.append([np.array(it.GetTensor(i, 0)["tensor_data"]) for i in tensors])
    return np.stack(outputs), values


def expected_metrics(q: np.ndarray, f: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """The metrics as numpy computes them over all samples (q: dequantized, f: float)."""
    q, f = q.astype(np.float64).reshape(len(q), -1), f.astype(np.float64).reshape(len(f), -1)
    d = q - f
    out = {"rmse": np.sqrt(np.mean(d ** 2)), "cosine": np.sum(q * f) / (np.linalg.norm(q) * np.linalg.norm(f)),
           "l2_relative": np.linalg.norm(d) / np.linalg.norm(f), "max_abs_error": np.abs(d).max(),
           "mean_abs_error": np.abs(d).mean(), "top1_agreement": np.mean(q.argmax(1) == f.argmax(1))}
    if labels is not None:
        out["accuracy"] = np.mean(q.argmax(1) == labels)
        out["reference_accuracy"] = np.mean(f.argmax(1) == labels)
    return out


def assert_metrics(reported: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert reported[key] == pytest.approx(float(value), rel=1e-9, abs=1e-12), key


@pytest.fixture(scope="module")
def tflite_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("validate_tflite")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (12, *SHAPE[1:])).astype(np.float32)  # [count, *shape[1:]] for a batch-1 input
    (d / "float.tflite").write_bytes(float_tflite())
    (d / "wrong.tflite").write_bytes(float_tflite(seed=7))
    (d / "int8.tflite").write_bytes(int8_tflite(x))
    np.save(d / "x.npy", x)
    labels = rng.integers(0, 10, len(x))
    np.save(d / "y.npy", labels)
    return d, x, labels


def test_tflite_metrics_equal_numpy_per_output_and_per_layer(tflite_case, capsys):
    d, x, labels = tflite_case
    assert main(["validate", str(d / "int8.tflite"), "--data", str(d / "x.npy"), "--labels", str(d / "y.npy"),
                 "--reference", str(d / "float.tflite"), "--per-layer", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] and report["samples"] == len(x) and report["oracle"] == "tflite-micro"
    # The test's own run: inputs quantized here (half away from zero), tflite-micro on both models.
    q_in = np.clip(np.trunc(x / np.float32(1 / 127) + np.copysign(0.5, x)), -128, 127).astype(np.int8)
    int8 = (d / "int8.tflite").read_bytes()
    q_out, q_conv = _tflm(int8, [s[None] for s in q_in], tensors=(3,))  # 3: "conv"
    f_out, f_conv = _tflm((d / "float.tflite").read_bytes(), [s[None] for s in x], tensors=(3,))
    graph = mcuc.compile(int8, backend="reference").model.graph
    out_q, conv_q = graph.outputs[0].quant, next(op for op in graph.ops if op.kind == "CONV_2D").outputs[0].quant
    dq = lambda v, qp: np.float32(qp.scalar_scale) * (v.astype(np.int32) - qp.scalar_zero_point).astype(np.float32)
    (output,) = report["outputs"]
    assert output["name"] == "logits"
    assert_metrics(output, expected_metrics(dq(q_out, out_q), f_out, labels))
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert set(layers) == {"conv", "flat", "logits"}, report["unmatched_layers"]
    conv = expected_metrics(dq(np.stack([v[0] for v in q_conv]), conv_q), np.stack([v[0] for v in f_conv]))
    conv.pop("top1_agreement")
    assert_metrics(layers["conv"], conv)
    assert layers["logits"]["rmse"] == pytest.approx(output["rmse"], rel=1e-12)
    assert output["cosine"] > 0.99 and layers["conv"]["cosine"] > 0.99
    # The human table prints the same figures.
    assert main(["validate", str(d / "int8.tflite"), "--data", str(d / "x.npy"), "--labels", str(d / "y.npy"),
                 "--reference", str(d / "float.tflite"), "--per-layer"]) == 0
    table = capsys.readouterr().out
    row = next(line.split() for line in table.splitlines() if line.strip().startswith("logits "))
    assert row[1] == "100.0%" and row[2] == f"{100 * output['accuracy']:.1f}%"
    assert [float(v) for v in row[4:9]] == pytest.approx(
        [output[k] for k in ("rmse", "cosine", "l2_relative", "max_abs_error", "mean_abs_error")], rel=1e-3)
    assert "bit-exact" in table and "per layer: 3 tensors" in table


def test_a_wrong_reference_is_caught_by_every_metric(tflite_case, capsys):
    d, x, labels = tflite_case
    results = {}
    for ref in ("float", "wrong"):
        assert main(["validate", str(d / "int8.tflite"), "--data", str(d / "x.npy"), "--reference",
                     str(d / f"{ref}.tflite"), "--per-layer", "--json", "--backend", "reference"]) == 0
        results[ref] = json.loads(capsys.readouterr().out)
    good, bad = results["float"]["outputs"][0], results["wrong"]["outputs"][0]
    assert bad["cosine"] < 0.7 < 0.99 < good["cosine"]
    assert bad["rmse"] > 5 * good["rmse"] and bad["l2_relative"] > 0.5 > 0.1 > good["l2_relative"]
    assert bad["max_abs_error"] > good["max_abs_error"] and bad["top1_agreement"] < good["top1_agreement"] == 1
    bad_conv = next(layer for layer in results["wrong"]["layers"] if layer["name"] == "conv")
    assert bad_conv["cosine"] < 0.9


def test_onnx_calibrated_model_against_its_float_original(tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    from tests.support.onnx_models import kws_ds_cnn

    rng = np.random.default_rng(3)
    onnx.save(kws_ds_cnn(np.random.default_rng(0)), tmp_path / "float.onnx")
    onnx.save(kws_ds_cnn(np.random.default_rng(9)), tmp_path / "other.onnx")
    np.save(tmp_path / "cal.npy", rng.normal(0, 1, (8, 1, 1, 49, 10)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "float.onnx"), "--calibrate", str(tmp_path / "cal.npy"), "-o", str(out)]) == 0
    quantized = out / "float.quant.onnx"  # inside the output folder
    assert quantized.is_file()
    x = rng.normal(0, 1, (6, 1, 49, 10)).astype(np.float32)  # NCHW, as the ONNX model's layout says
    labels = rng.integers(0, 12, len(x))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    capsys.readouterr()
    argv = ["validate", str(quantized), "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
            "--json", "--per-layer", "--reference"]
    assert main(argv + [str(tmp_path / "float.onnx")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bit_exact"] and report["onnxruntime"]["ok"]
    compiled = mcuc.compile(str(quantized))  # llvm, what validate ran; float in, float out
    q = np.stack([compiled(s[None]) for s in x])
    session = ort.InferenceSession(str(tmp_path / "float.onnx"), providers=["CPUExecutionProvider"])
    f = np.stack([session.run(None, {"input": s[None]})[0] for s in x])
    assert_metrics(report["outputs"][0], expected_metrics(q, f, labels))
    assert report["outputs"][0]["cosine"] > 0.99
    names = {layer["reference_name"] for layer in report["layers"]}
    assert {"relu2", "relu4", "globalaveragepool19", "gemm21"} <= names
    assert all(u["why"] for u in report["unmatched_layers"])
    # Another float network (same shapes, other weights) as the reference: the metrics say so.
    assert main(argv + [str(tmp_path / "other.onnx")]) == 0
    wrong = json.loads(capsys.readouterr().out)
    assert wrong["outputs"][0]["cosine"] < 0.9 and wrong["outputs"][0]["l2_relative"] > 0.3
    assert max(layer["cosine"] for layer in wrong["layers"] if layer["reference_name"] != "input") < 0.95


def test_npz_images_and_integer_samples_give_the_same_answer(tflite_case, tmp_path):
    from PIL import Image

    d, x, _ = tflite_case
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    labels = np.array([0, 0, 0, 1, 1, 1])
    for i, p in enumerate(pixels):
        folder = tmp_path / "images" / f"class{labels[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(p).save(folder / f"{i}.png")
    floats = (np.float32(-1) + np.float32(2) * pixels.astype(np.float32) / np.float32(255))
    kwargs = dict(reference=d / "float.tflite", backend="reference")
    from_images = mcuc.validate(d / "int8.tflite", tmp_path / "images", image_range=(-1, 1), **kwargs).to_dict()
    np.savez(tmp_path / "x.npz", input=floats)
    from_npz = mcuc.validate(d / "int8.tflite", tmp_path / "x.npz", labels=labels, **kwargs).to_dict()
    assert from_images["labels"] and from_images["outputs"] == from_npz["outputs"]
    # Already quantized samples are taken as they are.
    ints = np.clip(np.trunc(floats * 127 + np.copysign(0.5, floats)), -128, 127).astype(np.int8)
    from_ints = mcuc.validate(d / "int8.tflite", ints, labels=labels, **kwargs).to_dict()
    assert from_ints["outputs"][0]["accuracy"] == from_npz["outputs"][0]["accuracy"]
    assert from_ints["outputs"][0]["rmse"] == pytest.approx(from_npz["outputs"][0]["rmse"], rel=0.2)
    # An image of another size is resized to the input's.
    Image.fromarray(rng.integers(0, 256, (20, 13, 3), dtype=np.uint8)).save(tmp_path / "images" / "class1" / "big.jpg")
    assert mcuc.validate(d / "int8.tflite", tmp_path / "images", backend="reference").samples == 7


@pytest.mark.parametrize("argv, message", [
    (["--data", "{d}/missing.npy"], "does not exist"),
    (["--data", "{d}/bad_shape.npy"], "has shape [5, 3, 8, 8]; input 'input'"),
    (["--data", "{d}/strings.npy"], "float or integer"),
    (["--data", "{d}/wide_ints.npy"], "outside int8's range"),
    (["--data", "{d}/x.npz"], "no array named 'input'"),
    (["--data", "{d}/x.npy", "--labels", "{d}/few_labels.npy"], "3 labels for 12 samples"),
    (["--data", "{d}/x.npy", "--per-layer"], "give --reference"),
    (["--data", "{d}/x.npy", "--reference", "{d}/int8.tflite"], "not a float model"),
    (["--data", "{d}"], "holds no images"),
])
def test_user_errors_are_one_line(tflite_case, tmp_path, capsys, argv, message):
    d, x, _ = tflite_case
    np.save(tmp_path / "bad_shape.npy", np.zeros((5, 3, 8, 8), np.float32))
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    np.save(tmp_path / "wide_ints.npy", np.full((2, 8, 8, 3), 300, np.int32))
    np.savez(tmp_path / "x.npz", images=x, other=x)
    np.save(tmp_path / "few_labels.npy", np.arange(3))
    for name in ("x.npy", "int8.tflite"):
        (tmp_path / name).write_bytes((d / name).read_bytes())
    args = [a.format(d=tmp_path) for a in argv]
    assert main(["validate", str(d / "int8.tflite"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcuc: error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("terminal, json_mode, shown", [(True, False, True), (True, True, False),
                                                        (False, False, False)])
def test_progress_only_on_a_terminal(tflite_case, capsys, monkeypatch, terminal, json_mode, shown):
    import sys

    d, _, _ = tflite_case
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert main(["validate", str(d / "int8.tflite"), "--data", str(d / "x.npy"), "--backend", "reference"]
                + (["--json"] if json_mode else [])) == 0
    err = capsys.readouterr().err
    assert ("validate int8 on reference" in err and "/13 [" in err) == shown, err  # the build, 12 samples
