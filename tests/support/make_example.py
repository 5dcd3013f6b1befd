"""Writes examples/mobilenet_tiny_int8.tflite: a small MobileNet-style int8 network.

    python -m tests.support.make_example            # (re)write the committed example
    python -m tests.support.make_example --check    # exit 1 if the committed file differs

1x48x48x3 int8 input -> conv 3x3/2 (8) -> depthwise-separable blocks (16, 24, 24 with a
residual ADD, 32) -> average pool 6x6 -> reshape -> fully connected (10) -> softmax.

Weights are seeded random floats (He initialisation); quantization is what a
post-training quantizer would choose: weights symmetric per output channel, biases
int32 at input_scale * weight_scale, activation ranges calibrated by running the float
network on seeded random images. The result is deterministic byte for byte.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support.paths import REPO_ROOT
from tests.support.tflite_builder import ModelBuilder

EXAMPLE_PATH = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"
INPUT_SHAPE = (1, 48, 48, 3)
NUM_CLASSES = 10
SEED = 2024


# -- the float network (calibration) -------------------------------------------------------

def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv_float(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """SAME-padded conv of NHWC float x; w is OHWI (or 1HWC for depthwise)."""
    kh, kw = w.shape[1], w.shape[2]
    (pt, pb), (pl, pr) = _same_pads(x.shape[1], kh, stride), _same_pads(x.shape[2], kw, stride)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-x.shape[1] // stride), -(-x.shape[2] // stride)
    taps = np.stack([xp[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :]
                     for i in range(kh) for j in range(kw)], axis=3)  # N, OH, OW, K, C
    if depthwise:
        return np.einsum("nhwkc,kc->nhwc", taps, w.reshape(kh * kw, -1)) + b
    return np.einsum("nhwkc,okc->nhwo", taps, w.reshape(w.shape[0], kh * kw, -1)) + b


@dataclass
class Layer:
    kind: str            # "conv", "dw", "add", "pool", "fc"
    out_channels: int = 0
    stride: int = 1
    relu6: bool = False
    residual_of: int = -1  # for "add": index of the layer whose output is added


LAYERS = [
    Layer("conv", 8, 2, True),                                    # 0: 24x24x8
    Layer("dw", 8, 1, True), Layer("conv1x1", 16, 1, True),       # 1-2: 24x24x16
    Layer("dw", 16, 2, True), Layer("conv1x1", 24, 1, True),      # 3-4: 12x12x24
    Layer("dw", 24, 1, True), Layer("conv1x1", 24, 1, False),     # 5-6: linear bottleneck
    Layer("add", residual_of=4),                                  # 7: residual
    Layer("dw", 24, 2, True), Layer("conv1x1", 32, 1, True),      # 8-9: 6x6x32
    Layer("pool"),                                                # 10: 1x1x32
    Layer("fc", NUM_CLASSES),                                     # 11: logits
]


def _float_params(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray] | None]:
    params = []
    channels = INPUT_SHAPE[3]
    for layer in LAYERS:
        if layer.kind in ("conv", "conv1x1", "fc"):
            k = 3 if layer.kind == "conv" else 1
            shape = (layer.out_channels, channels) if layer.kind == "fc" else (layer.out_channels, k, k, channels)
            fan_in = k * k * channels
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            # Spread per-channel magnitudes, as trained networks have.
            w *= np.exp(rng.uniform(-0.7, 0.7, (layer.out_channels,) + (1,) * (len(shape) - 1)))
            params.append((w, rng.normal(0.0, 0.1, layer.out_channels)))
            channels = layer.out_channels
        elif layer.kind == "dw":
            w = rng.normal(0.0, np.sqrt(2.0 / 9), (1, 3, 3, channels))
            w *= np.exp(rng.uniform(-0.7, 0.7, (1, 1, 1, channels)))
            params.append((w, rng.normal(0.0, 0.1, channels)))
        else:
            params.append(None)
    return params


def _forward_float(x: np.ndarray, params) -> list[np.ndarray]:
    outs: list[np.ndarray] = []
    for layer, p in zip(LAYERS, params):
        if layer.kind in ("conv", "conv1x1", "dw"):
            y = _conv_float(x, p[0], p[1], layer.stride, layer.kind == "dw")
        elif layer.kind == "add":
            y = x + outs[layer.residual_of]
        elif layer.kind == "pool":
            y = x.mean(axis=(1, 2), keepdims=True)
        else:
            y = x.reshape(x.shape[0], -1) @ p[0].T + p[1]
        if layer.relu6:
            y = np.clip(y, 0.0, 6.0)
        outs.append(y)
        x = y
    return outs


# -- quantization ----------------------------------------------------------------------------

def _activation_quant(values: np.ndarray) -> tuple[float, int]:
    """Asymmetric int8 quantization covering the observed range (and 0)."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = float(np.float32(max(hi - lo, 1e-6) / 255.0))
    zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zero_point


