"""Issue 18, item 3: mutated model files (tests/fuzz/mutations.py) through mcuc in a worker
process (tests/fuzz/harness.py). Every file is either refused cleanly (non-zero exit, one
error line, no traceback) or compiles, leaks no model text into the generated C, and, where
the oracle accepts it, gives bit-exact answers on the reference and llvm backends.

The default run takes a small deterministic budget (CASES_PER_GROUP per format and
mutation family); `pytest -m fuzz` runs FUZZ_CASES_PER_GROUP random ones per group
(MCUC_FUZZ_CASES overrides it); scripts/fuzz.py is the long on-demand run with a report.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import Runner, c_code_and_comments, text_leaks
from tests.fuzz.mutations import make_case
from tests.support.paths import shared_model_path

CASES_PER_GROUP = 20
FUZZ_CASES_PER_GROUP = int(os.environ.get("MCUC_FUZZ_CASES", "500"))
GROUPS = [("tflite", False), ("tflite", True), ("onnx", False), ("onnx", True)]


@pytest.fixture(scope="module")
def runner():
    pytest.importorskip("onnxruntime")
    r = Runner(timeout=60.0)
    yield r
    r.close()
    # the workers (and their oracles) stayed under the address-space limit
    assert r.peak_rss_kb * 1024 < 2 * 1024**3


def _check(runner: Runner, tmp_path_factory, rng, fmt: str, structured: bool) -> None:
    base, data, label = make_case(rng, fmt, structured)
    path = tmp_path_factory.mktemp("case") / f"case.{fmt}"
    path.write_bytes(data)
    outcome = runner.run(path, fmt)
    assert outcome.cls in ("ok-refused", "ok-bitexact"), (
        f"{outcome.cls} on {base.name} after {label} (file kept at {path}): {outcome.detail}")


@pytest.mark.parametrize("fmt, structured", GROUPS)
@settings(max_examples=CASES_PER_GROUP, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_mutated_models_are_refused_cleanly_or_bit_exact(runner, tmp_path_factory, rng, fmt, structured):
    _check(runner, tmp_path_factory, rng, fmt, structured)


@pytest.mark.fuzz
@pytest.mark.parametrize("fmt, structured", GROUPS)
@settings(max_examples=FUZZ_CASES_PER_GROUP, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_long_run(runner, tmp_path_factory, rng, fmt, structured):
    _check(runner, tmp_path_factory, rng, fmt, structured)


# -- the harness itself ----------------------------------------------------------------------

def test_the_leak_check_finds_model_text_in_code():
    escaped = "/* step 0: y * / int mcuc_injected = 42; // */\nint x;\n"
    assert text_leaks({"model.c": escaped}, ["y */ int mcuc_injected = 42; //"], "mcuc_injected") == []
    raw = "/* step 0: y */ int mcuc_injected = 42; // */\nint x;\n"
    assert any("mcuc_injected" in p for p in text_leaks({"model.c": raw}, [], "mcuc_injected"))
    assert any("nested" in p for p in text_leaks({"model.c": "/* a /* b */ int y;"}, [], "m"))
    assert any("continued" in p for p in text_leaks({"model.c": "// name ??/\nint y;"}, [], "m"))
    assert any("in the code" in p for p in text_leaks({"model.c": "int a; conv-1/x.y;"}, ["conv-1/x.y"], "m"))
    code, comments, problems = c_code_and_comments('char *s = "/* not a comment */"; /* c */ int z;')
    assert "not a comment" not in code and comments == [" c "] and problems == []


def test_a_case_past_its_time_is_a_hang_and_a_dead_worker_a_crash(tmp_path):
    model = shared_model_path("hello_world_int8")
    slow = Runner(timeout=0.05, workdir=str(tmp_path / "slow"))
    try:
        assert slow.run(model, "tflite").cls == "hang"
    finally:
        slow.close()
    starved = Runner(limit=64 * 1024**2, workdir=str(tmp_path / "starved"))  # python cannot even start
    try:
        assert starved.run(model, "tflite").cls == "crash"
    finally:
        starved.close()
