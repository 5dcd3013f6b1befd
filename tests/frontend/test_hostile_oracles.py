"""The oracles under hostile models (issue 18): their failures are MCUCErrors naming the
oracle, and a crash of tflite-micro (it runs in a worker process) is reported as the
oracle's crash while mcuc carries on."""
from __future__ import annotations

import numpy as np
import pytest

from mcuc.ir.errors import MCUCError
from mcuc.oracle import TFLiteOracle
from tests.support import hostile_models as hm
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "mobilenet_tiny_int8.tflite"


def test_a_segfault_in_tflite_micro_is_the_oracles_crash_and_mcuc_carries_on():
    # A depth multiplier of a million over 4 weight channels: tflite-micro reads far out of
    # bounds and dies of SIGSEGV (mcuc's frontend refuses this model; the oracle is fed directly).
    # In a fresh worker (as `mcuc verify` runs it), whose small heap ends where it writes.
    crashing = TFLiteOracle(hm.tflite_conv("DEPTHWISE_CONV_2D", channels=4, out_channels=4,
                                           depth_multiplier=1_000_000), fresh_process=True)
    x = np.zeros((1, 5, 5, 4), np.int8)
    with pytest.raises(MCUCError, match=r"the oracle crashed: tflite-micro killed by SIGSEGV while running"):
        crashing([x])
    # The next oracle gets a new worker.
    oracle = TFLiteOracle(EXAMPLE.read_bytes())
    assert oracle([np.zeros((1, 48, 48, 3), np.int8)])[0].shape == (1, 10)


@pytest.mark.parametrize("data", [b"\x00" * 64, b"garbage" * 10, hm.tflite_conv()[:200]])
def test_tflite_micro_refusing_a_file_is_an_mcuc_error(data):
    with pytest.raises(MCUCError, match="tflite-micro (cannot load this model|crashed)"):
        TFLiteOracle(data)


def test_tflite_micro_failing_on_an_input_is_an_mcuc_error():
    oracle = TFLiteOracle(EXAMPLE.read_bytes())
    with pytest.raises(MCUCError, match="tflite-micro failed running this model"):
        oracle([np.zeros((1, 2, 2, 3), np.float64)])


def test_onnxruntime_failures_are_mcuc_errors():
    pytest.importorskip("onnxruntime")
    from mcuc.oracle_onnx import OnnxOracle

    with pytest.raises(MCUCError, match=r"onnxruntime \(the oracle\) cannot load this model"):
        OnnxOracle(b"\x08\x07garbage")
    oracle = OnnxOracle(hm.qdq_conv().SerializeToString())
    with pytest.raises(MCUCError, match=r"onnxruntime \(the oracle\) failed running this model") as error:
        oracle([np.zeros((1, 4, 5, 6), np.float32)])  # the model takes [1, 4, 6, 6]
    assert len(str(error.value)) < 300


def test_api_verify_can_be_called_twice():
    """`mcuc.verify` is also the name of a submodule, which Python binds to the package on
    first import: the name must stay callable."""
    import mcuc

    first = mcuc.verify(str(EXAMPLE), backends=["reference"], samples=1)
    second = mcuc.verify(str(EXAMPLE), backends=["reference"], samples=1)
    assert first["backends"] == second["backends"] == {"reference": {"bit_exact": True, "max_abs_diff": 0}}
