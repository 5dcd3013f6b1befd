"""The llvm backend on planner-stressing graphs and on patch-based schedules.

1. memory_graphs.random_graph (branches, residual ADDs, in-place elementwise and
   depthwise, RESHAPE aliases, CONCATENATION along H or C, PAD, several outputs),
   planned by mcuc.passes.plan: llvm gives the reference interpreter's bytes.
2. Random patch stages and grids (patch_graphs.random_stage_graph: chains, residual
   blocks, concatenated branches, kernels 1-7, strides, dilation, pools, PAD, resize)
   planned by plan_patched: the llvm program, which reads and writes the planned patch
   buffers, equals the layer-by-layer reference.
3. A shared model with a patch stage equals tflite-micro.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.paths import shared_model_path
from tests.support.memory_graphs import random_graph, random_inputs
from mcuc.backends.llvm import compile_program, scratch_requests
from mcuc.frontend.tflite import load_tflite
from mcuc.ir.interpreter import run
from mcuc.ir.program import PatchLoop
from mcuc.oracle import TFLiteOracle
from mcuc.passes import plan
from mcuc.passes.patch import StageSpec, plan_patched, stage_ends
from mcuc.pipeline import CompileOptions, prepare
from mcuc.samples import random_inputs as model_inputs
from tests.support.patch_graphs import random_stage_graph
from tests.backends.llvm.test_llvm_layers import same_bytes

SETTINGS = settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])


def random_stages(graph, rng: np.random.Generator) -> list[StageSpec]:
    """One or two stages at random ends and starts, random grids within the cut."""
    specs, first_allowed = [], 0
    for _ in range(int(rng.integers(1, 3))):
        choices = [(s, e) for s, e in stage_ends(graph) if e >= first_allowed and max(s, first_allowed) <= e]
        if not choices:
            break
        s, e = choices[int(rng.integers(len(choices)))]
        s = int(rng.integers(max(s, first_allowed), e + 1))
        cut = graph.ops[e].outputs[0]
        grid = (int(rng.integers(1, min(4, cut.shape[1]) + 1)), int(rng.integers(1, min(4, cut.shape[2]) + 1)))
        specs.append(StageSpec(e, grid, s, bool(rng.integers(2))))  # halos cached or recomputed
        first_allowed = e + 1
    return specs


def assert_equals_reference(graph, program, seed: int) -> None:
    compiled = compile_program(program)
    for sample in range(2):
        inputs = random_inputs(graph, seed + sample)
        for i, (want, got) in enumerate(zip(run(graph, inputs), compiled(inputs))):
            assert same_bytes(got, want), f"output {i} differs from the layer-by-layer reference"


@SETTINGS
@given(st.integers(0, 2**31 - 1))
def test_planner_stress_graphs(seed):
    graph = random_graph(seed, max_ops=8)
    assert_equals_reference(graph, plan(graph, scratch_requests), seed)


@SETTINGS
@given(st.integers(0, 2**31 - 1))
def test_patch_stages_equal_layer_by_layer(seed):
    graph = random_stage_graph(seed)
    specs = random_stages(graph, np.random.default_rng(seed + 1))
    program = plan_patched(graph, specs, scratch_requests)
    assert sum(isinstance(s, PatchLoop) for s in program.steps) == len(specs)
    assert_equals_reference(graph, program, seed)


def test_shared_model_with_a_patch_stage_equals_tflite_micro():
    path = shared_model_path("mcunet_vww1")
    data = path.read_bytes()
    graph = prepare(load_tflite(data), CompileOptions())
    # The longest stage among the first eight ops: the high-resolution blocks that
    # patch-based inference targets (a stage over the whole network compiles slowly).
    start, end = max((se for se in stage_ends(graph) if se[1] < 8), key=lambda se: se[1] - se[0])
    program = plan_patched(graph, [StageSpec(end, (3, 3), start)], scratch_requests)
    compiled = compile_program(program)
    oracle = TFLiteOracle(data)
    rng = np.random.default_rng(1)
    for _ in range(3):
        inputs = model_inputs(graph, rng)
        assert same_bytes(compiled(inputs)[0].reshape(-1), np.asarray(oracle(inputs)[0]).reshape(-1))
