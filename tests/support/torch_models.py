"""The PyTorch path a user takes: a torchvision network with random weights, exported to a
float .onnx with torch.onnx, plus random calibration samples in the layout it expects.

Both exporters are covered: torch.onnx.export's default (dynamo, opset 18+, weights may
go to an external .onnx.data file beside the model) and the TorchScript one (`dynamo=False`,
opset 17, Identity nodes in front of shared initializers).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

RESOLUTION = 96
EXPORTERS = ("dynamo", "torchscript")


def _networks():
    import torchvision

    return {
        "mobilenet_v2_0.35": lambda: torchvision.models.mobilenet_v2(weights=None, width_mult=0.35),
        "mnasnet0_5": lambda: torchvision.models.mnasnet0_5(weights=None),
    }


NETWORKS = ("mobilenet_v2_0.35", "mnasnet0_5")


def export(network: str, exporter: str, path: Path, seed: int = 0) -> Path:
    """Write `network` (random weights from `seed`, eval mode, 1x3x96x96 input) to `path`."""
    import torch

    torch.manual_seed(seed)
    model = _networks()[network]().eval()
    x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        if exporter == "dynamo":
            torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["image"], output_names=["logits"])
        elif exporter == "torchscript":
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["logits"])
        else:
            raise ValueError(f"unknown exporter {exporter!r}; choose one of {EXPORTERS}")
    return path


def calibration_samples(path: Path, count: int = 8, seed: int = 0) -> Path:
    """`count` random NCHW images (normalized-image statistics) stacked in one .npy."""
    rng = np.random.default_rng(seed)
    np.save(path, rng.standard_normal((count, 1, 3, RESOLUTION, RESOLUTION)).astype(np.float32))
    return path


def invoked_steps(model_c: str) -> list[str]:
    """The op kinds the generated C's invoke function runs, in order (its step comments)."""
    body = model_c[model_c.index("_invoke(void)"):]
    return re.findall(r"/\* step \d+: ([A-Z0-9_]+)\(", body)


def transposes_between_convolutions(steps: list[str]) -> int:
    """How many TRANSPOSE steps run after the first and before the last convolution."""
    convs = [i for i, kind in enumerate(steps) if kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    return sum(kind == "TRANSPOSE" and convs[0] < i < convs[-1] for i, kind in enumerate(steps))
