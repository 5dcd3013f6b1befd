"""Every backend on the ONNX test-suite networks, byte for byte against onnxruntime.

Builds each network of tests/support/onnx_models.py (MobileNetV2-style 96x96, ResNet-style,
DS-CNN keyword spotting, MLP, MobileNetV3 block), quantizes it with onnxruntime's
quantize_static in QDQ and operator-oriented (QOperator) formats with int8 and uint8
activations, writes the .onnx files to a temporary folder, loads them as `mcuc verify`
does and runs mcuc's verification (compiler/verify.py) on each backend separately.

Prints one row per (network, format, activations, backend): the samples compared, the
largest |difference| from onnxruntime's output, whether every byte matched, and the
seconds the backend took (its build plus its runs, oracle included); then
"N mismatches" (a backend that raised counts as one, its error in the row).

Emulated cores may run fewer samples (--emulated-samples): the int8 QDQ networks keep
float groups, which cortex-m0/m3 compute in soft-float (the cores with an FPU build
hard-float by default and use it); MobileNetV2 QDQ int8 on cortex-m0 takes ~14 s per
inference even uncounted. --jobs N measures N rows at once (seconds are then per row,
with the machine shared).

    .venv/bin/python benchmarks/onnx_backends.py --jobs 2          # ~5 min on 2 cores
    .venv/bin/python benchmarks/onnx_backends.py --backends reference,llvm --samples 10 --networks mlp,resnet
    .venv/bin/python benchmarks/onnx_backends.py --backends cortex-m4,cortex-m7 --float-abi soft
"""
from __future__ import annotations

import argparse
import concurrent.futures
import logging
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import onnx_models  # noqa: E402

from mcuc.backend_registry import BACKENDS, EMULATED  # noqa: E402
from mcuc.ir.errors import MCUCError  # noqa: E402
from mcuc.model import load_model  # noqa: E402
from mcuc.pipeline import CompileOptions  # noqa: E402
from mcuc.verify import verify  # noqa: E402

FORMATS = ("qdq", "qoperator")
FPU_CORES = ("cortex-m4", "cortex-m7", "cortex-m33")
ACTIVATIONS = ("int8", "uint8")
# The weights and calibration of tests/frontend/test_onnx_networks.py and test_cortexm_onnx.py.
NETWORK_SEED, QUANTIZE_SEED = 7, 1


def quantized_models(networks: list[str], folder: Path) -> list[tuple[str, str, str, Path]]:
    """Quantize every network in every format and activation type into `folder`."""
    models = []
    for network in networks:
        float_model = onnx_models.NETWORKS[network](np.random.default_rng(NETWORK_SEED))
        for fmt in FORMATS:
            for activations in ACTIVATIONS:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    logging.disable(logging.WARNING)  # quantize_static's advice on every call
                    data = onnx_models.quantize(float_model, fmt, activations, seed=QUANTIZE_SEED)
                logging.disable(logging.NOTSET)
                path = folder / f"{network}_{fmt}_{activations}.onnx"
                path.write_bytes(data)
                models.append((network, fmt, activations, path))
    return models


def measure(path: Path, backend: str, samples: int, seed: int, numerics: str = "exact",
            float_abi: str | None = None) -> tuple[str, str, float]:
    """(max |diff|, byte-exact, seconds) of one backend on one model under `numerics`
    (--onnx-numerics) and, on an emulated core, `float_abi` (None: the core's default);
    errors name themselves."""
    start = time.perf_counter()
    options = CompileOptions(target=backend, float_abi=float_abi) if backend in EMULATED else None
    try:
        report = verify(load_model(path, onnx_numerics=numerics), [backend], samples=samples, seed=seed,
                        options=options)
    except MCUCError as e:
        return "-", f"ERROR: {e}", time.perf_counter() - start
    except Exception as e:  # a crash is a finding of this script too: show where it happened
        where = traceback.extract_tb(e.__traceback__)[-1]
        return "-", f"ERROR: {type(e).__name__}: {e} ({Path(where.filename).name}:{where.lineno})", \
            time.perf_counter() - start
    verdict = report["backends"][backend]
    exact = "yes" if verdict["bit_exact"] else f"NO (samples {verdict['mismatched_samples']})"
    if verdict["bit_exact"] and not report["onnxruntime"]["equal"]:
        # equal to mcuc's reference, which differs from onnxruntime only as this host's
        # kernels explain (verify's rule)
        exact = "yes (onnxruntime differs as this host explains)"
    return str(verdict["max_abs_diff"]), exact, time.perf_counter() - start


def verification_arguments(parser: argparse.ArgumentParser, emulated_samples: int) -> None:
    """The options every verify-on-every-backend benchmark takes."""
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default: all)")
    parser.add_argument("--samples", type=int, default=10, help="random inputs per host backend")
    parser.add_argument("--emulated-samples", type=int, default=emulated_samples,
                        help="random inputs per emulated core")
    parser.add_argument("--jobs", type=int, default=1, help="rows measured at once, one process each")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (mcuc verify --seed)")
    parser.add_argument("--onnx-numerics", default="exact", metavar="exact|ort-x86-avx2[:threads=N]",
                        help="what the ONNX models compute (mcuc verify --onnx-numerics)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verification_arguments(parser, emulated_samples=3)
    parser.add_argument("--networks", default=",".join(onnx_models.NETWORKS),
                        help=f"comma-separated from {', '.join(onnx_models.NETWORKS)} (default: all)")
    parser.add_argument("--float-abi", choices=("soft", "softfp", "hard"),
                        help=f"float ABI of the cores with an FPU ({', '.join(FPU_CORES)}; default: theirs, hard)")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    networks = [n for n in args.networks.split(",") if n]
    unknown = [b for b in backends if b not in BACKENDS] + [n for n in networks if n not in onnx_models.NETWORKS]
    if unknown:
        parser.error(f"unknown backend or network: {', '.join(unknown)}")

    print(f"{'model':<20} {'format':<10} {'acts':<6} {'backend':<11} {'samples':>7} {'max|diff|':>9} "
          f"{'exact':<6} {'seconds':>8}", flush=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp, \
            concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = [(network, fmt, activations, path, backend,
                 args.emulated_samples if backend in EMULATED else args.samples)
                for network, fmt, activations, path in quantized_models(networks, Path(tmp))
                for backend in backends]
        futures = [pool.submit(measure, path, backend, samples, args.seed, args.onnx_numerics,
                               args.float_abi if backend in FPU_CORES else None)
                   for _, _, _, path, backend, samples in rows]
        for (network, fmt, activations, _, backend, samples), future in zip(rows, futures):
            diff, exact, seconds = future.result()  # rows print in order as they finish
            failures += not exact.startswith("yes")
            print(f"{network:<20} {fmt:<10} {activations:<6} {backend:<11} {samples:>7} {diff:>9} "
                  f"{exact:<6} {seconds:>8.1f}", flush=True)
    print(f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
