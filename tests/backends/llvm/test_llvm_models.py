"""The eight shared models through the llvm backend under mcuc's memory plan: 20 random
samples each, byte-identical to tflite-micro; the reference interpreter agrees on the
first samples (it is the slow rung, and is held to the oracle by its own tests)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.paths import shared_model_names, shared_model_path
from mcuc.backends.llvm import compile_program, scratch_requests
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.interpreter import run
from mcuc.oracle import TFLiteOracle
from mcuc.passes import plan
from mcuc.samples import random_inputs
from tests.backends.llvm.test_llvm_layers import same_bytes

SAMPLES = 20
REFERENCE_SAMPLES = 2
MODELS = shared_model_names() or ["mcunet_vww1"]  # absent folder: the test skips with the reason


@pytest.mark.parametrize("name", MODELS)
def test_shared_model_is_bit_exact(name):
    path = shared_model_path(name)
    data = path.read_bytes()
    graph = load_tflite(data)
    program = plan(graph, scratch_requests)
    compiled = compile_program(program)
    oracle = TFLiteOracle(data)
    rng = np.random.default_rng(2026)
    for sample in range(SAMPLES):
        inputs = random_inputs(graph, rng)
        got = compiled(inputs)
        want = oracle(inputs)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert same_bytes(g.reshape(-1), np.asarray(w).reshape(-1)), \
                f"{name}: output {i} differs from tflite-micro on sample {sample}"
        if sample < REFERENCE_SAMPLES:
            for i, (g, r) in enumerate(zip(got, run(graph, inputs))):
                assert same_bytes(g, r), f"{name}: output {i} differs from the reference on sample {sample}"
