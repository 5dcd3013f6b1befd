"""A cycle estimate for Cortex-M4 code, from the instructions the emulator executes.

What it is: the Cortex-M4 Technical Reference Manual's instruction timings (ARM DDI 0439,
r0p1, §3.3 "Instruction set summary": the cycle table "based on a system with zero wait
states", and its "Load/store timings" notes, which repeat the Cortex-M3 TRM's, DDI 0337)
turned into a pure function of the decoded instructions of one basic block and whether
its final branch was taken. The emulator (emulator.py) observes which blocks run and in
what order: a block whose successor is not its fall-through address ended in a taken
branch. No memory contents, register values or bus timing enter the estimate.

The rules (cycles of one instruction; N registers in a list; P a pipeline refill):

- data processing, including MOV/MOVW/MOVT, ADD/SUB/ADC/SBC/RSB, shifts, logic, CMP/TST,
  extends (SXTB, SXTB16, UXTAB ...), bit fields, REV/RBIT/CLZ, SSAT/USAT, the DSP
  SIMD adds and packs (QADD, SADD16, PKHBT, SEL ...): 1.
- multiplies: MUL, MLA, MLS, the long multiplies SMULL/UMULL/SMLAL/UMLAL/UMAAL, and the
  DSP multiplies (SMLAD, SMLAxy, SMLAWx, SMULxy, SMMUL(R), SMMLA, SMUAD, SMLALD ...): 1.
  The Cortex-M4 table gives 1 for every one of them, the long ones included (the
  Cortex-M3 needs 3-7 for those: a difference between the two cores, checked).
- SDIV/UDIV: the table gives 2 to 12, ending early depending on the operands; the model
  cannot see operands and takes the worst case, DIVIDE_CYCLES = 12.
- IT: 1. (An IT may fold onto a preceding 16-bit instruction and take no cycle; the model
  does not fold, so it may count one cycle too many per IT.)
- single loads (LDR, LDRB, LDRH, LDRSB, LDRSH, their T forms, LDREX*, and the v8-M
  acquire loads LDA*): 2. "LDR [any] are pipelined when possible": directly after a
  single load whose loaded register does not form this instruction's address, a single
  load or store costs one cycle less (so LDR; LDR is 3 cycles, three LDRs are 4).
- single stores: with an immediate offset 1 ("STR Rx,[Ry,#imm] is always one cycle": its
  data phase overlaps the next instruction); with a register offset 2, or 1 when
  pipelined after a single load as above ("LDR R0,[R1,R2]; STR R1,[R3,R2] - normally
  three cycles total"). Nothing is pipelined after a store. STREX/STL*: as stores.
- LDRD/STRD: 1+N = 3, never pipelined with their neighbours ("the two words are
  pipelined together").
- LDM/STM/PUSH/POP: 1+N, never pipelined with their neighbours.
- address dependency: "any load or store that generates an address dependent on the
  result of a preceding data processing operation stalls the pipeline for an additional
  cycle": +1 when the directly preceding instruction is a data-processing instruction
  (not a load or store) that wrote a register this access's address is formed from (base
  or offset; SP for PUSH/POP). A preceding load's result used as an address only prevents
  pipelining (the load then costs its 2), and the base written back by a preceding load
  or store does not stall (the address unit computes it).
- branches: B, BL, BX, BLX, CBZ, CBNZ, and data processing that writes PC (MOV PC, ADD
  PC): 1, plus P when taken. The table's P "ranges from 1 to 3 depending on the alignment
  and width of the target instruction, and whether the processor manages to speculate
  the address early"; the model takes BRANCH_REFILL = 2 whatever the target.
- loads of PC: LDR PC: 2+P, POP/LDM with PC: 1+N+P, with PC_LOAD_REFILL = 3 ("LDR PC,[any]
  is always a blocking operation ... at least two cycles for the load, and three cycles
  for the pipeline reload"). TBB/TBH: 3+3 (the notes: "two cycles for the load, one cycle
  for the add, and three cycles for the pipeline reload. This means at least six").
- anything not named here (barriers, hints, NOP, MRS/MSR, floating point, which soft-float
  code never uses): 1. Bytes capstone cannot decode: 1 each.

What the model leaves out, on purpose:

- wait states: zero, as in the TRM's table (real flash at high clock rates adds some,
  which the published board figures include);
- "LDR Rx,[PC,#imm] might add a cycle because of contention with the fetch unit": not
  added (literal loads are rare in kernels' loops);
- conditional instructions whose IT condition fails cost what they cost when executed
  (the block counting cannot tell them apart);
- unaligned accesses (the bus splits an unaligned LDR/LDRH/STR/STRH into aligned
  accesses, at least one cycle more): not counted. Measuring them needs a Python memory
  hook on every load and store; on vww_96_int8 (cortex-m4) that made a counted run about
  7x slower (11.0 s for the memory hook alone against 1.6 s for the whole counted run)
  and found 16,080 unaligned accesses among 4.8 M accesses, 8,040 of them crossing a
  word: under 0.1% of the model's cycles. The estimate is therefore low by about that.

Cores: cortex-m4 is the core the TRM describes. cortex-m33 uses the same model: we found
no per-instruction timing table for it, and its pipeline differs (address generation one
stage earlier, limited dual issue of 16-bit instructions), so its figure is the cycles a
Cortex-M4 would need for the same code, likely an overestimate. cortex-m7 (dual issue, a
six-stage pipeline, caches) and cortex-m0/m3 (other timing tables: MUL 1 or 32 cycles;
long multiplies 3-7) have no model: their counted runs give instructions only
(`has_cycle_model`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from capstone import CsError, arm

CYCLE_MODEL_TARGETS = frozenset({"cortex-m4", "cortex-m33"})
BRANCH_REFILL = 2
"""P for branches: the TRM's range is 1 to 3."""
PC_LOAD_REFILL = 3
"""P after a load of PC (LDR PC, POP/LDM with PC, TBB/TBH): the TRM's notes say three."""
DIVIDE_CYCLES = 12
"""SDIV/UDIV: the worst case of the TRM's 2 to 12."""