def _weights_quant(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    scales = (np.abs(w).max(axis=reduce) / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, scales


def build_example() -> bytes:
    rng = np.random.default_rng(SEED)
    params = _float_params(rng)
    calibration = rng.uniform(-1.0, 1.0, (16,) + INPUT_SHAPE[1:])
    outs = _forward_float(calibration, params)

    mb = ModelBuilder(description="mcuc example: tiny MobileNet-style int8 network")
    in_scale, in_zp = 1.0 / 128.0, 0
    x = mb.tensor("input", INPUT_SHAPE, "int8", in_scale, in_zp)
    graph_input = x
    tensors: list[int] = []
    scales: list[tuple[float, int]] = []
    cur_scale, cur_zp, cur_shape = in_scale, in_zp, INPUT_SHAPE
    for i, (layer, p, y_float) in enumerate(zip(LAYERS, params, outs)):
        if layer.kind == "pool":
            out_q = (cur_scale, cur_zp)  # tflite-micro's int8 pooling keeps the quantization
        else:
            out_q = _activation_quant(y_float)
        out_shape = (1,) + y_float.shape[1:]
        name = f"{i:02d}_{layer.kind}"
        y = mb.tensor(name, out_shape, "int8", *out_q)
        act = "RELU6" if layer.relu6 else "NONE"
        if layer.kind in ("conv", "conv1x1", "dw", "fc"):
            w_float, b_float = p
            axis = 3 if layer.kind == "dw" else 0
            wq, w_scales = _weights_quant(w_float, axis)
            b_scales = (np.float64(cur_scale) * w_scales.astype(np.float64)).astype(np.float32)
            bq = np.round(b_float / b_scales.astype(np.float64)).astype(np.int32)
            w = mb.tensor(f"{name}/weights", wq.shape, "int8", w_scales, np.zeros(w_scales.size, np.int64),
                          axis=axis, data=wq)
            b = mb.tensor(f"{name}/bias", bq.shape, "int32", b_scales, np.zeros(b_scales.size, np.int64), data=bq)
            if layer.kind == "fc":
                flat = mb.tensor(f"{name}/flatten", (1, cur_shape[-1]), "int8", cur_scale, cur_zp)
                mb.op("RESHAPE", [x, mb.const(f"{name}/shape", [1, cur_shape[-1]])], [flat])
                mb.op("FULLY_CONNECTED", [flat, w, b], [y], fused_activation_function=act)
            elif layer.kind == "dw":
                mb.op("DEPTHWISE_CONV_2D", [x, w, b], [y], padding="SAME", stride_h=layer.stride,
                      stride_w=layer.stride, depth_multiplier=1, fused_activation_function=act)
            else:
                mb.op("CONV_2D", [x, w, b], [y], padding="SAME", stride_h=layer.stride, stride_w=layer.stride,
                      fused_activation_function=act)
        elif layer.kind == "add":
            mb.op("ADD", [x, tensors[layer.residual_of]], [y], fused_activation_function=act)
        elif layer.kind == "pool":
            mb.op("AVERAGE_POOL_2D", [x], [y], padding="VALID", filter_height=cur_shape[1],
                  filter_width=cur_shape[2], stride_h=1, stride_w=1)
        tensors.append(y)
        scales.append(out_q)
        x, (cur_scale, cur_zp), cur_shape = y, out_q, out_shape
    probabilities = mb.tensor("probabilities", (1, NUM_CLASSES), "int8", 1.0 / 256.0, -128)
    mb.op("SOFTMAX", [x], [probabilities], beta=1.0)
    return mb.build([graph_input], [probabilities])


def main(argv: list[str]) -> int:
    model = build_example()
    if "--check" in argv:
        same = EXAMPLE_PATH.is_file() and EXAMPLE_PATH.read_bytes() == model
        print(f"{EXAMPLE_PATH}: {'up to date' if same else 'DIFFERS from the generator'}")
        return 0 if same else 1
    EXAMPLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    EXAMPLE_PATH.write_bytes(model)
    print(f"wrote {EXAMPLE_PATH} ({len(model)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
