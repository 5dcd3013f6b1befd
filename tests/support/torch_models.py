"""The PyTorch path a user takes: a MobileNetV2 (width 0.35) or an MNASNet (depth 0.5) with
random weights, exported to a float .onnx with torch.onnx, plus random calibration samples
in the layout it expects.

The two networks are written here in torch.nn, block for block as their papers and
torchvision's model zoo build them (same layers, channel rounding, residuals, pooling and
weight initialization), rather than imported from torchvision: torchvision's x86-64 wheels
run only beside PyTorch's CUDA build, ~5.5 GB installed, which does not fit every CI
machine, while the CPU build of torch alone is ~1 GB.

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
NETWORKS = ("mobilenet_v2_0.35", "mnasnet0_5")


def round_channels(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of `divisor`, never below it and never
    more than 10% under the unrounded value (the rule both networks scale their widths by)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _networks():
    import torch
    from torch import nn

    def conv_bn(inputs, outputs, kernel, stride=1, groups=1, activation=None):
        layers = [nn.Conv2d(inputs, outputs, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(outputs)]
        return layers + ([activation()] if activation else [])

    class InvertedResidual(nn.Module):
        """1x1 expansion (unless `expansion` is 1), depthwise kxk, linear 1x1 projection;
        the input added back when the shape is unchanged."""

        def __init__(self, inputs, outputs, kernel, stride, expansion, activation):
            super().__init__()
            hidden = int(round(inputs * expansion))
            layers = conv_bn(inputs, hidden, 1, activation=activation) if expansion != 1 else []
            layers += conv_bn(hidden, hidden, kernel, stride, groups=hidden, activation=activation)
            layers += conv_bn(hidden, outputs, 1)
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and inputs == outputs

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    class MobileNetV2(nn.Module):
        """Sandler et al. 2018, Table 2: (expansion, channels, repeats, stride) per stage."""
        STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                  (6, 160, 3, 2), (6, 320, 1, 1))

        def __init__(self, width: float, classes: int = 1000):
            super().__init__()
            channels = round_channels(32 * width)
            last = round_channels(1280 * max(1.0, width))
            layers = conv_bn(3, channels, 3, 2, activation=nn.ReLU6)
            for expansion, base, repeats, stride in self.STAGES:
                outputs = round_channels(base * width)
                for index in range(repeats):
                    layers.append(InvertedResidual(channels, outputs, 3, stride if index == 0 else 1,
                                                   expansion, nn.ReLU6))
                    channels = outputs
            layers += conv_bn(channels, last, 1, activation=nn.ReLU6)
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out")
                elif isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, 0, 0.01)
                    nn.init.zeros_(module.bias)

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    class MNASNet(nn.Module):
        """Tan et al. 2019, MnasNet-B1: a separable stem, then (kernel, expansion, repeats,
        stride) per stage; widths scaled by `depth`."""
        WIDTHS = (32, 16, 24, 40, 80, 96, 192, 320)
        STAGES = ((3, 3, 3, 2), (5, 3, 3, 2), (5, 6, 3, 2), (3, 6, 2, 1), (5, 6, 4, 2), (3, 6, 1, 1))

        def __init__(self, depth: float, classes: int = 1000):
            super().__init__()
            widths = [round_channels(width * depth) for width in self.WIDTHS]
            layers = conv_bn(3, widths[0], 3, 2, activation=nn.ReLU)
            layers += conv_bn(widths[0], widths[0], 3, groups=widths[0], activation=nn.ReLU)
            layers += conv_bn(widths[0], widths[1], 1)
            for (kernel, expansion, repeats, stride), inputs, outputs in zip(self.STAGES, widths[1:], widths[2:]):
                for index in range(repeats):
                    layers.append(InvertedResidual(inputs if index == 0 else outputs, outputs, kernel,
                                                   stride if index == 0 else 1, expansion, nn.ReLU))
            layers += conv_bn(widths[-1], 1280, 1, activation=nn.ReLU)
            self.layers = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(module, nn.Linear):
                    nn.init.kaiming_uniform_(module.weight, mode="fan_out", nonlinearity="sigmoid")
                    nn.init.zeros_(module.bias)

        def forward(self, x):
            return self.classifier(self.layers(x).mean([2, 3]))  # a ReduceMean over H and W

    return {"mobilenet_v2_0.35": lambda: MobileNetV2(width=0.35), "mnasnet0_5": lambda: MNASNet(depth=0.5)}


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
