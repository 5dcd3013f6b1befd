"""The Cortex-M toolchain driver and emulator on hand-written code with known counts.

Every expected number here is derived from the code by hand (instructions per loop
iteration, bytes pushed), so a miscounting hook or a wrong stack scan fails.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcuc.ir.errors import MCUCError

pytest.importorskip("unicorn", reason="the emulator needs the unicorn package (scripts/setup.sh)")
if shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)",
                allow_module_level=True)

from mcuc.backends.cortexm import toolchain  # noqa: E402
from mcuc.backends.cortexm.emulator import Emulator  # noqa: E402
from mcuc.backends.cortexm.project import build_context, template_environment  # noqa: E402
from mcuc.backends.cortexm.target import get_target  # noqa: E402

# Functions every Thumb core runs (ARMv6-M subset).
PORTABLE_ASM = r"""
    .syntax unified
    .thumb
    .text
    .global loop_n
    .type loop_n, %function
    .thumb_func
loop_n:                     @ 1 + 3 per iteration + 2
    movs r1, #0
1:  adds r1, r1, #1
    subs r0, r0, #1
    bne 1b
    mov r0, r1
    bx lr
    .global frame_64
    .type frame_64, %function
    .thumb_func
frame_64:                   @ pushes 8 bytes, then a 64-byte frame: 72 bytes of stack
    push {r4, lr}
    sub sp, sp, #64
    str r0, [sp]
    add sp, sp, #64
    pop {r4, pc}
    .global marked
    .type marked, %function
    .thumb_func
marked:                     @ one block; mark_middle is preceded by 2 instructions
    movs r1, #1
    adds r0, r0, r1
    .global mark_middle
mark_middle:
    adds r0, r0, r1
    bx lr
    .global spin
    .type spin, %function
    .thumb_func
spin:
    b spin
    .global breakpoint
    .type breakpoint, %function
    .thumb_func
breakpoint:
    bkpt #3
    bx lr
    .global load_unmapped
    .type load_unmapped, %function
    .thumb_func
load_unmapped:              @ reads address 0x40000000, which no region maps
    movs r0, #1
    lsls r0, r0, #30
    ldr r0, [r0]
    bx lr
"""

# ARMv7-M and ARMv7E-M only: IT blocks and a DSP instruction.
V7M_ASM = r"""
    .syntax unified
    .thumb
    .text
    .global it_block
    .type it_block, %function
    .thumb_func
it_block:                   @ 7 instructions whatever r0 is
    cmp r0, #0
    ite eq
    moveq r0, #5
    movne r0, #7
    it eq
    addeq r0, r0, #1
    bx lr
"""
DSP_ASM = r"""
    .syntax unified
    .thumb
    .text
    .global dual_mac
    .type dual_mac, %function
    .thumb_func
dual_mac:                   @ r0 = lo(r0)*lo(r1) + hi(r0)*hi(r1) + r2
    smlad r0, r0, r1, r2
    bx lr
"""

MODEL_C = r"""
#include <stdint.h>
#include <string.h>
#include "model.h"

__asm__({asm});

int loop_n(int n);
int frame_64(int x);
int marked(int x);
int spin(int x);
int breakpoint(int x);
int load_unmapped(int x);
{extra_decls}
uint8_t source_bytes[1024];
uint8_t target_bytes[1024];
int32_t initialized_word = 0x12345678;
typedef int (*function)(int);
/* Keeps the assembly functions alive through --gc-sections. */
function volatile keep[] = {{loop_n, frame_64, marked, spin, breakpoint, load_unmapped{extra_keep}}};

