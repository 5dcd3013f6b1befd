"""What an ONNX model computes, as a typed value chosen by the compile options.

An ONNX model states its numerics only up to the runtime's freedom: onnxruntime's
fusions and kernels decide where a quantized graph is computed in int8, in uint8 or in
float, and whether u8 x s8 products are summed exactly. mcuc never asks the machine it
runs on which of these to follow: the user names it (`--onnx-numerics`, or
`CompileOptions.onnx_numerics`), so one model and one set of options compile to the same
output on every host. Only the oracle (mcuc.oracle_onnx) reads the host, and only to
explain why onnxruntime on it may differ from the chosen numerics.
"""
from __future__ import annotations

from dataclasses import dataclass

from mcuc.ir.errors import MCUCError


@dataclass(frozen=True)
class OnnxNumerics:
    """The onnxruntime behaviour a compiled ONNX model reproduces.

    Each field is one fact about an onnxruntime build and the CPU it runs on; a named
    choice fixes all of them."""

    name: str
    # QDQS8ToU8Transformer: x86-64 builds (QDQIsInt8Allowed() is false there) convert
    # every int8 QDQ activation whose QuantizeLinear has one consumer to uint8 before
    # fusing, and leave groups that mix converted and unconverted tensors unfused (float).
    qdq_int8_as_uint8: bool
    # MLAS's u8 x s8 GEMM kernels on x86-64 without VNNI sum neighbouring products in
    # saturating int16 pairs (VPMADDUBSW; MLAS calls it "U8S8 overflow").
    u8s8_pairs_saturate: bool
    # MLAS's NCHWc block in floats (16 with AVX-512F, else 8): unfused float pooling of a
    # channel count that is a multiple of it runs MLAS's NCHWc kernel.
    nchwc_block: int = 8
    # onnxruntime's intra-op threads: MLAS splits an unfused (float) convolution's output
    # columns among them, which fixes its summation order.
    threads: int = 1

    @property
    def spec(self) -> str:
        """The option text that names these numerics (`parse_onnx_numerics(spec)` gives them back)."""
        return self.name + (f":threads={self.threads}" if self.threads != 1 else "")

    @property
    def fuses_int8(self) -> bool:
        """Whether onnxruntime fuses int8 QDQ groups as int8 (no uint8 conversion)."""
        return not self.qdq_int8_as_uint8


# The default: int8 QDQ groups computed on int8, exact int32 accumulation, onnxruntime's
# float32 requantization (round half to even), float groups only where onnxruntime has no
# quantized kernel (ReduceMean). What onnxruntime computes on ARM, and on x86-64 with the
# session option session.qdqisint8allowed=1 (every x86 CPU: s8 x s8 GEMMs are exact).
EXACT = OnnxNumerics("exact", qdq_int8_as_uint8=False, u8s8_pairs_saturate=False)
# The bytes of onnxruntime's x86-64 build on a CPU with AVX2 and without VNNI or AVX-512,
# with default session options.
ORT_X86_AVX2 = OnnxNumerics("ort-x86-avx2", qdq_int8_as_uint8=True, u8s8_pairs_saturate=True)

NAMED = {n.name: n for n in (EXACT, ORT_X86_AVX2)}
DEFAULT = EXACT


def parse_onnx_numerics(text: str | OnnxNumerics | None) -> OnnxNumerics:
    """`exact` or `ort-x86-avx2[:threads=N]` -> OnnxNumerics (None: the default)."""
    if text is None:
        return DEFAULT
    if isinstance(text, OnnxNumerics):
        return text
    name, _, params = str(text).strip().partition(":")
    if name not in NAMED:
        raise MCUCError(f"unknown --onnx-numerics {text!r}; choose {' or '.join(NAMED)} "
                        "(ort-x86-avx2 takes :threads=N, onnxruntime's intra-op thread count)")
    numerics = NAMED[name]
    if not params:
        return numerics
    key, _, value = params.partition("=")
    if name != ORT_X86_AVX2.name or key != "threads" or not value.isdigit() or int(value) < 1:
        raise MCUCError(f"--onnx-numerics {text!r}: only ort-x86-avx2 takes a parameter, "
                        "threads=N with N >= 1 (e.g. ort-x86-avx2:threads=4)")
    return OnnxNumerics(numerics.name, numerics.qdq_int8_as_uint8, numerics.u8s8_pairs_saturate,
                        numerics.nchwc_block, int(value))
