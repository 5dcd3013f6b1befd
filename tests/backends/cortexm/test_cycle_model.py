"""The Cortex-M4 cycle model (backends/cortexm/timing.py) on short instruction sequences
whose cost the Cortex-M4 Technical Reference Manual states (its instruction table with
zero wait states, and its load/store timing notes, which give some of the examples
below verbatim). The sequences are assembled by arm-none-eabi-gcc and decoded by
capstone, as the emulator decodes the blocks it runs.
"""
from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

capstone = pytest.importorskip("capstone", reason="the cycle model reads capstone's decoding")
if shutil.which("arm-none-eabi-gcc") is None:
    pytest.skip("arm-none-eabi-gcc is not installed (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)",
                allow_module_level=True)

from elftools.elf.elffile import ELFFile  # noqa: E402

from mcuc.backends.cortexm import timing  # noqa: E402
from mcuc.backends.cortexm.toolchain import find_arm_gcc  # noqa: E402

_ASSEMBLY_DIR: Path | None = None


@lru_cache(maxsize=None)
def assemble(source: str) -> tuple:
    """The instructions of `source` (one per line, `;` separates too), assembled for
    cortex-m4 Thumb and decoded with details on."""
    global _ASSEMBLY_DIR
    if _ASSEMBLY_DIR is None:
        import tempfile
        _ASSEMBLY_DIR = Path(tempfile.mkdtemp(prefix="mcuc-cycle-model-"))
    number = len(list(_ASSEMBLY_DIR.glob("*.s")))
    asm, obj = _ASSEMBLY_DIR / f"s{number}.s", _ASSEMBLY_DIR / f"s{number}.o"
    body = "\n".join(f"    {line.strip()}" for line in source.replace(";", "\n").splitlines() if line.strip())
    # `far`, the branches' target, is in another section: .text holds only `source`.
    asm.write_text(f"    .syntax unified\n    .thumb\n    .text\n{body}\n    .section .text.far\nfar: nop\n")
    subprocess.run([str(find_arm_gcc()), "-mcpu=cortex-m4", "-mthumb", "-c", str(asm), "-o", str(obj)],
                   check=True, capture_output=True)
    with open(obj, "rb") as f:
        code = ELFFile(f).get_section_by_name(".text").data()
    decoder = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    decoder.detail = True
    return tuple(decoder.disasm(code, 0x1000))


def cycles(source: str, taken: bool = False, after: str | None = None) -> int:
    """Estimated cycles of `source` as one block; `after`: the instruction that ran
    directly before it (the block was entered by falling through)."""
    previous = assemble(after)[-1] if after else None
    return timing.block_cycles(assemble(source), taken, previous)


# (sequence, cycles, what the TRM says)
SEQUENCES = [
    ("adds r0, r0, #1", 1, "data processing: 1"),
    ("movw r0, #1000; movt r0, #3; eor r1, r2, r3, lsl #4; usat r0, #8, r0", 4, "each 1"),
    ("mul r0, r1, r2; mla r0, r1, r2, r0; smull r0, r1, r2, r3; umlal r0, r1, r2, r3", 4,
     "multiplies, the long ones too, 1 on the M4 (3-7 on the M3)"),
    ("smlad r0, r1, r2, r0; smlabb r0, r1, r2, r0; sxtb16 r3, r4, ror #8; smmulr r0, r1, r2", 4, "DSP: 1"),
    ("sdiv r0, r1, r2", 12, "SDIV: 2 to 12, the model takes the worst case"),
    ("ldr r0, [r1]", 2, "a single load: 2"),
    ("ldr r0, [r1]; ldr r1, [r2]", 3, "'LDR R0,[R1]; LDR R1,[R2] - normally three cycles total'"),
    ("ldr r0, [r1, r5]; ldr r1, [r2]; ldr r2, [r3, #4]", 4, "'... LDR R2,[R3,#4] - normally four cycles total'"),
    ("ldr r0, [r1, r2]; str r0, [r3, #20]", 3, "'LDR R0,[R1,R2]; STR R0,[R3,#20] - normally three cycles total'"),
    ("ldr r0, [r1, r2]; str r1, [r3, r2]", 3, "'LDR R0,[R1,R2]; STR R1,[R3,R2] - normally three cycles total'"),
    ("ldrb r0, [r1], #1; ldrsh r2, [r3, #2]", 3, "byte and halfword loads pipeline too"),
    ("ldr r0, [r1]; ldr r2, [r0]", 4, "the first load's result forms the address: no pipelining"),
    ("ldr r0, [r1]; ldr r2, [r3, r0]", 4, "... also as the offset register"),
    ("str r0, [r1, #4]", 1, "'STR Rx,[Ry,#imm] is always one cycle'"),
    ("str r0, [r1, r2]", 2, "a register-offset store: 2"),
    ("str r0, [r1, #4]; ldr r2, [r3]", 3, "'nothing can be pipelined after the store'"),
    ("adds r1, r1, #4; ldr r0, [r1]", 4, "an address the previous data processing computed: +1"),
    ("lsls r2, r2, #2; ldr r0, [r1, r2]", 4, "... the offset register too"),
    ("adds r2, r2, #4; ldr r0, [r1]", 3, "an unrelated register: no stall"),
    ("add r1, r1, #8; str r0, [r1]", 3, "stores stall on their address too"),
    ("adds r0, r0, #4; str r0, [r1]", 2, "... but not on their data"),
    ("ldrd r0, r1, [r2]", 3, "LDRD: 1+N = 3"),
    ("strd r0, r1, [r2, #8]", 3, "STRD: 3"),
    ("ldr r4, [r5]; ldrd r0, r1, [r2]", 5, "LDRD is not pipelined after a load"),
    ("ldrd r0, r1, [r2]; ldr r4, [r5]", 5, "... nor a load after LDRD"),
    ("ldm r0, {r1, r2, r3}", 4, "LDM: 1+N"),
    ("ldm r0!, {r1, r2, r3, r4, r5, r6, r7}", 8, "a seven-register LDM: 8"),
    ("stmdb sp!, {r4, r5, r6, r7, r8, r9, r10, r11}", 9, "'an eight element store takes nine cycles'"),
    ("push {r4, r5, lr}", 4, "PUSH: 1+N"),
    ("ldr r0, [r1]; ldm r2, {r3, r4}", 5, "LDM is not pipelined after a load"),
    ("it eq; moveq r0, #1", 2, "IT: 1 (not folded)"),
]


