"""onnxruntime as the tests' oracle under chosen OnnxNumerics.

OnnxOracle runs onnxruntime with the session options of the numerics; onnxruntime on a
given host may still differ from them in its MLAS kernels' facts (u8 x s8 pair
saturation, NCHWc block: mcuc.oracle_onnx.host_numerics). A test compares onnxruntime's
bytes with mcuc compiled for `as_this_host(numerics)`: for `exact` that is what every
host's onnxruntime computes (exact itself, or exact with this CPU's pair saturation), so
the test runs everywhere; host-mimicking numerics (ort-x86-avx2) are checked only on the
kind of host they mimic, and the test skips elsewhere with the reason.
"""
from __future__ import annotations

import pytest

from mcuc.frontend.onnx_numerics import EXACT, OnnxNumerics, parse_onnx_numerics
from mcuc.model import Model, load_model
from mcuc.oracle_onnx import OnnxOracle, explain_host_difference, host_numerics, session_options


def as_this_host(numerics: OnnxNumerics | str = EXACT) -> OnnxNumerics:
    """The numerics onnxruntime on this host computes when OnnxOracle runs it for
    `numerics`; skips the calling test for host-mimicking numerics of another host."""
    numerics = parse_onnx_numerics(numerics)
    host = host_numerics(numerics)
    if numerics.name != EXACT.name and host != numerics:
        pytest.skip(f"--onnx-numerics {numerics.spec} reproduces onnxruntime on another kind of host; "
                    f"here {explain_host_difference(numerics, host)}")
    return host


def model_and_oracle(data: bytes, numerics: OnnxNumerics | str = EXACT,
                     layout: str | None = None) -> tuple[Model, OnnxOracle]:
    """mcuc's model of `data` as onnxruntime here computes it under `numerics`, and that
    onnxruntime (4-D tensors in `layout`, None: NCHW)."""
    numerics = parse_onnx_numerics(numerics)
    model = load_model(data, format="onnx", layout=layout, onnx_numerics=as_this_host(numerics))
    return model, OnnxOracle(data, model.layout, numerics)


def session(data: bytes, numerics: OnnxNumerics | str = EXACT):
    """A raw onnxruntime session as OnnxOracle runs it for `numerics` (for tests that read
    intermediate tensors)."""
    import onnxruntime

    return onnxruntime.InferenceSession(data, session_options(parse_onnx_numerics(numerics)),
                                        providers=["CPUExecutionProvider"])