def has_cycle_model(target_name: str) -> bool:
    """Whether counted runs on this core also estimate cycles."""
    return target_name in CYCLE_MODEL_TARGETS


def _ids(*names: str) -> frozenset[int]:
    return frozenset(getattr(arm, f"ARM_INS_{n}") for n in names if hasattr(arm, f"ARM_INS_{n}"))


_SINGLE_LOADS = _ids("LDR", "LDRB", "LDRH", "LDRSB", "LDRSH", "LDRT", "LDRBT", "LDRHT", "LDRSBT", "LDRSHT",
                     "LDREX", "LDREXB", "LDREXH", "LDA", "LDAB", "LDAH", "LDAEX", "LDAEXB", "LDAEXH")
_SINGLE_STORES = _ids("STR", "STRB", "STRH", "STRT", "STRBT", "STRHT")
_EXCLUSIVE_STORES = _ids("STREX", "STREXB", "STREXH", "STL", "STLB", "STLH", "STLEX", "STLEXB", "STLEXH")
_DOUBLES = _ids("LDRD", "STRD")
_MULTIPLES = _ids("LDM", "LDMDB", "LDMDA", "LDMIB", "STM", "STMDB", "STMDA", "STMIB")
_STACK = _ids("PUSH", "POP")
_BRANCHES = _ids("B", "BL", "BX", "BLX", "CBZ", "CBNZ")
_TABLE_BRANCHES = _ids("TBB", "TBH")
_DIVIDES = _ids("SDIV", "UDIV")
_GPRS = frozenset(getattr(arm, f"ARM_REG_{n}") for n in
                  ("R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "R11", "R12",
                   "SB", "SL", "FP", "IP", "SP", "LR", "R13", "R14") if hasattr(arm, f"ARM_REG_{n}"))
_PC = arm.ARM_REG_PC
_SP = arm.ARM_REG_SP
_EMPTY: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Timing:
    """What the model needs to know of one instruction.

    cycles: alone, with no neighbour effect (a conditional branch not taken).
    refill: cycles added when it is the last instruction of its block and the block's
        successor is not the fall-through address (a taken branch, a write of PC).
    pipelined: its cycles directly after a single load that does not form its address
        (single loads and stores), else None.
    load: a single load, which the next single load or store can pipeline after.
    address: registers its address is formed from (loads and stores).
    loaded: registers a single load writes.
    computed: registers a data-processing instruction writes (a load or store computes
        none: a base written back does not stall the next address).
    """

    cycles: int
    refill: int = 0
    pipelined: int | None = None
    load: bool = False
    address: frozenset[int] = _EMPTY
    loaded: frozenset[int] = _EMPTY
    computed: frozenset[int] = _EMPTY


UNKNOWN = Timing(1)
"""Bytes capstone could not decode (the emulator counts them as one instruction each)."""


def _registers(insn) -> list[int]:
    return [op.reg for op in insn.operands if op.type == arm.ARM_OP_REG]


def _memory_operand(insn):
    for op in insn.operands:
        if op.type == arm.ARM_OP_MEM:
            return op.mem
    return None