@pytest.mark.parametrize("source, expected, why", SEQUENCES, ids=[s[0] for s in SEQUENCES])
def test_sequence_costs_what_the_trm_states(source, expected, why):
    assert cycles(source) == expected, why


def test_a_taken_branch_adds_the_refill():
    source = "subs r0, r0, #1; bne far"
    assert cycles(source, taken=False) == 2
    assert cycles(source, taken=True) == 2 + timing.BRANCH_REFILL == 4
    cbz = assemble("cbz r0, 1f; nop; 1:")[:1]  # (a CBZ to the next instruction assembles as a NOP)
    assert cbz[0].mnemonic == "cbz"
    assert timing.block_cycles(cbz, taken=True) == 3 and timing.block_cycles(cbz, taken=False) == 1
    assert cycles("b far", taken=True) == cycles("bl far", taken=True) == cycles("bx lr", taken=True) == 3


def test_loads_of_pc_take_three_refill_cycles():
    assert cycles("ldr pc, [sp], #4", taken=True) == 5  # 'at least five cycles'
    assert cycles("tbb [pc, r0]", taken=True) == 6  # 'at least six cycles'
    assert cycles("pop {r4, r5, pc}", taken=True) == 1 + 3 + 3
    assert cycles("pop {r4, r5, pc}", taken=False) == 4  # its IT condition failed


def test_pipelining_and_stalls_reach_across_a_fall_through():
    """The instruction before a block is the last of the block that fell into it."""
    assert cycles("ldr r2, [r3]", after="ldr r0, [r1]") == 1
    assert cycles("ldr r2, [r0]", after="ldr r0, [r1]") == 2
    assert cycles("ldr r2, [r3]", after="adds r3, r3, #1") == 3
    assert cycles("ldr r2, [r3]", after="adds r4, r4, #1") == 2


def test_a_gemm_loop_iteration():
    """mcuc's pointwise inner loop on cortex-m4 (vww_96_int8, GCC 12 -O3): two LDRD of
    pre-extended activations, two weight loads separated by ALU work, 8 SMLAD, a taken
    branch: 18 instructions, 26 cycles for 16 MACs."""
    loop = """
        ldrd ip, lr, [r0, #8]; ldrd r6, r7, [r0], #16; ldr r8, [r1], #4
        sxtb16 r9, r8; smlad r2, r6, r9, r2; smlad r5, ip, r9, r5
        sxtb16 r9, r8, ror #8; smlad r2, r7, r9, r2; smlad r5, lr, r9, r5
        ldr r8, [r1], #4
        sxtb16 r9, r8; smlad r3, r6, r9, r3; smlad fp, ip, r9, fp
        sxtb16 r9, r8, ror #8; smlad r3, r7, r9, r3; smlad fp, lr, r9, fp
        subs r4, #1; bne far"""
    assert len(assemble(loop)) == 18
    assert cycles(loop, taken=True) == 26


def test_only_modelled_cores_have_cycles():
    assert timing.has_cycle_model("cortex-m4") and timing.has_cycle_model("cortex-m33")
    assert not any(timing.has_cycle_model(core) for core in ("cortex-m0", "cortex-m3", "cortex-m7", "host"))
