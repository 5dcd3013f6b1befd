"""Several memory regions (`--memory`, passes/regions.py): every buffer of a plan lands
wholly in one region within its capacity, the verifier holds the result (and refuses a
region too small for its buffers), the program computes the graph's bytes, the estimated
access cost never exceeds everything-in-the-costliest-region, a request no region can
hold names the bytes that would, and the option's text is checked."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.ir.errors import MCUCError
from mcuc.ir.interpreter import run
from mcuc.ir.program_check import RULE_REGIONS, PlanError, check_program
from mcuc.ir.program_interpreter import run_program
from mcuc.model import load_model
from mcuc.passes import plan
from mcuc.passes.patch import StageSpec, plan_patched
from mcuc.passes.patch_search import stage_ends
from mcuc.passes.regions import MemoryRegion, access_cost, parse_memory, place_in_regions
from mcuc.pipeline import CompileOptions, cortexm_scratch, schedule
from tests.support.memory_graphs import random_graph, random_inputs
from tests.support.memory_scratch import mimic_cortexm_scratch
from tests.support.patch_graphs import random_stage_graph
from tests.support.paths import shared_model_path


def random_regions(rng: np.random.Generator, arena: int) -> tuple[MemoryRegion, ...]:
    """One to three regions of a fifth to one and a half times the one-arena plan each."""
    count = int(rng.integers(1, 4))
    return tuple(MemoryRegion(f"r{k}", max(1, int(arena * rng.uniform(0.2, 1.5))), float(rng.integers(1, 9)))
                 for k in range(count))


def check_placed(program, regions, graph, seed: int) -> None:
    """place_in_regions on `program`: refused only when no region holds the whole plan
    (naming its bytes), else a verified program whose regions respect their capacities
    and that computes the graph's bytes."""
    try:
        placed = place_in_regions(program, regions)
    except MCUCError as e:
        assert max(r.capacity for r in regions) < program.arena_bytes, "one region holds the plan: no refusal"
        assert f"{program.arena_bytes} B" in str(e)
        return
    check_program(placed)
    assert [r.name for r in placed.regions] == [r.name for r in regions]
    assert all(p.size <= r.capacity for p, r in zip(placed.regions, regions))
    assert placed.regions[-1].end == placed.arena_bytes
    for b in placed.buffers:
        k, region = placed.region_at(b.offset)
        assert b.size == 0 or b.end <= region.end
    cost = access_cost(placed)
    assert cost["planned"] <= cost["slowest"]
    inputs = random_inputs(graph, seed)
    for e, g in zip(run(graph, inputs), run_program(placed, inputs, seed=seed)):
        assert np.array_equal(e, g)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), caller_io=st.booleans())
def test_random_plans_over_random_regions(seed, caller_io):
    graph = random_graph(seed)
    if caller_io:
        graph = graph.with_(io_buffers="caller")
    program = plan(graph, mimic_cortexm_scratch, optimize=bool(seed % 2))
    check_placed(program, random_regions(np.random.default_rng(seed), program.arena_bytes), graph, seed)


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**31 - 1))
def test_patched_plans_over_random_regions(seed):
    """A patch stage's workspace and temporary area move with its scratch, and its calls
    are lowered again at the new offsets."""
    graph = random_stage_graph(seed)
    rng = np.random.default_rng(seed)
    start, end = stage_ends(graph)[int(rng.integers(len(stage_ends(graph))))]
    cut = graph.ops[end].outputs[0]
    grid = (int(rng.integers(1, min(4, cut.shape[1]) + 1)), int(rng.integers(1, min(4, cut.shape[2]) + 1)))
    program = plan_patched(graph, [StageSpec(end, grid, start, bool(seed % 2))], mimic_cortexm_scratch,
                           optimize=False)
    check_placed(program, random_regions(rng, program.arena_bytes), graph, seed)


