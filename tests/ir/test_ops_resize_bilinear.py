"""RESIZE_BILINEAR (int8): hypothesis draws input and output sizes (up- and downsampling),
align_corners / half_pixel_centers (the combinations tflite-micro's Prepare accepts) and
inputs; one model holds a layer per case and every output byte is compared with
tflite-micro on the reference interpreter, llvm, the portable C on the host and (fixed
layers) an emulated Cortex-M4 and Cortex-M0. Rounding half up (TFLITE_SINGLE_ROUNDING's
rule) must be caught; what Prepare refuses is refused naming the op and the rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.frontend.tflite import load_tflite
from mcuc.ir.errors import MCUCError

from tests.ir.test_ops_compare import NEEDS_ARM, assert_matches_oracle
from tests.support.tflite_builder import ModelBuilder


@dataclass(frozen=True)
class Layer:
    x: tuple[int, int, int, int]
    size: tuple[int, int]
    align_corners: bool = False
    half_pixel_centers: bool = False
    seed: int = 0


def model_of(layers: list[Layer]) -> tuple[bytes, list[np.ndarray]]:
    mb = ModelBuilder()
    ins, outs, values = [], [], []
    for i, c in enumerate(layers):
        x = mb.tensor(f"x{i}", c.x, "int8", 0.05, -3)
        y = mb.tensor(f"y{i}", (c.x[0], *c.size, c.x[3]), "int8", 0.05, -3)
        mb.op("RESIZE_BILINEAR", [x, mb.const(f"s{i}", list(c.size))], [y], align_corners=c.align_corners,
              half_pixel_centers=c.half_pixel_centers)
        ins.append(x)
        outs.append(y)
        values.append(np.random.default_rng(c.seed).integers(-128, 128, c.x).astype(np.int8))
    return mb.build(ins, outs), values


@st.composite
def layers(draw) -> Layer:
    x = (draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 13)), draw(st.integers(1, 13)))
    mode = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    return Layer(x, size, *mode, draw(st.integers(0, 2**31)))


@settings(deadline=None, max_examples=30)
@given(case=st.lists(layers(), min_size=1, max_size=3))
def test_reference_matches_oracle(case):
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, what=str(case))


@settings(deadline=None, max_examples=3)
@given(case=st.lists(layers(), min_size=3, max_size=3))
def test_llvm_and_c_host_match_oracle(case):
    model, inputs = model_of(case)
    assert_matches_oracle(model, inputs, ("reference", "llvm", "c-host"), str(case))


FIXED = [Layer((1, 3, 4, 2), (7, 9)), Layer((2, 5, 5, 3), (2, 3), True, seed=1),
         Layer((1, 4, 3, 4), (9, 8), False, True, seed=2), Layer((1, 1, 1, 2), (3, 3), False, True, seed=3)]


@NEEDS_ARM
def test_cortex_m4_and_m0_match_oracle():
    model, inputs = model_of(FIXED)
    assert_matches_oracle(model, inputs, ("cortex-m4", "cortex-m0"))


def test_single_rounding_is_caught(monkeypatch):
    """Half away from zero (the default build) vs half up: values -0.5 apart differ."""
    from mcuc.ir.ops import resize_bilinear

    model, inputs = model_of([Layer((1, 2, 2, 8), (4, 4), seed=4), Layer((1, 3, 3, 8), (6, 6), False, True, 5)])
    assert_matches_oracle(model, inputs)
    monkeypatch.setattr(resize_bilinear, "round_by_2_20", lambda total: (np.asarray(total) + (1 << 19)) >> 20)
    with pytest.raises(AssertionError, match="differ from tflite-micro"):
        assert_matches_oracle(model, inputs)


def test_what_prepare_refuses_is_refused():
    with pytest.raises(MCUCError, match=r"RESIZE_BILINEAR.*align_corners and half_pixel_centers"):
        load_tflite(model_of([Layer((1, 2, 2, 1), (4, 4), True, True)])[0])
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 2, 2, 1), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 4, 4, 1), "int8", 0.1, 0)
    mb.op("RESIZE_BILINEAR", [x, mb.const("s", [4, 5])], [y])
    with pytest.raises(MCUCError, match=r"RESIZE_BILINEAR.*size \[4, 5\] differs"):
        load_tflite(mb.build([x], [y]))


@NEEDS_ARM
def test_generated_c_compiles_without_warnings(tmp_path):
    import subprocess

    import mcuc
    from tests.ir.test_ops_movement import STRICT

    model, _ = model_of(FIXED)
    for target, compiler in (("cortex-m0", ["gcc"]),
                             ("cortex-m4", ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                            "-mfpu=fpv4-sp-d16"])):
        folder = tmp_path / target
        mcuc.compile_to_directory(model, folder, target=target)
        done = subprocess.run([*compiler, *STRICT, "-c", "model.c", "-o", "/dev/null"], cwd=folder,
                              capture_output=True, text=True)
        assert done.returncode == 0 and "warning" not in done.stderr, (target, done.stderr[:3000])


def test_patch_stage_with_resize_bilinear_matches_oracle():
    """conv -> RESIZE_BILINEAR (x2, half_pixel_centers) -> conv in one patch stage: each
    region's resize reads the rows and columns its corners span, with its own table; the
    reference, llvm and the portable C equal tflite-micro (recomputed and cached halos)."""
    from mcuc.backends.cortexm import get_target, run_chost
    from mcuc.backends.cortexm.kernels import scratch_requests as cortexm_scratch
    from mcuc.backends.llvm import compile_program as compile_llvm, scratch_requests as llvm_scratch
    from mcuc.ir.program_interpreter import run_program
    from mcuc.oracle import TFLiteOracle
    from mcuc.passes.patch_schedule import schedule_with_patches

    rng = np.random.default_rng(2)
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 4, 5, 4), "int8", 0.05, 3)
    w = mb.tensor("w", (4, 3, 3, 4), "int8", [0.01] * 4, [0] * 4, data=rng.integers(-60, 60, (4, 3, 3, 4)))
    b = mb.tensor("b", (4,), "int32", data=rng.integers(-500, 500, 4))
    h = mb.tensor("h", (1, 4, 5, 4), "int8", 0.06, -5)
    mb.op("CONV_2D", [x, w, b], [h], padding="SAME")
    r = mb.tensor("r", (1, 8, 10, 4), "int8", 0.06, -5)
    mb.op("RESIZE_BILINEAR", [h, mb.const("s", [8, 10])], [r], half_pixel_centers=True)
    y = mb.tensor("y", (1, 8, 10, 4), "int8", 0.1, 0)
    mb.op("CONV_2D", [r, w, b], [y], padding="SAME")
    model = mb.build([x], [y])
    inputs = [rng.integers(-128, 128, (1, 4, 5, 4)).astype(np.int8)]
    want = TFLiteOracle(model)(inputs)[0]
    graph = load_tflite(model)
    for patch in ("2x2@2", "3x2@2+cache"):
        program = schedule_with_patches(graph, patch, None, llvm_scratch)
        assert [s.op.kind for s in program.steps] == ["PATCH_STAGE"]
        assert np.array_equal(run_program(program, inputs)[0], want), patch
        assert np.array_equal(compile_llvm(program)(inputs)[0], want), patch
    target = get_target("cortex-m0")
    program = schedule_with_patches(graph, "3x2@2+cache", None,
                                    lambda op, in_place: cortexm_scratch(op, in_place, target))
    assert np.array_equal(run_chost(program, inputs)[0], want)
