"""`--optimize size`: -Os and int8 fully connected weights on DSP cores, for parts whose
flash is tighter than their time budget. The answer stays byte-exact; the flash shrinks
by about the weights' bytes (int16 -> int8); `speed` stays the default."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mcuc.cli import main
from mcuc.ir.errors import MCUCError
from mcuc.pipeline import CompileOptions, cortexm_target
from tests.support.tflite_builder import single_op_model

UNITS, DEPTH = 64, 256


@pytest.fixture(scope="module")
def fc_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("fc") / "fc.tflite"
    path.write_bytes(single_op_model("FULLY_CONNECTED", [(1, DEPTH)], np.random.default_rng(4), units=UNITS))
    return path


def _bench(capsys, model, optimize: str) -> dict:
    capsys.readouterr()
    assert main(["bench", str(model), "--target", "cortex-m4", "--optimize", optimize, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    return row


def test_size_keeps_the_bytes_and_halves_the_weights_flash(fc_model, capsys):
    speed, size = _bench(capsys, fc_model, "speed"), _bench(capsys, fc_model, "size")
    assert speed["bit_exact"] and size["bit_exact"]
    assert speed["optimize"] == "speed" and size["optimize"] == "size"
    # int16 -> int8 weights save UNITS * DEPTH bytes; -Os saves code on top.
    assert speed["flash_bytes"] - size["flash_bytes"] >= UNITS * DEPTH
    assert size["instructions"] > speed["instructions"]  # the price: no int16 SMLAD loop


def test_size_is_byte_exact_on_the_dsp_cores(fc_model, capsys):
    capsys.readouterr()
    assert main(["verify", str(fc_model), "--backends", "cortex-m7,cortex-m33", "--optimize", "size",
                 "--samples", "2"]) == 0


def test_generated_makefile_defaults_to_the_chosen_optimization(fc_model, tmp_path, capsys):
    for optimize, flag in (("speed", "-O3"), ("size", "-Os")):
        out = tmp_path / optimize
        assert main(["compile", str(fc_model), "-o", str(out), "--target", "cortex-m4", "--optimize", optimize]) == 0
        assert f"OPT ?= {flag}\n" in (out / "Makefile").read_text()
        assert json.loads((out / "report.json").read_text())["optimize"] == optimize
        source = (out / "model.c").read_text()
        # speed: int16 weights (an int16_t array, or the uint32 stream of int16 lane pairs
        # of mcuc_fully_connected_w16_streams); size: int8
        assert ("int8_t" in source.split("_w[")[0].splitlines()[-1]) == (optimize == "size")


def test_targets_and_options_name_the_choice():
    assert cortexm_target("cortex-m4", "size").fc_weights_int16 is False
    assert cortexm_target("cortex-m4").fc_weights_int16 is True
    assert cortexm_target("cortex-m0").fc_weights_int16 is False  # no DSP: int8 either way
    assert cortexm_target("cortex-m4", "size").wide_gemm_streams is False
    assert cortexm_target("cortex-m4").wide_gemm_streams is True
    assert cortexm_target("cortex-m0").wide_gemm_streams is False
    with pytest.raises(MCUCError, match="unknown --optimize 'fast'; choose speed or size"):
        CompileOptions(optimize="fast")