def _address_registers(insn) -> frozenset[int]:
    mem = _memory_operand(insn)
    if mem is None:
        return _EMPTY
    return frozenset(r for r in (mem.base, mem.index) if r in _GPRS)


def instruction_timing(insn) -> Timing:
    """The model's facts for one capstone instruction (decoded with detail on)."""
    iid = insn.id
    if iid in _SINGLE_LOADS:
        destination = _registers(insn)[0]
        address = _address_registers(insn)
        if destination == _PC:
            return Timing(2, refill=PC_LOAD_REFILL, address=address)
        return Timing(2, pipelined=1, load=True, address=address, loaded=frozenset({destination}))
    if iid in _SINGLE_STORES:
        mem = _memory_operand(insn)
        register_offset = mem is not None and mem.index in _GPRS
        return Timing(2 if register_offset else 1, pipelined=1, address=_address_registers(insn))
    if iid in _EXCLUSIVE_STORES:
        return Timing(2, pipelined=1, address=_address_registers(insn))
    if iid in _DOUBLES:
        return Timing(3, address=_address_registers(insn))
    if iid in _MULTIPLES or iid in _STACK:
        registers = _registers(insn)
        if iid in _MULTIPLES:  # the base register comes first
            base, registers = registers[0], registers[1:]
        else:
            base = _SP
        refill = PC_LOAD_REFILL if _PC in registers else 0
        return Timing(1 + len(registers), refill=refill, address=frozenset({base}))
    if iid in _BRANCHES:
        return Timing(1, refill=BRANCH_REFILL)
    if iid in _TABLE_BRANCHES:
        return Timing(3, refill=PC_LOAD_REFILL)
    cycles = DIVIDE_CYCLES if iid in _DIVIDES else 1
    try:
        _, written = insn.regs_access()
    except CsError:  # capstone knows no register use for it: assume it writes none
        written = ()
    if _PC in written:  # MOV PC, ADD PC: a branch
        return Timing(cycles, refill=BRANCH_REFILL)
    return Timing(cycles, computed=frozenset(r for r in written if r in _GPRS))


def cycles_after(previous: Timing | None, timing: Timing) -> int:
    """Cycles of an instruction directly after `previous` (None: after a taken branch or
    at the start of a run, where no neighbour effect applies)."""
    if previous is None:
        return timing.cycles
    if previous.load and timing.pipelined is not None and not (timing.address & previous.loaded):
        return timing.pipelined
    if timing.address & previous.computed:
        return timing.cycles + 1
    return timing.cycles


@dataclass(frozen=True, slots=True)
class BlockTiming:
    """One basic block: `cycles[i]` is instruction i's cost inside the block (the first
    one's as if nothing preceded it), `prefix[i]` the sum of those before i, `total` the
    sum of all, `refill` what a taken final branch adds."""

    first: Timing
    last: Timing
    cycles: tuple[int, ...]
    prefix: tuple[int, ...]
    total: int
    refill: int
    affects_successor: bool
    """Whether its last instruction can change the cost of the next block's first."""


def block_timing(timings: Sequence[Timing]) -> BlockTiming:
    """The per-instruction costs of a block of instructions that run in sequence."""
    if not timings:
        raise ValueError("a basic block has at least one instruction")
    cycles = [timings[0].cycles]
    for previous, timing in zip(timings, timings[1:]):
        cycles.append(cycles_after(previous, timing))
    prefix, running = [], 0
    for c in cycles:
        prefix.append(running)
        running += c
    last = timings[-1]
    return BlockTiming(timings[0], last, tuple(cycles), tuple(prefix), running, last.refill,
                       affects_successor=last.load or bool(last.computed))


def entry_cycles(previous: BlockTiming, block: BlockTiming) -> int:
    """What `block`'s first instruction costs more (or less) than `block.cycles[0]` when
    `previous` ran directly before it and fell through into it."""
    return cycles_after(previous.last, block.first) - block.first.cycles


def block_cycles(instructions: Iterable, taken: bool, previous=None) -> int:
    """Cycles of one basic block: capstone instructions (decoded with detail on) that run
    in sequence, `taken` whether its last instruction branched (its successor is not its
    fall-through address), `previous` the instruction that ran directly before it if the
    block was entered by falling through (None after a taken branch)."""
    timings = [instruction_timing(insn) for insn in instructions]
    block = block_timing(timings)
    before = 0 if previous is None else cycles_after(instruction_timing(previous), timings[0]) - timings[0].cycles
    return before + block.total + (block.refill if taken else 0)