def test_the_verifier_refuses_a_region_too_small_for_its_buffers():
    graph = random_graph(5)
    program = plan(graph, mimic_cortexm_scratch)
    half = program.arena_bytes // 2
    placed = place_in_regions(program, (MemoryRegion("fast", half, 1), MemoryRegion("slow", 10**6, 4)))
    check_program(placed)
    first = placed.regions[0]
    assert first.size > 0
    shrunk = replace(placed, regions=(replace(first, size=first.size - 4), *placed.regions[1:]))
    with pytest.raises(PlanError) as broken:
        check_program(shrunk)
    assert broken.value.rule == RULE_REGIONS
    over = replace(placed, regions=(replace(first, capacity=first.size - 1), *placed.regions[1:]))
    with pytest.raises(PlanError):
        check_program(over)


def test_the_cheap_region_gets_the_busiest_bytes_of_mcunet_vww1():
    """A small fast region beside a large slow one: everything fits, the fast one is used
    within its capacity, and the estimated access cost is at least 1.5x smaller than with
    every buffer in the slow region."""
    model = load_model(shared_model_path("mcunet_vww1.tflite"))
    options = CompileOptions(io="int8", memory="dtcm:32K:1,sram:512K:3")
    program = schedule(model.graph, options, cortexm_scratch("cortex-m4"))
    dtcm, sram = program.regions
    assert 0 < dtcm.size <= 32 * 1024 and sram.size <= 512 * 1024
    cost = access_cost(program)
    assert cost["slowest"] / cost["planned"] >= 1.5
    # only the regions moved: the one-arena plan's bytes are all still there
    assert dtcm.size + sram.size >= program.notes["one_arena_bytes"] - 16


def test_one_region_too_small_names_what_fits():
    graph = random_graph(11)
    program = plan(graph, mimic_cortexm_scratch)
    with pytest.raises(MCUCError, match=f"One arena needs {program.arena_bytes} B"):
        place_in_regions(program, (MemoryRegion("sram", program.arena_bytes - 16),))
    one = place_in_regions(program, (MemoryRegion("sram", program.arena_bytes),))
    assert one.arena_bytes <= program.arena_bytes


@pytest.mark.parametrize("spec, regions", [
    ("sram:1024", (MemoryRegion("sram", 1024, 1.0),)),
    ("dtcm:64K:1, sram:2M:2.5", (MemoryRegion("dtcm", 65536, 1.0), MemoryRegion("sram", 2 * 1024 * 1024, 2.5))),
    ("a_1:3KiB:0.5", (MemoryRegion("a_1", 3072, 0.5),)),
])
def test_parse_memory(spec, regions):
    assert parse_memory(spec) == regions


@pytest.mark.parametrize("spec, says", [
    ("sram", "NAME:SIZE"), ("sram:1K:1:2", "NAME:SIZE"), ("Sram:1K", "lowercase C identifier"),
    ("1x:1K", "lowercase C identifier"), ("sram:0", "positive number of bytes"), ("sram:1G", "positive number"),
    ("sram:1K:0", "cost"), ("sram:1K:nan", "cost"), ("sram:1K:inf", "cost"), ("a:1K,a:2K", "repeat"),
    ("a:1K,", "NAME:SIZE"),
])
def test_bad_memory_specs_are_refused(spec, says):
    with pytest.raises(MCUCError, match=says):
        parse_memory(spec)
    with pytest.raises(MCUCError, match=says):
        CompileOptions(memory=spec)


def test_memory_with_a_caller_arena_is_refused():
    with pytest.raises(MCUCError, match="--arena caller"):
        CompileOptions(memory="sram:1K", arena="caller")