int model_invoke(void)
{{
    memcpy(target_bytes, source_bytes, sizeof target_bytes);
    return (int)initialized_word + target_bytes[7] + (keep[0] == 0);
}}
"""


def _asm_literal(text: str) -> str:
    return "\n".join('"' + line.replace("\\", "\\\\").replace('"', '\\"') + '\\n"'
                     for line in text.strip("\n").splitlines())


def build(tmp: Path, core: str) -> tuple[Emulator, toolchain.Firmware]:
    target = get_target(core)
    asm = PORTABLE_ASM
    decls, keep = "", ""
    if core != "cortex-m0":
        asm += V7M_ASM
        decls += "int it_block(int x);\n"
        keep += ", it_block"
    if target.has_dsp:
        asm += DSP_ASM
        decls += "int dual_mac(int a, int b, int c);\n"
        keep += ", (function)(void (*)(void))dual_mac"
    project = tmp / "project"
    project.mkdir()
    (project / "model.h").write_text("#ifndef MODEL_H\n#define MODEL_H\nint model_invoke(void);\n#endif\n")
    (project / "model.c").write_text(MODEL_C.format(asm=_asm_literal(asm), extra_decls=decls, extra_keep=keep))
    makefile = template_environment().get_template("Makefile.j2")
    (project / "Makefile").write_text(makefile.render(build_context("model", target, ["model.c"])))
    firmware = toolchain.build_firmware(project, target, tmp / "build")
    emulator = Emulator(firmware.elf, target, (toolchain.FLASH_ORIGIN, toolchain.FLASH_BYTES),
                        (toolchain.RAM_ORIGIN, toolchain.RAM_BYTES))
    return emulator, firmware


@pytest.fixture(scope="module", params=["cortex-m0", "cortex-m4"])
def built(request, tmp_path_factory):
    return build(tmp_path_factory.mktemp(request.param), request.param)


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_loop_count_is_exact(built, n):
    emulator, _ = built
    result = emulator.call("loop_n", (n,))
    assert result.return_value == n
    assert result.instructions == 1 + 3 * n + 2


@pytest.mark.parametrize("n", [1, 2, 1000])
def test_loop_cycles_charge_the_refill_of_taken_branches_only(built, n):
    """cortex-m4's estimate (timing.py): movs 1; per iteration adds, subs, bne 3, and the
    refill of 2 on the n-1 taken bne; mov 1; bx lr 1 + 2. cortex-m0 has no cycle model."""
    emulator, firmware = built
    result = emulator.call("loop_n", (n,))
    if firmware.target.name == "cortex-m0":
        assert result.cycles is None and result.cycle_marks == {}
    else:
        assert result.cycles == 1 + 3 * n + 2 * (n - 1) + 1 + 3
    assert emulator.call("loop_n", (n,), count_instructions=False).cycles is None


def test_stack_high_water_mark_of_a_known_frame(built):
    emulator, _ = built
    result = emulator.call("frame_64", (3,))
    assert result.instructions == 5
    assert result.stack_bytes == 8 + 64


def test_leaf_without_stack_use_measures_zero(built):
    emulator, _ = built
    assert emulator.call("loop_n", (3,)).stack_bytes == 0


def test_mark_inside_a_block_counts_the_instructions_before_it(built):
    emulator, firmware = built
    result = emulator.call("marked", (10,), marks=("mark_middle",))
    assert result.return_value == 12
    assert result.instructions == 4
    assert result.marks == {"mark_middle": 2}
    if firmware.target.has_dsp:
        assert result.cycle_marks == {"mark_middle": 2} and result.cycles == 4 + 2


def test_runaway_code_hits_the_budget(built):
    emulator, _ = built
    with pytest.raises(MCUCError, match="runaway"):
        emulator.call("spin", (0,), budget=10_000)


@pytest.mark.parametrize("n", [1, 1000])
def test_uncounted_call_gives_the_same_results_without_counts(built, n):
    emulator, _ = built
    counted, uncounted = emulator.call("loop_n", (n,)), emulator.call("loop_n", (n,), count_instructions=False)
    assert (uncounted.return_value, uncounted.stack_bytes) == (counted.return_value, counted.stack_bytes)
    assert uncounted.instructions is None
    assert emulator.call("frame_64", (3,), count_instructions=False).stack_bytes == 8 + 64


def test_uncounted_runaway_code_hits_the_budget(built):
    emulator, _ = built
    with pytest.raises(MCUCError, match="runaway"):
        emulator.call("spin", (0,), budget=10_000, count_instructions=False)
    with pytest.raises(MCUCError, match=r"CPU exception 7 \(bkpt\) in breakpoint"):
        emulator.call("breakpoint", (0,), count_instructions=False)
    with pytest.raises(MCUCError, match="need count_instructions"):
        emulator.call("marked", (10,), marks=("mark_middle",), count_instructions=False)


def test_breakpoint_and_bad_load_are_named_errors(built):
    emulator, _ = built
    with pytest.raises(MCUCError, match=r"CPU exception 7 \(bkpt\) in breakpoint"):
        emulator.call("breakpoint", (0,))
    with pytest.raises(MCUCError, match="faulted in load_unmapped.*last block at load_unmapped"):
        emulator.call("load_unmapped", (0,))


def test_calls_start_from_the_initial_image(built):
    """.data is initialized and .bss zero for every call, even after a call wrote them."""
    emulator, _ = built
    buffer = emulator.symbol("source_bytes").address
    first = emulator.call("model_invoke", writes=[(buffer + 7, b"\x05")])
    assert first.return_value == 0x12345678 + 5
    assert emulator.call("model_invoke").return_value == 0x12345678


def test_reset_handler_runs_the_model_from_a_cold_start(built):
    emulator, _ = built
    status = emulator.symbol("mcuc_harness_status").address
    result = emulator.call("Reset_Handler", until="mcuc_harness_done", reads=[(status, 4)])
    assert int.from_bytes(result.reads[0], "little") == 0x12345678
    assert result.instructions > emulator.call("model_invoke").instructions
    if emulator.target.float_abi != "soft":  # the reset path turned the FPU on (CPACR)
        cpacr = emulator.call("Reset_Handler", until="mcuc_harness_done", reads=[(0xE000ED88, 4)]).reads[0]
        assert int.from_bytes(cpacr, "little") == 0xF << 20


def test_section_sizes_split_model_and_harness(built):
    _, firmware = built
    assert firmware.model.data == 4 + 4 * (6 + (1 if firmware.target.name != "cortex-m0" else 0)
                                           + (1 if firmware.target.has_dsp else 0))
    assert firmware.model.bss == 2048
    assert firmware.harness.bss == 4  # mcuc_harness_status
    assert firmware.harness.data == 0
    assert firmware.model.text > 0 and firmware.harness.text >= 64  # the vector table


def test_it_block_counts_instructions_whose_condition_fails(tmp_path):
    emulator, _ = build(tmp_path, "cortex-m3")
    taken = emulator.call("it_block", (0,))
    not_taken = emulator.call("it_block", (1,), cross_check=True)
    assert (taken.return_value, not_taken.return_value) == (6, 7)
    assert taken.instructions == not_taken.instructions == 7


def test_cross_check_agrees_with_the_per_instruction_hook(built):
    emulator, _ = built
    assert emulator.call("model_invoke", cross_check=True).instructions == \
        emulator.call("model_invoke").instructions


def test_cross_check_catches_a_miscounting_block_cache(built):
    """A block whose cached count is off by one must fail the cross check."""
    emulator, _ = built
    emulator.call("loop_n", (4,))
    key = next(k for k in emulator._blocks if k[0] == emulator.symbol("loop_n").address & ~1)
    emulator._blocks[key] = emulator._blocks[key][:-1]
    try:
        with pytest.raises(MCUCError, match="per-instruction hook"):
            emulator.call("loop_n", (4,), cross_check=True)
    finally:
        del emulator._blocks[key]


@pytest.mark.parametrize("core", ["cortex-m7", "cortex-m33"])
def test_dsp_instructions_execute_on_dsp_cores(tmp_path, core):
    emulator, _ = build(tmp_path, core)
    a = (3 & 0xFFFF) | ((-2 & 0xFFFF) << 16)
    b = (100 & 0xFFFF) | ((7 & 0xFFFF) << 16)
    result = emulator.call("dual_mac", (a, b, 1000))
    assert result.return_value == 3 * 100 + (-2) * 7 + 1000
    assert result.instructions == 2


def test_dsp_instruction_on_cortex_m4(built):
    emulator, firmware = built
    if not firmware.target.has_dsp:
        pytest.skip("cortex-m0 has no DSP extension")
    result = emulator.call("dual_mac", (0x7FFF0002, 0x00020003, 0))
    assert result.return_value == 2 * 3 + 0x7FFF * 2


def test_missing_toolchain_names_the_debian_packages(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("MCUC_ARM_GCC", raising=False)
    with pytest.raises(MCUCError, match="gcc-arm-none-eabi and libnewlib-arm-none-eabi"):
        toolchain.find_arm_gcc()


def test_unknown_symbol_is_a_clear_error(built):
    emulator, _ = built
    with pytest.raises(MCUCError, match="no_such_function"):
        emulator.call("no_such_function")


MAP_EXCERPT = """
Discarded input sections

 .text          0x00000000       0x40 startup.o

