"""Run a Cortex-M ELF in unicorn: exact instruction counts, a cycle estimate, and the stack
high-water mark.

Counting: a block hook sees every translation block unicorn executes, with its address
and size in bytes; capstone decodes exactly those bytes once (Thumb, M-class) and the
block's instruction count is cached by (address, size), since unicorn may cut the same
code into differently sized blocks. A block runs to its end once entered (branches end
blocks; Thumb has no other conditional instructions outside IT blocks, and those the
core issues whether or not their condition holds), so the sum over blocks is exact.

Cycles (cores with a timing model, timing.py: cortex-m4 and cortex-m33): the same block
hook also adds each block's estimated cycles. capstone decodes the block again with
details on (operands, registers written), once per block, and timing.block_timing gives
each instruction's cost inside the block. What the static block cannot know comes from
the order of blocks: when the next block starts somewhere other than this block's
fall-through address, its last instruction branched, and the refill is added; when it
falls through, the first instruction of the next block may pipeline after, or stall on,
the last one of this block (timing.entry_cycles, cached per pair of blocks). This adds
a few dictionary lookups per block: a counted run of vww_96_int8 on cortex-m4 takes
1.8 s with cycles against 1.56 s without.

Uncounted runs (`count_instructions=False`, for verification, which needs only the
outputs) leave the block hook out: a Python call per translation block dominates the
run time of short-block code such as soft-float (MobileNetV2 QDQ int8 float groups on
cortex-m0: minutes per inference counted, seconds uncounted). Their runaway guard is
unicorn's own instruction limit instead.

Stack: the stack block is filled with a pattern before the call, and afterwards the
lowest word that changed gives the high-water mark (a fill is far cheaper than hooking
every store).

A call starts at a function's address with LR pointing into a page of `bkpt`
instructions outside the image; reaching that page ends the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcuc.ir.errors import MCUCError

from . import timing
from .target import Target

try:  # the emulator's dependencies are PyPI packages listed in setup.cfg
    import capstone
    import unicorn
    from elftools.elf.elffile import ELFFile
    from unicorn import arm_const
except ImportError as e:  # pragma: no cover - depends on the installation
    raise MCUCError(f"the Cortex-M emulator needs the Python packages unicorn, capstone and "
                    f"pyelftools ({e}); reinstall mcuc with scripts/setup.sh") from None

RETURN_TRAP = 0x1FFF0000
SCS_PAGE = 0xE000E000
"""A page of `bkpt` instructions in the code region, outside flash and SRAM: the
return address of every emulated call."""
_PAGE = 0x1000
STACK_PATTERN = 0xA5C35A3C
DEFAULT_BUDGET = 2_000_000_000
"""Instructions before a run counts as runaway (a model of 50M MACs needs ~100M)."""

_CPU_MODELS = {
    "cortex-m0": arm_const.UC_CPU_ARM_CORTEX_M0,
    "cortex-m3": arm_const.UC_CPU_ARM_CORTEX_M3,
    "cortex-m4": arm_const.UC_CPU_ARM_CORTEX_M4,
    "cortex-m7": arm_const.UC_CPU_ARM_CORTEX_M7,
    "cortex-m33": arm_const.UC_CPU_ARM_CORTEX_M33,
}
# unicorn's (QEMU's) numbers for the exceptions a model's code can raise.
_EXCEPTION_NAMES = {1: "undefined instruction", 2: "svc", 5: "data abort", 6: "bus fault",
                    7: "bkpt", 8: "exception exit"}
_ARG_REGISTERS = (arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1,
                  arm_const.UC_ARM_REG_R2, arm_const.UC_ARM_REG_R3)


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int


@dataclass
class CallResult:
    """What one emulated call did."""

    return_value: int
    instructions: int | None
    """None for an uncounted call."""
    stack_bytes: int
    reads: list[bytes] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    """For each requested mark symbol that executed: instructions executed before it
    (the first time it was reached)."""
    cycles: int | None = None
    """Estimated cycles (timing.py) of a counted call on a core with a timing model;
    None otherwise."""
    cycle_marks: dict[str, int] = field(default_factory=dict)
    """As `marks`, in estimated cycles before each mark (empty without `cycles`)."""


def _page_round(size: int) -> int:
    return (size + _PAGE - 1) // _PAGE * _PAGE


class Emulator:
    """One ELF on one emulated core. Each `call` starts from the ELF's initial memory image
    (loadable segments at their run addresses: .data initialized, .bss zero), so calls
    are independent."""

    def __init__(self, elf_path: Path | str, target: Target,
                 flash: tuple[int, int], ram: tuple[int, int]) -> None:
        if target.name not in _CPU_MODELS:
            raise MCUCError(f"target {target.name!r} cannot be emulated; choose one of "
                            f"{', '.join(_CPU_MODELS)}")
        self.target = target
        self.flash = flash
        self.ram = ram
        self.segments: list[tuple[int, bytes]] = []
        self.symbols: dict[str, Symbol] = {}
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            for segment in elf.iter_segments():
                if segment["p_type"] == "PT_LOAD" and segment["p_filesz"] > 0:
                    # At the load address (flash, where the reset handler copies .data
                    # from) and at the run address: .data starts initialized, as after
                    # that copy, for calls that skip the reset handler.
                    data = segment.data()
                    self.segments.append((segment["p_paddr"], data))
                    if segment["p_vaddr"] != segment["p_paddr"]:
                        self.segments.append((segment["p_vaddr"], data))
            symtab = elf.get_section_by_name(".symtab")
            if symtab is None:
                raise MCUCError(f"{elf_path}: the ELF has no symbol table (was it stripped?)")
            for sym in symtab.iter_symbols():
                if sym.name and sym["st_shndx"] != "SHN_UNDEF":
                    self.symbols.setdefault(sym.name, Symbol(sym.name, sym["st_value"], sym["st_size"]))
        self._disassembler = capstone.Cs(capstone.CS_ARCH_ARM,
                                         capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        # (address, size) -> instruction addresses of that block, decoded once.
        self._blocks: dict[tuple[int, int], tuple[int, ...]] = {}
        # The cycle model's view of the same blocks, and the first instruction's extra
        # cost per (previous block, block) fall-through pair.
        self.has_cycle_model = timing.has_cycle_model(target.name)
        self._detailed: "capstone.Cs | None" = None
        self._timings: dict[tuple[int, int], timing.BlockTiming] = {}
        self._entries: dict[tuple[tuple[int, int], tuple[int, int]], int] = {}

    def symbol(self, name: str) -> Symbol:
        try:
            return self.symbols[name]
        except KeyError:
            raise MCUCError(f"symbol {name!r} is not in the firmware ELF") from None

    def _decode(self, code: bytes, address: int) -> tuple[int, ...]:
        addresses = []
        offset = 0
        while offset < len(code):
            # disasm_lite stops at undecodable bytes; count what it decodes and step over
            # the rest by the Thumb width rule so a count is never silently short.
            decoded = list(self._disassembler.disasm_lite(code[offset:], address + offset))
            for insn_address, insn_size, _, _ in decoded:
                addresses.append(insn_address)
                offset += insn_size
            if offset < len(code):
                halfword = code[offset] | code[offset + 1] << 8 if offset + 1 < len(code) else 0
                addresses.append(address + offset)
                offset += 4 if (halfword >> 11) in (0b11101, 0b11110, 0b11111) else 2
        return tuple(addresses)

    def _block_timing(self, code: bytes, address: int, addresses: tuple[int, ...]) -> "timing.BlockTiming":
        """The cycle model's costs for the block at `address` whose instructions start at
        `addresses` (as `_decode` found them, so both views have the same instructions)."""
        if self._detailed is None:
            self._detailed = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
            self._detailed.detail = True
        by_address: dict[int, timing.Timing] = {}
        for insn_address in addresses:
            if insn_address not in by_address:  # the start, or past bytes capstone stopped at
                offset = insn_address - address
                for insn in self._detailed.disasm(code[offset:], insn_address):
                    by_address[insn.address] = timing.instruction_timing(insn)
        return timing.block_timing([by_address.get(a, timing.UNKNOWN) for a in addresses])

    def _machine(self) -> "unicorn.Uc":
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(_CPU_MODELS[self.target.name])
        uc.mem_map(self.flash[0], _page_round(self.flash[1]))
        uc.mem_map(self.ram[0], _page_round(self.ram[1]))
        uc.mem_map(RETURN_TRAP, _PAGE)
        uc.mem_write(RETURN_TRAP, b"\x00\xbe" * (_PAGE // 2))  # bkpt #0
        # The System Control Space page as plain memory: unicorn models no SCS registers, and
        # a reset handler of hard-float firmware writes CPACR (0xE000ED88) to turn the FPU
        # on. Unicorn's VFP needs no such write (it is usable from the start).
        uc.mem_map(SCS_PAGE, _PAGE)
        for address, data in self.segments:
            uc.mem_write(address, data)
        return uc

    def call(self, function: str, args: tuple[int, ...] = (), *,
             writes: list[tuple[int, bytes]] = (), reads: list[tuple[int, int]] = (),
             stack: tuple[int, int] | None = None, marks: tuple[str, ...] = (),
             budget: int = DEFAULT_BUDGET, until: str | None = None,
             cross_check: bool = False, count_instructions: bool = True) -> CallResult:
        """Call `function(*args)` (up to four int arguments) with SP at the top of `stack`
        = (bottom, top); write `writes` first, read `reads` after it returns.

        `until`: a symbol where the run ends instead of the return (for code that never
        returns, such as the reset handler); its first instruction is not counted.
        `cross_check`: also count every instruction address with a per-instruction hook
        (many times slower) and raise MCUCError unless the two agree everywhere except
        at IT-block instructions whose condition failed (unicorn skips their hook; the
        core still issues them): a check of the block counting itself.
        `count_instructions=False`: no counting (instructions None, no marks), many times
        faster; unicorn stops the run after `budget` instructions.
        A counted call on a core with a cycle model (timing.py) also gives `cycles` and
        `cycle_marks`."""
        if not count_instructions and (marks or cross_check):
            raise MCUCError("emulated call: marks and cross_check need count_instructions=True")
        if len(args) > len(_ARG_REGISTERS):
            raise MCUCError(f"emulated call of {function}: at most {len(_ARG_REGISTERS)} arguments")
        entry = self.symbol(function).address | 1
        stop = self.symbol(until).address & ~1 if until else RETURN_TRAP
        uc = self._machine()
        for address, data in writes:
            uc.mem_write(address, bytes(data))
        if stack is None:
            stack = (self.symbol("__stack_bottom").address, self.symbol("__stack_top").address)
        bottom, top = stack
        words = (top - bottom) // 4
        uc.mem_write(bottom, np.full(words, STACK_PATTERN, dtype="<u4").tobytes())
        for register, value in zip(_ARG_REGISTERS, args):
            uc.reg_write(register, value & 0xFFFFFFFF)
        uc.reg_write(arm_const.UC_ARM_REG_SP, top)
        uc.reg_write(arm_const.UC_ARM_REG_LR, RETURN_TRAP | 1)

        counter = _Counter(self, budget, timed=count_instructions and self.has_cycle_model)
        if count_instructions:
            uc.hook_add(unicorn.UC_HOOK_BLOCK, counter.on_block_timed if counter.timed else counter.on_block)
        if cross_check:
            counter.by_address_blocks, counter.by_address_hooked = {}, {}
            uc.hook_add(unicorn.UC_HOOK_CODE, counter.on_instruction)
        mark_addresses = {}
        for name in marks:
            address = self.symbol(name).address & ~1
            mark_addresses.setdefault(address, []).append(name)
            uc.hook_add(unicorn.UC_HOOK_CODE, counter.on_mark, begin=address, end=address)
        counter.mark_names = mark_addresses
        uc.hook_add(unicorn.UC_HOOK_INTR, counter.on_exception)
        try:
            uc.emu_start(entry, stop, count=0 if count_instructions else budget)
        except unicorn.UcError as e:
            pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
            last = counter.block[0] if counter.block else pc
            raise MCUCError(f"emulated {self.target.name} faulted in {function} at pc=0x{pc:08x} "
                            f"({self.where(pc)}; last block at {self.where(last)}) after "
                            f"{counter.total} instructions: {e}") from None
        if counter.exception is not None:
            pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
            name = _EXCEPTION_NAMES.get(counter.exception, "exception")
            raise MCUCError(f"emulated {self.target.name} raised CPU exception {counter.exception} ({name}) "
                            f"in {function} at pc=0x{pc:08x} ({self.where(pc)}) after {counter.total} "
                            "instructions")
        if counter.over_budget:
            raise MCUCError(f"emulated call of {function} ran more than {budget} instructions "
                            "without returning: runaway code (or raise the budget)")
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        if not count_instructions and pc & ~1 != stop:  # unicorn's limit ended the run
            raise MCUCError(f"emulated call of {function} ran more than {budget} instructions "
                            f"without returning (stopped at pc=0x{pc:08x}, {self.where(pc)}): runaway "
                            "code (or raise the budget)")
        if pc & ~1 != stop:
            raise MCUCError(f"emulated call of {function} stopped at pc=0x{pc:08x} ({self.where(pc)}), "
                            "not at its return")
        if cross_check:
            self._cross_check(function, uc, counter)
        counter.finish(stop)
        stack_words = np.frombuffer(bytes(uc.mem_read(bottom, words * 4)), dtype="<u4")
        touched = np.flatnonzero(stack_words != STACK_PATTERN)
        stack_bytes = (words - int(touched[0])) * 4 if touched.size else 0
        if touched.size and touched[0] == 0:
            raise MCUCError(f"emulated call of {function} used the whole {top - bottom}-byte stack "
                            "block: stack overflow")
        return CallResult(
            return_value=uc.reg_read(arm_const.UC_ARM_REG_R0),
            instructions=counter.total if count_instructions else None,
            stack_bytes=stack_bytes,
            reads=[bytes(uc.mem_read(address, size)) for address, size in reads],
            marks=counter.marks,
            cycles=counter.cycles if counter.timed else None,
            cycle_marks=counter.cycle_marks,
        )

    def _cross_check(self, function: str, uc, counter: "_Counter") -> None:
        # Decode each executed block from its start, so IT instructions give their
        # condition to the instructions they cover.
        detailed = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        detailed.detail = True
        text: dict[int, str] = {}
        conditional: set[int] = set()
        # Each block from its start, and again from any IT-like halfword up to 4
        # halfwords before it: unicorn may start a block inside an IT block. (Extra
        # decodes can only mark more instructions conditional, loosening the check.)
        ranges = []
        for address, size in self._blocks:
            for back in (8, 6, 4, 2):
                halfword = int.from_bytes(bytes(uc.mem_read(address - back, 2)), "little")
                if halfword & 0xFF00 == 0xBF00 and halfword & 0x000F:
                    ranges.append((address - back, size + back))
            ranges.append((address, size))  # last, so the text shown is the block's own decode
        for address, size in ranges:
            for insn in detailed.disasm(bytes(uc.mem_read(address, size)), address):
                text[insn.address] = f"{insn.mnemonic} {insn.op_str}"
                if insn.cc not in (capstone.arm.ARM_CC_AL, capstone.arm.ARM_CC_INVALID) \
                        and not insn.mnemonic.startswith("b"):
                    conditional.add(insn.address)
        for address, from_blocks in counter.by_address_blocks.items():
            hooked = counter.by_address_hooked.get(address, 0)
            if hooked > from_blocks or (hooked < from_blocks and address not in conditional):
                raise MCUCError(f"emulated call of {function}: at 0x{address:08x} "
                                f"({text.get(address, 'undecoded')}) block counting gives {from_blocks} "
                                f"executions, the per-instruction hook {hooked}")
        missing = set(counter.by_address_hooked) - set(counter.by_address_blocks)
        if missing:
            raise MCUCError(f"emulated call of {function}: instructions at "
                            f"{', '.join(hex(a) for a in sorted(missing)[:5])} ran outside any counted block")

    def where(self, address: int) -> str:
        """The function (or nearest code label before it) containing `address`, for
        error messages."""
        for sym in self.symbols.values():
            if sym.size and sym.address & ~1 <= address < (sym.address & ~1) + sym.size:
                return f"{sym.name}+0x{address - (sym.address & ~1):x}"
        flash_start, flash_end = self.flash[0], self.flash[0] + self.flash[1]
        before = [sym for sym in self.symbols.values()
                  if flash_start <= sym.address & ~1 <= address < flash_end and not sym.name.startswith("$")]
        if not before:
            return "unknown code"
        nearest = max(before, key=lambda sym: sym.address & ~1)
        return f"{nearest.name}+0x{address - (nearest.address & ~1):x}"


class _Counter:
    """The hooks' state during one call."""

    def __init__(self, emulator: Emulator, budget: int, timed: bool = False) -> None:
        self.emulator = emulator
        self.budget = budget
        self.total = 0
        self.block_start_total = 0
        self.block: tuple[int, ...] = ()
        # The cycle estimate (timed runs only). The previous block's refill is added when
        # the next block shows whether it branched; `block_start_cycles` is the total
        # before the current block, `entry` its first instruction's extra cost.
        self.timed = timed
        self.cycles = 0
        self.block_start_cycles = 0
        self.entry = 0
        self.cycle_marks: dict[str, int] = {}
        self.timing: timing.BlockTiming | None = None
        self.key: tuple[int, int] | None = None
        self.end = 0
        self.over_budget = False
        self.mark_names: dict[int, list[str]] = {}
        self.marks: dict[str, int] = {}
        self.exception: int | None = None
        # Per-address execution counts, for cross_check only.
        self.by_address_blocks: dict[int, int] | None = None
        self.by_address_hooked: dict[int, int] = {}

    def on_instruction(self, uc, address: int, _size: int, _user_data) -> None:
        self.by_address_hooked[address] = self.by_address_hooked.get(address, 0) + 1

    def on_block(self, uc, address: int, size: int, _user_data) -> None:
        key = (address, size)
        block = self.emulator._blocks.get(key)
        if block is None:
            block = self.emulator._decode(bytes(uc.mem_read(address, size)), address)
            self.emulator._blocks[key] = block
        self.block = block
        if self.by_address_blocks is not None:
            for insn_address in block:
                self.by_address_blocks[insn_address] = self.by_address_blocks.get(insn_address, 0) + 1
        self.block_start_total = self.total
        self.total += len(block)
        if self.total > self.budget:
            self.over_budget = True
            uc.emu_stop()

    def on_block_timed(self, uc, address: int, size: int, user_data) -> None:
        """on_block and the cycle estimate. on_block's counting is repeated inline for
        blocks already seen: a second Python call per block made counted runs 50% slower,
        this 15% (vww_96_int8)."""
        key = (address, size)
        emulator = self.emulator
        current = emulator._timings.get(key)
        block = emulator._blocks.get(key)
        if current is None or block is None:
            self.on_block(uc, address, size, user_data)
            if current is None:
                current = emulator._block_timing(bytes(uc.mem_read(address, size)), address, self.block)
                emulator._timings[key] = current
        else:  # on_block, inline
            self.block = block
            if self.by_address_blocks is not None:
                for insn_address in block:
                    self.by_address_blocks[insn_address] = self.by_address_blocks.get(insn_address, 0) + 1
            self.block_start_total = self.total
            self.total += len(block)
            if self.total > self.budget:
                self.over_budget = True
                uc.emu_stop()
        previous = self.timing
        entry = 0
        if previous is not None:
            if address != self.end:  # the previous block's last instruction branched
                self.cycles += previous.refill
            elif previous.affects_successor:
                pair = (self.key, key)
                entry = emulator._entries.get(pair)
                if entry is None:
                    entry = emulator._entries[pair] = timing.entry_cycles(previous, current)
        self.block_start_cycles = self.cycles
        self.entry = entry
        self.cycles += entry + current.total
        self.timing, self.key, self.end = current, key, address + size

    def finish(self, stop: int) -> None:
        """After the run: the last block's refill if it branched to `stop`."""
        if self.timed and self.timing is not None and stop != self.end:
            self.cycles += self.timing.refill

    def on_exception(self, uc, number: int, _user_data) -> None:
        self.exception = number
        uc.emu_stop()

    def on_mark(self, uc, address: int, _size: int, _user_data) -> None:
        # Instructions before this one: all earlier blocks plus those of this block
        # that precede it.
        index = sum(1 for a in self.block if a < address)
        before = self.block_start_total + index
        for name in self.mark_names.get(address, ()):
            self.marks.setdefault(name, before)
            if self.timed:
                cycles = self.block_start_cycles + (self.entry if index else 0) + self.timing.prefix[index]
                self.cycle_marks.setdefault(name, cycles)
