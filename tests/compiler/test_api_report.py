"""mcuc.compile(...).report describes the program the chosen backend runs: its arena
includes that backend's kernel scratch."""
from __future__ import annotations

import pytest

import mcuc
from mcuc.backends.llvm import scratch_requests
from mcuc.model import load_model
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule


@pytest.mark.parametrize("backend, scratch", [("llvm", scratch_requests), ("c-host", cortexm_scratch("cortex-m0")),
                                              ("reference", None)])
def test_report_is_the_arena_that_runs(shared_model, backend, scratch):
    path = shared_model("kws_ref_model")
    graph = load_model(path).graph
    runs = schedule(graph, CompileOptions(), scratch).arena_bytes
    compiled = mcuc.compile(str(path), backend=backend)
    assert compiled.report["arena_bytes"] == runs
    if backend == "llvm":  # the plan without the backend's scratch is smaller: the test can fail
        assert schedule(graph, CompileOptions()).arena_bytes < runs