def test_compile_with_memory_writes_one_array_per_region(tmp_path, capsys):
    """`mcuc compile --memory`: the placement printed, the header's and README's region
    macros, the CMake cache variable of each region's section; a bad spec, --arena
    caller and several models are clean refusals."""
    from tests.support.hostile_models import refused, run_cli

    model = shared_model_path("hello_world_int8.tflite")
    program = schedule(load_model(model).graph, CompileOptions(), cortexm_scratch("cortex-m4"))
    memory = f"fast:{program.arena_bytes // 2}:1,slow:4K:5"
    code, out, _ = run_cli(capsys, "compile", model, "--memory", memory, "--name", "hw", "-o", tmp_path / "hw")
    assert code == 0
    assert "fast " in out and "slow " in out and "estimated access cost" in out
    header = (tmp_path / "hw" / "model.h").read_text()
    assert "#define HW_SLOW_ARENA_BYTES " in header
    assert "static uint8_t hw_slow_arena[" in (tmp_path / "hw" / "model.c").read_text()
    assert "HW_SLOW_ARENA_SECTION" in (tmp_path / "hw" / "README.md").read_text()
    assert "set(HW_SLOW_ARENA_SECTION" in (tmp_path / "hw" / "CMakeLists.txt").read_text()
    assert "region" in refused(capsys, "compile", model, "--memory", "Fast:1K", "-o", tmp_path / "a")
    assert "--arena caller" in refused(capsys, "compile", model, "--memory", "a:1K", "--arena", "caller",
                                       "-o", tmp_path / "b")
    assert "several memory regions" in refused(capsys, "compile", model, model, "--name", "a,b", "--memory", "a:1M",
                                               "-o", tmp_path / "c")
    assert "One arena needs" in refused(capsys, "compile", model, "--memory", "tiny:16", "-o", tmp_path / "d")


def test_weights_in_ram_take_their_bytes_from_their_region():
    graph = random_graph(7)
    program = plan(graph, mimic_cortexm_scratch)
    weights = program.arena_bytes // 2
    regions = (MemoryRegion("fast", program.arena_bytes, 1), MemoryRegion("slow", 10 * program.arena_bytes, 3))
    placed = place_in_regions(program, regions, ("fast", weights))
    check_program(placed)
    fast, slow = placed.regions
    assert fast.weights_bytes == weights and slow.weights_bytes is None
    assert fast.size + weights <= fast.capacity == program.arena_bytes
    with pytest.raises(PlanError):  # the verifier counts the weights too
        check_program(replace(placed, regions=(replace(fast, weights_bytes=fast.capacity - fast.size + 1), slow)))
    with pytest.raises(MCUCError, match="more than region 'fast' holds"):
        place_in_regions(program, regions, ("fast", program.arena_bytes + 1))
    with pytest.raises(MCUCError, match="names no region"):
        place_in_regions(program, regions, ("dtcm", 10))


@pytest.mark.parametrize("options, says", [
    (dict(weights_in_ram="sram"), "give --memory"),
    (dict(memory="dtcm:1K,sram:2K", weights_in_ram="flash"), r"names no region of --memory \(dtcm, sram\)"),
])
def test_weights_in_ram_needs_a_region_of_memory(options, says):
    with pytest.raises(MCUCError, match=says):
        CompileOptions(**options)


def test_every_backend_runs_regions_with_weights_in_ram():
    """hello_world with its weights in RAM region slow and every buffer in region fast
    (slow gets no array): bit-exact on every backend the default verify checks."""
    import mcuc

    model = shared_model_path("hello_world_int8.tflite")
    report = mcuc.verify(model, samples=3, memory="fast:4K:1,slow:64K:4", weights_in_ram="slow")
    assert set(report["backends_checked"]) >= {"reference", "llvm", "c-host"}
    assert all(v["bit_exact"] for v in report["backends"].values()), report["backends"]


def test_weights_in_ram_count_every_array_type_the_emitters_use():
    """A broadcast MAXIMUM keeps its extents and strides in `int` arrays (three of six):
    --weights-in-ram counts them, 72 B, where it once refused the model."""
    from tests.support.tflite_builder import ModelBuilder

    mb = ModelBuilder()
    a, b = mb.tensor("a", (1, 4, 3), "int8", 0.1, 0), mb.tensor("b", (1, 1, 3), "int8", 0.1, 0)
    y = mb.tensor("y", (1, 4, 3), "int8", 0.1, 0)
    mb.op("MAXIMUM", [a, b], [y])
    graph = load_model(mb.build([a, b], [y]), format="tflite").graph
    program = schedule(graph, CompileOptions(memory="a:64K", weights_in_ram="a"), cortexm_scratch("cortex-m4"))
    assert program.regions[0].weights_bytes == 3 * 6 * 4