Linker script and memory map

.isr_vector     0x08000000       0x40
 *(.isr_vector)
 .isr_vector    0x08000000       0x40 startup.o
                0x08000000                mcuc_vector_table

.text           0x08000040      0x120
 *(.text .text.*)
 .text.Reset_Handler
                0x08000040       0x30 startup.o
                0x08000040                Reset_Handler
 .text.model_invoke
                0x08000070       0x64 /tmp/b/lib/libmodel.a(model.o)
 *fill*         0x080000d4        0xc 
 .text          0x080000e0       0x80 /usr/lib/arm-none-eabi/lib/libc_nano.a(libc_a-memcpy.o)

.rodata         0x08000160      0x208
 .rodata.mcuc_step0_w
                0x08000160      0x200 /tmp/b/lib/libmodel.a(model.o)
 .rodata.str1.4
                0x08000360        0x8 startup.o

.data           0x20000000        0x8 load address 0x08000368
 .data.table    0x20000000        0x8 /tmp/b/lib/libmodel.a(model.o)

.bss            0x20000008      0x3010
 .bss.model_arena
                0x20000008     0x3000 /tmp/b/lib/libmodel.a(model.o)
 .bss.mcuc_harness_status
                0x20003008        0x4 startup.o
 COMMON         0x2000300c        0x4 /tmp/b/lib/libmodel.a(model.o)
"""


def test_map_sizes_charge_each_input_section_to_its_owner():
    model, harness = toolchain.section_sizes_from_map(MAP_EXCERPT)
    assert model == toolchain.SectionSizes(text=0x64 + 0x80, rodata=0x200, data=8, bss=0x3000 + 4)
    assert harness == toolchain.SectionSizes(text=0x40 + 0x30, rodata=8, data=0, bss=4)
    assert model.flash_bytes == 0x64 + 0x80 + 0x200 + 8
