"""The PyTorch path on every backend: MobileNetV2 (width 0.35) and MNASNet (depth 0.5),
written in torch.nn as torchvision builds them (tests/support/torch_models.py), at 96x96
with random weights, exported by torch.onnx (dynamo and TorchScript exporters), quantized by `mcuc compile --calibrate` on random calibration data, then the
quantized model mcuc wrote verified byte for byte against onnxruntime on each backend.

Prints one row per (network, exporter, backend) as benchmarks/onnx_backends.py does, the
number of TRANSPOSE steps between the first and last convolution of the generated
Cortex-M C (must be 0), and "N mismatches".

    .venv/bin/python benchmarks/torch_backends.py --jobs 2
    .venv/bin/python benchmarks/torch_backends.py --backends reference,llvm,c-host --samples 10
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.support import torch_models  # noqa: E402
from onnx_backends import measure, verification_arguments  # noqa: E402

from mcuc.backend_registry import BACKENDS, EMULATED  # noqa: E402
from mcuc.calibrate import quantized_path_for  # noqa: E402
from mcuc.cli import main as mcuc_main  # noqa: E402


def compile_with_calibration(network: str, exporter: str, folder: Path) -> tuple[Path, int]:
    """Export, `mcuc compile --calibrate --target cortex-m4`; the quantized model and the
    number of TRANSPOSE steps the generated C runs between convolutions."""
    model = torch_models.export(network, exporter, folder / f"{network}_{exporter}.onnx")
    samples = torch_models.calibration_samples(folder / f"{network}_{exporter}_calibration.npy")
    out = folder / f"{network}_{exporter}_build"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = mcuc_main(["compile", str(model), "--calibrate", str(samples), "-o", str(out), "--target", "cortex-m4"])
    if code != 0:
        raise SystemExit(f"mcuc compile --calibrate failed on {network} ({exporter}) with exit code {code}")
    steps = torch_models.invoked_steps((out / "model.c").read_text())
    return quantized_path_for(model, out), torch_models.transposes_between_convolutions(steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verification_arguments(parser, emulated_samples=1)
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend: {', '.join(unknown)}")

    failures = 0
    with tempfile.TemporaryDirectory() as tmp, \
            concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        models = []
        for network in torch_models.NETWORKS:
            for exporter in torch_models.EXPORTERS:
                path, between = compile_with_calibration(network, exporter, Path(tmp))
                print(f"{network} ({exporter}): {path.name}, {between} TRANSPOSE between convolutions", flush=True)
                failures += between != 0
                models.append((network, exporter, path))
        print(f"{'network':<18} {'exporter':<11} {'backend':<11} {'samples':>7} {'max|diff|':>9} {'exact':<6} "
              f"{'seconds':>8}", flush=True)
        rows = [(network, exporter, path, backend, args.emulated_samples if backend in EMULATED else args.samples)
                for network, exporter, path in models for backend in backends]
        futures = [pool.submit(measure, path, backend, samples, args.seed, args.onnx_numerics)
                   for *_, path, backend, samples in rows]
        for (network, exporter, _, backend, samples), future in zip(rows, futures):
            diff, exact, seconds = future.result()
            failures += not exact.startswith("yes")
            print(f"{network:<18} {exporter:<11} {backend:<11} {samples:>7} {diff:>9} {exact:<6} {seconds:>8.1f}",
                  flush=True)
    print(f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
